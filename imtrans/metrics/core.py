"""torchmetrics states that give the same value on one process or many, and FID / KID from features.

- :class:`FeatureBank` keeps every feature vector with the global index of its image
  (``cat`` states); :meth:`FeatureBank.compute` gathers them from all ranks and sorts by index,
  so the feature matrix, and every statistic of it, is the same whatever the world size and
  however the images were split between ranks (no DistributedSampler padding involved).
- :class:`Mean64` is a float64 sum and count (``sum`` states).
- :func:`fid_from_features` and :func:`kid_from_features` follow torch-fidelity 0.4
  (``metric_fid.fid_statistics_to_metric``, ``metric_kid.kid_features_to_metric``): the same
  statistics, kernel, estimator and subset draws (``numpy.random.RandomState(seed)``).
"""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics import Metric


class FeatureBank(Metric):
    """Feature vectors (N x D) with their global image indices; ``compute`` returns them sorted by index."""

    full_state_update = False
    higher_is_better = None

    def __init__(self, num_features: int, **kwargs):
        super().__init__(**kwargs)
        self.num_features = num_features
        self.add_state("features", default=[], dist_reduce_fx="cat", persistent=False)
        self.add_state("index", default=[], dist_reduce_fx="cat", persistent=False)
        self.prime()

    def prime(self) -> None:
        """Add an empty entry, so that a rank that sees no image still takes part in the gather."""
        self.update(torch.zeros(0, self.num_features, device=self.device), torch.zeros(0, dtype=torch.long))

    def reset(self) -> None:
        super().reset()
        self.prime()

    def update(self, features: torch.Tensor, index: torch.Tensor) -> None:
        if features.ndim != 2 or features.shape[1] != self.num_features or len(index) != len(features):
            raise ValueError(f"FeatureBank: expected N x {self.num_features} features and N indices")
        self.features.append(features.detach().float().to(self.device))
        self.index.append(index.to(device=self.device, dtype=torch.long))

    def compute(self) -> torch.Tensor:
        feats = self.features if torch.is_tensor(self.features) else torch.cat(self.features)
        index = self.index if torch.is_tensor(self.index) else torch.cat(self.index)
        feats = feats.reshape(-1, self.num_features)
        order = torch.argsort(index.reshape(-1))
        index = index.reshape(-1)[order]
        if len(index) and not bool((index[1:] != index[:-1]).all()):
            raise RuntimeError("FeatureBank: an image index was counted twice")
        return feats[order]


class Mean64(Metric):
    """Mean of all values passed to ``update`` (float64 sum and count, summed over ranks)."""

    full_state_update = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_state(
            "total", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum", persistent=False
        )
        self.add_state(
            "count", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum", persistent=False
        )
        self.update(torch.zeros(0))  # a rank that sees no value still computes without a warning

    def reset(self) -> None:
        super().reset()
        self.update(torch.zeros(0))

    def update(self, values: torch.Tensor) -> None:
        values = values.detach().to(device=self.device, dtype=torch.float64).reshape(-1)
        self.total += values.sum()
        self.count += values.numel()

    def compute(self) -> torch.Tensor:
        return self.total / self.count if self.count > 0 else torch.tensor(float("nan"), dtype=torch.float64)

    def _apply(self, fn, *args, **kwargs):  # keep float64 under .float() / precision plugins
        out = super()._apply(fn, *args, **kwargs)
        out.total = out.total.to(torch.float64)
        out.count = out.count.to(torch.float64)
        return out


def fid_from_features(fake: torch.Tensor, real: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N x D each, N >= 2).

    ``|mu1 - mu2|^2 + tr s1 + tr s2 - 2 tr sqrt(s1 s2)`` with float64 means and covariances
    (ddof 1), as torch-fidelity defines it. ``tr sqrt(s1 s2)`` is the sum of the square roots of
    the eigenvalues of ``s1 s2``; those are the squared singular values of
    ``Xc1 Xc2^T / sqrt((n1 - 1)(n2 - 1))`` (Xc: centred features), which is far cheaper when
    there are fewer images than dimensions (and exact where the D x D route leaves round-off
    in the zero eigenvalues). Otherwise torch-fidelity's own route is taken.
    """
    x1 = fake.detach().cpu().double().numpy()
    x2 = real.detach().cpu().double().numpy()
    (n1, d), n2 = x1.shape, len(x2)
    if min(n1, n2) < 2:
        raise ValueError("FID needs at least 2 images on each side")
    mu1, mu2 = x1.mean(0), x2.mean(0)
    c1, c2 = x1 - mu1, x2 - mu2
    diff = mu1 - mu2
    traces = (c1 * c1).sum() / (n1 - 1) + (c2 * c2).sum() / (n2 - 1)
    small, large = sorted((n1, n2))
    if n1 * n2 * d + small * small * large < (n1 + n2) * d * d + 10 * d**3:
        cross = c1 @ c2.T / np.sqrt((n1 - 1) * (n2 - 1))
        tr_covmean = np.linalg.svd(cross, compute_uv=False).sum()
    else:
        s1, s2 = c1.T @ c1 / (n1 - 1), c2.T @ c2 / (n2 - 1)
        tr_covmean = np.sum(np.sqrt(np.linalg.eigvals(s1.dot(s2)).astype("complex128")).real)
    return float(diff.dot(diff) + traces - 2 * tr_covmean)


def _mmd2_unbiased(k_xx: np.ndarray, k_xy: np.ndarray, k_yy: np.ndarray) -> float:
    m = k_xx.shape[0]
    sum_xx = k_xx.sum() - np.trace(k_xx)
    sum_yy = k_yy.sum() - np.trace(k_yy)
    return float((sum_xx + sum_yy) / (m * (m - 1)) - 2 * k_xy.sum() / (m * m))


def kid_subset_size(subset_size: int, n_fake: int, n_real: int) -> int:
    """The subset size used: the protocol's, or fewer when a side has fewer images."""
    return min(subset_size, n_fake, n_real)


def kid_from_features(
    fake: torch.Tensor,
    real: torch.Tensor,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 2020,
    max_kernel: int = 4096,
) -> tuple[float, float]:
    """KID mean and standard deviation over ``subsets`` random subsets (polynomial kernel).

    The subsets are drawn exactly as torch-fidelity draws them (fake first, then real, from
    ``numpy.random.RandomState(seed)``); ``subset_size`` is capped at the smaller side. Up to
    ``max_kernel`` images a side, the kernel matrices are computed once (float64) and indexed.
    """
    x = fake.detach().cpu().float().numpy()
    y = real.detach().cpu().float().numpy()
    n1, n2, d = len(x), len(y), x.shape[1]
    m = kid_subset_size(subset_size, n1, n2)
    if m < 2:
        raise ValueError("KID needs at least 2 images on each side")
    rng = np.random.RandomState(seed)
    draws = [(rng.choice(n1, m, replace=False), rng.choice(n2, m, replace=False)) for _ in range(subsets)]

    def kernel(a, b):
        return (a.astype(np.float64) @ b.astype(np.float64).T / d + 1.0) ** 3

    mmds = np.zeros(subsets)
    if max(n1, n2) <= max_kernel:
        k_xx, k_xy, k_yy = kernel(x, x), kernel(x, y), kernel(y, y)
        for i, (a, b) in enumerate(draws):
            mmds[i] = _mmd2_unbiased(k_xx[np.ix_(a, a)], k_xy[np.ix_(a, b)], k_yy[np.ix_(b, b)])
    else:
        for i, (a, b) in enumerate(draws):
            xa, yb = x[a], y[b]
            mmds[i] = _mmd2_unbiased(kernel(xa, xa), kernel(xa, yb), kernel(yb, yb))
    return float(mmds.mean()), float(mmds.std())
