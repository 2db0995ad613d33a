"""Schedules, the image pool and the base module's helpers."""

from __future__ import annotations

import pytest
import torch

from imtrans.methods.pool import ImagePool
from imtrans.methods.schedules import LinearDecay


def _sgd():
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2e-4)


def test_linear_decay_matches_official_factor():
    opt = _sgd()
    sched = LinearDecay(opt, n_epochs=100, n_epochs_decay=100)
    lrs = []
    for _ in range(200):
        lrs.append(opt.param_groups[0]["lr"])
        sched.step()
    # constant through epoch index 99, then 1 - k / 101 for k = 1..100
    assert lrs[0] == lrs[99] == pytest.approx(2e-4)
    assert lrs[100] == pytest.approx(2e-4 * (1 - 1 / 101))
    assert lrs[199] == pytest.approx(2e-4 * (1 - 100 / 101))
    # state round trip (resume): a fresh scheduler continues where the first stopped
    opt2 = _sgd()
    sched2 = LinearDecay(opt2, n_epochs=1, n_epochs_decay=1)
    sched2.load_state_dict(sched.state_dict())
    assert (sched2.n_epochs, sched2.n_epochs_decay, sched2.last_epoch) == (100, 100, 200)


def test_image_pool():
    torch.manual_seed(0)
    assert ImagePool(0).query(torch.ones(2, 3, 4, 4)).equal(torch.ones(2, 3, 4, 4))
    pool = ImagePool(3)
    first = torch.arange(3.0).view(3, 1, 1, 1).expand(3, 3, 2, 2)
    # while filling, images are stored and returned unchanged
    assert pool.query(first).equal(first)
    assert len(pool.images) == 3
    # once full, every returned image is either the new one or a previously stored one
    out = pool.query(torch.full((64, 3, 2, 2), 9.0))
    values = set(out[:, 0, 0, 0].tolist())
    assert values <= {0.0, 1.0, 2.0, 9.0} and 9.0 in values and len(values) > 1
    assert len(pool.images) == 3
    restored = ImagePool(0)
    restored.load_state_dict(pool.state_dict())
    assert restored.size == 3 and all(a.equal(b) for a, b in zip(restored.images, pool.images))
