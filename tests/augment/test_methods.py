"""Every method trains with ``augment=diffaugment`` and ``augment=ada``: all its discriminator
calls go through ``TranslationModule.discriminate``, and ADA sees the real scores."""

from __future__ import annotations

import json
import math

import pytest
import torch

from tests.augment.test_unchanged import FIXTURE, _available, losses_of
from tests.helpers import METHODS

# ADA at p = 0.5 from the start (so its ops do apply in 2 iterations), adjusted every iteration
# by 1e-6 per real image: p moves off 0.5 only if real scores were observed.
ADA = ["augment=ada", "augment.p_init=0.5", "augment.interval=1", "augment.speed=1e6"]
# DRIT's first iterations update the content discriminator only (d_iter 3): every one full here.
FULL = {"drit": ["model.d_iter=1"]}


@pytest.mark.parametrize("augment", ["diffaugment", "ada"])
@pytest.mark.parametrize("model", METHODS)
def test_every_method_trains_with_augmentation(model, augment, tmp_path):
    if not _available(model):
        pytest.skip("../shared/data/cityscapes_sample missing")
    extra = [*(ADA if augment == "ada" else ["augment=diffaugment"]), *FULL.get(model, [])]
    got = losses_of(model, tmp_path, extra)
    assert sorted(got) == ["1", "2"]
    assert all(math.isfinite(v) for terms in got.values() for v in terms.values())
    # the augmentation reached the discriminators: the first iteration's losses differ from
    # the unaugmented run's (same seed, same weights, same batch)
    if model in FULL:
        before = losses_of(model, tmp_path / "none", FULL[model])["1"]
    else:
        before = json.loads(FIXTURE.read_text())[model]["1"]
    assert any(got["1"][k] != v for k, v in before.items())
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    if augment == "ada":
        # one adjustment (at the start of iteration 2) from iteration 1's real scores
        assert float(state["augment.p"]) != 0.5 and abs(float(state["augment.p"]) - 0.5) < 1e-4
        assert -1 <= float(state["augment.rt"]) <= 1
    else:
        assert not any(k.startswith("augment.") for k in state)
