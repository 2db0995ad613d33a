"""Adversarial losses and weighted loss dictionaries on fixed inputs."""

from __future__ import annotations

import math

import pytest
import torch

from imtrans.losses import GANLoss, weighted_sum


def test_lsgan_values():
    loss = GANLoss("lsgan")
    d = torch.tensor([0.5, 1.5])
    assert loss(d, True).item() == pytest.approx((0.25 + 0.25) / 2)
    assert loss(d, False).item() == pytest.approx((0.25 + 2.25) / 2)
    # multi-scale outputs are summed over scales
    assert loss([d, d], True).item() == pytest.approx(0.5)
    assert loss(d, True, target=0.5).item() == pytest.approx((0 + 1) / 2)


def test_vanilla_and_hinge_values():
    zero = torch.zeros(4)
    assert GANLoss("vanilla")(zero, True).item() == pytest.approx(math.log(2))
    assert GANLoss("vanilla")(zero, False).item() == pytest.approx(math.log(2))
    hinge = GANLoss("hinge")
    d = torch.tensor([0.5, -2.0])
    assert hinge(d, True).item() == pytest.approx((0.5 + 3.0) / 2)
    assert hinge(d, False).item() == pytest.approx((1.5 + 0.0) / 2)
    assert hinge(d, True, for_generator=True).item() == pytest.approx(0.75)
    with pytest.raises(ValueError, match="unknown gan mode"):
        GANLoss("wgan")


def test_weighted_sum():
    terms = {"a": torch.tensor(2.0), "b": torch.tensor(3.0), "c": torch.tensor(100.0)}
    assert weighted_sum(terms, {"a": 1, "b": 10, "c": 0}).item() == pytest.approx(32.0)
    with pytest.raises(KeyError, match=r"no entry for \['b'\]"):
        weighted_sum({"b": torch.tensor(1.0)}, {"a": 1})
