"""Training data whose order and augmentation are a function of position alone.

Bit-exact resume needs the batches after iteration k to be the same whether or not the run
stopped at k. Two pieces make that so:

- ``ResumableSampler`` shuffles with a permutation drawn from (seed, epoch), splits it over
  DDP ranks like ``DistributedSampler`` (which it is, so Lightning leaves it in place), can
  start an epoch part-way (after a resume), and yields ``(epoch, index)`` keys;
- ``PositionSeeded`` wraps a dataset and draws each item's random crop, flip or unpaired
  partner from a generator seeded by (seed, epoch, index) inside ``torch.random.fork_rng``,
  so loading never touches the global random stream that training uses (and the result does
  not depend on workers or prefetching).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.distributed as dist
from torch.utils.data import Dataset, DistributedSampler


def _mix(*numbers: int) -> int:
    """A 63-bit seed from several integers (a simple polynomial hash, stable across runs)."""
    value = 0
    for n in numbers:
        value = (value * 1_000_003 + int(n) + 1) % (2**63 - 1)
    return value


class PositionSeeded(Dataset):
    """``dataset`` indexed by ``(epoch, index)`` keys, each item drawn with its own seed.

    ``later``: ``[(first_epoch, dataset), ...]``, datasets that replace ``dataset`` from those
    epochs on (the same items with other preprocessing: a method's ``train_data_schedule``). The
    epoch travels with every key, so the switch happens at the same item in every worker and in a
    resumed run.
    """

    def __init__(self, dataset: Dataset, seed: int, later: list[tuple[int, Dataset]] | None = None):
        self.dataset, self.seed = dataset, seed
        self.later = sorted(later or [], key=lambda stage: stage[0])

    def __len__(self) -> int:
        return len(self.dataset)

    def dataset_at(self, epoch: int) -> Dataset:
        """The dataset that serves ``epoch``."""
        current = self.dataset
        for first, dataset in self.later:
            if epoch >= first:
                current = dataset
        return current

    def __getitem__(self, key: tuple[int, int]):
        epoch, index = key
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_mix(self.seed, epoch, index))
            return self.dataset_at(epoch)[index]


class ResumableSampler(DistributedSampler):
    """Per-epoch shuffle from (seed, epoch), this rank's share, ``(epoch, index)`` keys.

    ``start``: items of this rank's share to skip in the next epoch iterated (set on resume;
    reset afterwards). ``len()`` stays the full share, which is what Lightning counts.
    ``weights``: draw each epoch's ``len(dataset)`` items with replacement in proportion to them
    (``WeightedRandomSampler``; StarGAN v2's class-balanced sampling) instead of shuffling.
    """

    def __init__(
        self, dataset: Dataset, seed: int = 0, shuffle: bool = True, weights: Sequence[float] | None = None
    ):
        initialised = dist.is_available() and dist.is_initialized()
        super().__init__(
            dataset,
            num_replicas=dist.get_world_size() if initialised else 1,
            rank=dist.get_rank() if initialised else 0,
            shuffle=shuffle,
            seed=seed,
        )
        self.start = 0
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.double)
        if self.weights is not None and len(self.weights) != len(dataset):
            raise ValueError(f"ResumableSampler: {len(self.weights)} weights for {len(dataset)} items")

    def _drawn(self) -> list[int]:
        """This epoch's weighted draw, split over the ranks as DistributedSampler splits."""
        g = torch.Generator().manual_seed(_mix(self.seed, self.epoch))
        drawn = torch.multinomial(self.weights, self.total_size, replacement=True, generator=g).tolist()
        return drawn[self.rank : self.total_size : self.num_replicas]

    def __iter__(self):
        indices = list(super().__iter__()) if self.weights is None else self._drawn()
        start, self.start = self.start, 0
        return iter([(self.epoch, i) for i in indices[start:]])
