"""FID / KID formulas against torch-fidelity's own functions; the distributed-safe states."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric

from imtrans.metrics import FeatureBank, Mean64, fid_from_features, kid_from_features
from imtrans.metrics.evaluator import rank_blocks


def _features(n, d, shift=0.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g) * (1 + torch.rand(d, generator=g)) + shift


@pytest.mark.parametrize(("n1", "n2", "d"), [(60, 50, 16), (12, 9, 32)])
def test_fid_matches_torch_fidelity(n1, n2, d):
    fake, real = _features(n1, d, 0.3, seed=1), _features(n2, d, seed=2)
    ref = fid_statistics_to_metric(
        fid_features_to_statistics(fake.double()), fid_features_to_statistics(real.double()), verbose=False
    )["frechet_inception_distance"]
    # n < d: torch-fidelity's D x D eigenvalues keep round-off in the zero eigenvalues (~1e-8)
    assert fid_from_features(fake, real) == pytest.approx(ref, rel=1e-6 if min(n1, n2) < d else 1e-9)


@pytest.mark.parametrize(("n", "m", "subsets"), [(40, 40, 5), (40, 25, 7)])
def test_kid_matches_torch_fidelity(n, m, subsets):
    fake, real = _features(n, 32, 0.2, seed=3), _features(n + 5, 32, seed=4)
    ref = kid_features_to_metric(
        fake, real, kid_subsets=subsets, kid_subset_size=m, rng_seed=7, verbose=False
    )
    for max_kernel in (4096, 0):  # precomputed kernel matrices, and per-subset kernels
        mean, std = kid_from_features(fake, real, subsets, m, seed=7, max_kernel=max_kernel)
        assert mean == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-4, abs=1e-6)
        assert std == pytest.approx(ref["kernel_inception_distance_std"], rel=1e-3, abs=1e-6)


def test_kid_subset_size_is_capped_at_the_smaller_side():
    fake, real = _features(10, 8, seed=5), _features(30, 8, seed=6)
    ref = kid_features_to_metric(fake, real, kid_subsets=4, kid_subset_size=10, rng_seed=2020, verbose=False)
    mean, _ = kid_from_features(fake, real, subsets=4, subset_size=1000)
    assert mean == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-4, abs=1e-6)


def test_feature_bank_returns_global_order_whatever_the_split():
    feats = _features(11, 4, seed=8)
    whole = FeatureBank(4)
    whole.update(feats, torch.arange(11))
    # the same images arriving in another order, in uneven blocks, as two ranks would send them
    shuffled = FeatureBank(4)
    for block in [range(8, 11), range(0, 4), range(4, 8)]:
        shuffled.update(feats[list(block)], torch.tensor(list(block)))
    assert torch.equal(whole.compute(), feats) and torch.equal(shuffled.compute(), feats)
    shuffled.reset()
    assert shuffled.compute().shape == (0, 4)
    twice = FeatureBank(4)
    twice.update(feats[:2], torch.tensor([0, 0]))
    with pytest.raises(RuntimeError, match="counted twice"):
        twice.compute()


def test_mean64_is_float64_and_keeps_nothing_in_state_dict():
    mean = Mean64()
    mean.update(torch.tensor([1.0, 2.0]))
    mean.update(torch.tensor([1e-9], dtype=torch.float64))
    assert mean.compute().dtype == torch.float64
    assert float(mean.compute()) == pytest.approx((3 + 1e-9) / 3, rel=1e-15)
    assert mean.state_dict() == {} and FeatureBank(3).state_dict() == {}
    assert np.isnan(float(Mean64().compute()))


def test_rank_blocks_cover_every_input_once():
    for n, block, world in [(10, 4, 1), (10, 4, 2), (7, 2, 3), (1, 4, 2)]:
        seen = sorted(i for r in range(world) for b in rank_blocks(n, block, r, world) for i in b)
        assert seen == list(range(n))


def test_fid_routes_agree_with_many_images():
    """More images than dimensions: the eigenvalue route; fewer: singular values. Same number."""
    fake, real = _features(80, 8, 0.5, seed=9), _features(70, 8, seed=10)
    ref = fid_statistics_to_metric(
        fid_features_to_statistics(fake.double()), fid_features_to_statistics(real.double()), verbose=False
    )["frechet_inception_distance"]
    assert fid_from_features(fake, real) == pytest.approx(ref, rel=1e-9)
    assert fid_from_features(fake[:5], real[:7]) == pytest.approx(
        fid_statistics_to_metric(
            fid_features_to_statistics(fake[:5].double()),
            fid_features_to_statistics(real[:7].double()),
            False,
        )["frechet_inception_distance"],
        rel=1e-6,
    )
