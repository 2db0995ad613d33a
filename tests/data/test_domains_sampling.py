"""StarGAN v2's training data: the random resized crop, bilinear resizing, class-balanced
draws and reference pairs (``data=domains`` options)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from imtrans.data import DomainsDataModule
from imtrans.data.resumable import ResumableSampler
from imtrans.data.transforms import SpatialTransform
from imtrans.errors import ConfigError
from tests.data.conftest import write_image


def test_random_resized_crop_sampling():
    t = SpatialTransform("random_resized_crop", None, 16, flip=False)
    g = torch.Generator().manual_seed(0)
    boxes = [t.sample((40, 30), "x.png", g) for _ in range(400)]
    cropped = [b for b in boxes if b.first_box is not None]
    assert 150 < len(cropped) < 250  # probability 0.5
    for b in cropped:
        left, top, right, bottom = b.first_box
        w, h = right - left, bottom - top
        assert 0 <= left and right <= 40 and 0 <= top and bottom <= 30
        assert 0.8 * 1200 - 60 <= w * h <= 1200  # 80-100 % of the area (rounding)
        assert 0.9 - 0.05 <= w / h <= 1.1 + 0.05
        assert b.resize == (16, 16)
    assert all(b.resize == (16, 16) and b.first_box is None for b in boxes if b.first_box is None)
    # evaluation: the whole image to the square, never cropped
    ev = SpatialTransform("random_resized_crop", None, 16, flip=True, augment=False)
    assert ev.sample((40, 30), "x.png") == type(ev.sample((40, 30), "x.png"))((16, 16), None, False, None)


def test_bilinear_resample_and_first_box_order():
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8))
    t = SpatialTransform("random_resized_crop", None, 16, flip=False, resample="bilinear")
    g = torch.Generator().manual_seed(3)
    geometry = next(b for b in (t.sample(img.size, "x", g) for _ in range(20)) if b.first_box is not None)
    out = t.apply(img, geometry)
    expected = img.crop(geometry.first_box).resize((16, 16), Image.Resampling.BILINEAR)
    assert np.array_equal(np.asarray(out), np.asarray(expected))
    with pytest.raises(ConfigError, match="data.resample"):
        SpatialTransform("resize_and_crop", 8, 8, resample="lanczos")


def test_weighted_sampler_is_balanced_seeded_and_split_over_ranks():
    data = list(range(40))
    weights = [1 / 30] * 30 + [1 / 10] * 10  # domain 0: 30 items, domain 1: 10
    sampler = ResumableSampler(data, seed=1, weights=weights)
    draws = [i for epoch in range(20) for sampler.epoch in [epoch] for _, i in sampler]
    share = sum(i >= 30 for i in draws) / len(draws)
    assert 0.45 < share < 0.55 and len(draws) == 800  # half from the small domain, epochs of 40
    sampler.set_epoch(3)
    first = list(sampler)
    assert list(sampler) == first and all(e == 3 for e, _ in first)  # a function of (seed, epoch)
    sampler.set_epoch(4)
    assert list(sampler) != first
    ranks = [ResumableSampler(data, seed=1, weights=weights) for _ in range(2)]
    for r, s in enumerate(ranks):
        s.num_replicas, s.rank, s.num_samples, s.total_size = 2, r, 20, 40
        s.set_epoch(3)
    both = [i for s in ranks for _, i in s]
    assert sorted(both) == sorted(i for _, i in first)  # the ranks split the one draw


def _tree(root: Path) -> Path:
    for k, (domain, count) in enumerate((("cat", 6), ("dog", 2))):
        for i in range(count):
            write_image(root / "train" / domain / f"{i}.png", size=(10, 10), seed=10 * k + i)
        write_image(root / "val" / domain / "0.png", size=(10, 10), seed=99 + k)
    return root


def test_reference_pairs_and_balanced_loader(tmp_path: Path):
    root = _tree(tmp_path / "d")
    dm = DomainsDataModule(
        root, balanced=True, references=True, preprocess="random_resized_crop", crop_size=8, num_workers=0
    )
    dm.setup("fit")
    train = dm.dataset("train", augment=True)
    partners = train.partners
    assert [sorted(p) for p in partners] == [list(range(6)), list(range(2))]  # fixed permutations
    seen = Counter()
    for index in range(40):
        torch.manual_seed(index)
        item = train[index % len(train)]
        assert item["ref"].shape == item["ref2"].shape == (3, 8, 8)
        seen[int(item["ref_domain"])] += 1
    assert seen[0] > 8 and seen[1] > 8  # domains drawn uniformly, not by size
    # the pair is an image of the reference domain and its fixed partner
    names = ("cat", "dog")
    for index in range(10):
        item = train[index % len(train)]
        k = int(item["ref_domain"])
        ref, ref2 = Path(item["ref_path"]), Path(item["ref2_path"])
        assert ref.parent.name == ref2.parent.name == names[k]
        paths = train.by_domain[k]
        assert paths[partners[k][paths.index(ref)]] == ref2
    # evaluation items carry no references
    assert "ref" not in dm.dataset("val")[0]
    # the loader draws the small domain about as often as the large one
    batch_domains = [int(d) for batch in dm.train_dataloader() for d in batch["domain"]]
    assert len(batch_domains) == 8
    loader = dm.train_dataloader()
    counts = Counter()
    for epoch in range(10):
        loader.sampler.set_epoch(epoch)
        counts.update(int(d) for batch in loader for d in batch["domain"])
    assert 0.35 < counts[1] / sum(counts.values()) < 0.65
