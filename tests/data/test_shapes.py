"""The procedural shapes data set: determinism, value ranges, ground truth, pairing, batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from imtrans.data import ShapesDataModule, ShapesDataset
from imtrans.data.shapes import layout_from_tensor, make_item, render_layout, sample_colors, sample_layout


def _equal_items(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k] for k in a)


def test_items_are_deterministic_and_seed_dependent():
    first = ShapesDataset("train", length=8, seed=0)[5]
    assert _equal_items(first, ShapesDataset("train", length=8, seed=0)[5])
    # The same in any process: an item depends on (seed, split, index) only.
    assert _equal_items(first, make_item(0, "train", 5))
    assert not torch.equal(first["B"], ShapesDataset("train", length=8, seed=1)[5]["B"])
    assert not torch.equal(first["B"], ShapesDataset("val", length=8, seed=0)[5]["B"])
    assert not torch.equal(first["A"], ShapesDataset("train", length=8, seed=0)[6]["A"])


def test_value_ranges_and_dtypes():
    item = ShapesDataset("val", length=1, size=64)[0]
    for key in ("A", "B"):
        assert item[key].shape == (3, 64, 64) and item[key].dtype == torch.float32
        assert item[key].min() >= -1 and item[key].max() <= 1
    for key in ("A_mask", "B_mask", "A_outline"):
        assert item[key].shape == (1, 64, 64)
        assert set(item[key].unique().tolist()) <= {0.0, 1.0}
    count = int(item["B_count"])
    assert item["B_count"].dtype == torch.int64 and 1 <= count <= 3
    colors = item["B_colors"]
    assert colors.shape == (4, 3)
    assert ((colors[: 1 + count] >= 0) & (colors[: 1 + count] <= 1)).all()
    assert (colors[1 + count :] == -1).all()
    assert (colors[0] >= 190 / 255 - 1e-6).all()  # light background
    assert item["A_path"] == "shapes/val/0/A" and item["B_path"] == "shapes/val/0/B"


def test_masks_and_colors_match_the_images():
    for index in range(6):
        item = ShapesDataset("val", length=6)[index]
        a = (item["A"] + 1) * 127.5
        b = ((item["B"] + 1) * 127.5).round()
        assert torch.equal(item["A_mask"], item["B_mask"])  # val: one layout for A and B
        # A: black exactly on the outline, white elsewhere.
        outline = item["A_outline"][0].bool()
        assert (a[:, outline] == 0).all() and (a[:, ~outline] == 255).all()
        # B: background colour exactly outside the mask, fill colours inside.
        mask = item["B_mask"][0].bool()
        background = (item["B_colors"][0] * 255).round()
        assert (b[:, ~mask] == background[:, None]).all()
        fills = (item["B_colors"][1 : 1 + int(item["B_count"])] * 255).round()
        inside = b[:, mask].T
        assert (inside[:, None, :] == fills[None]).all(-1).any(-1).all()
        # The outline runs along the filled shapes.
        assert (outline & mask).sum() >= 0.8 * outline.sum()


def test_layout_tensors_re_render_the_same_ground_truth():
    item = make_item(3, "test", 7)
    truth = render_layout(layout_from_tensor(item["B_layout"]), 64)
    assert torch.equal(torch.from_numpy(truth["mask"]).float()[None], item["B_mask"])
    assert torch.equal(torch.from_numpy(truth["outline"]).float()[None], item["A_outline"])


def test_unpaired_training_layouts_are_independent():
    dataset = ShapesDataset("train", length=20, paired=False)
    differ = sum(not torch.equal(dataset[i]["A_mask"], dataset[i]["B_mask"]) for i in range(20))
    assert differ >= 18
    item = dataset[0]
    assert not torch.equal(item["A_layout"], item["B_layout"])


def test_paired_shapes_share_the_layout_in_training():
    dataset = ShapesDataset("train", length=10, paired=True)
    for i in range(10):
        item = dataset[i]
        assert torch.equal(item["A_mask"], item["B_mask"])
        assert torch.equal(item["A_layout"], item["B_layout"])


def test_layout_sampling_follows_the_notes():
    rng = np.random.default_rng(0)
    layouts = [sample_layout(rng, 64) for _ in range(300)]
    counts = [len(layout) for layout in layouts]
    assert set(counts) == {1, 2, 3}
    shapes = [shape for layout in layouts for shape in layout]
    assert {s.kind for s in shapes} == {"circle", "square", "triangle"}
    assert all(7 <= s.r <= 16 and s.r + 1 <= s.cx <= 63 - s.r and s.r + 1 <= s.cy <= 63 - s.r for s in shapes)
    fills = sample_colors(rng, 200)[1:].astype(float) / 255
    # HSV value in [0.55, 0.95] and saturation in [0.8, 1] (with rounding slack).
    value, low = fills.max(1), fills.min(1)
    assert (value >= 0.55 - 0.01).all() and (value <= 0.95 + 0.01).all()
    assert ((value - low) / value >= 0.8 - 0.02).all()


def test_size_scales_the_shapes():
    item = ShapesDataset("val", length=1, size=128)[0]
    assert item["A"].shape == (3, 128, 128)
    assert item["B_layout"][0, 3] >= 14  # r ~ U(7, 16) * 2


def test_datamodule_batches_and_fixed_batch():
    dm = ShapesDataModule(train_size=6, val_size=5, test_size=3, batch_size=4)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["A"].shape == (4, 3, 64, 64) and batch["B_colors"].shape == (4, 4, 3)
    assert batch["B_count"].shape == (4,) and len(batch["A_path"]) == 4
    assert len(dm.train_dataloader()) == 1  # drop_last: 6 items, batch 4
    assert len(dm.val_dataloader().dataset) == 5 and len(dm.test_dataloader().dataset) == 3
    fixed = dm.fixed_batch()
    assert fixed["A"].shape == (4, 3, 64, 64)
    assert torch.equal(fixed["A"], ShapesDataModule().fixed_batch()["A"])  # no setup needed
    assert torch.equal(fixed["A_mask"], fixed["B_mask"])
    assert dm.paired is False and dm.domains == ["A", "B"] and dm.crop_size == 64
    assert ShapesDataModule(paired=True).paired is True


def test_grayscale_sides():
    dm = ShapesDataModule(input_nc=1, output_nc=1)
    batch = dm.fixed_batch(2)
    assert batch["A"].shape == (2, 1, 64, 64) and batch["B"].shape == (2, 1, 64, 64)


def test_crop_size_must_equal_size():
    with pytest.raises(ValueError, match="crop_size"):
        ShapesDataModule(size=64, crop_size=32)
