"""Preprocessing: sizes per preprocess word, identical crop/flip for aligned images and maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from imtrans.data import DataError, PairedDataModule, SpatialTransform
from imtrans.data.datasets import LabelDataset, SideBySideDataset

from .conftest import write_ids, write_image


@pytest.mark.parametrize(
    ("preprocess", "load", "crop", "size", "expected"),
    [
        ("resize_and_crop", 286, 256, (300, 200), (256, 256)),
        ("scale_shorter_side_and_crop", 40, 32, (90, 60), (32, 32)),
        ("scale_width", 64, None, (128, 64), (64, 32)),
        ("scale_width", 64, 16, (128, 64), (16, 16)),
        ("crop", None, 16, (40, 30), (16, 16)),
        ("none", None, None, (40, 30), (40, 30)),
    ],
)
def test_output_sizes(preprocess, load, crop, size, expected):
    for augment in (True, False):
        transform = SpatialTransform(preprocess, load, crop, flip=True, augment=augment)
        img = Image.new("RGB", size)
        assert transform.apply(img, transform.sample(size, "x.png")).size == expected


def test_scale_shorter_side_keeps_aspect():
    geometry = SpatialTransform("scale_shorter_side_and_crop", 40, 32, augment=False).sample((90, 60), "x")
    assert geometry.resize == (60, 40)


def test_evaluation_is_a_deterministic_centre_crop():
    transform = SpatialTransform("crop", None, 4, flip=True, augment=False)
    geometries = {transform.sample((10, 8), "x") for _ in range(20)}
    assert geometries == {transform.sample((10, 8), "x")}
    (geometry,) = geometries
    assert geometry.box == (3, 2, 7, 6) and not geometry.flip


def test_training_draws_crops_and_flips():
    transform = SpatialTransform("crop", None, 4, flip=True, augment=True)
    geometries = {transform.sample((10, 8), "x") for _ in range(100)}
    assert len({g.box for g in geometries}) > 5 and {g.flip for g in geometries} == {True, False}
    no_flip = SpatialTransform("crop", None, 4, flip=False)
    assert not any(no_flip.sample((10, 8), "x").flip for _ in range(20))


def test_image_smaller_than_crop_names_the_file():
    with pytest.raises(DataError, match=r"^small\.png: image is 10x8, smaller than crop_size 16$"):
        SpatialTransform("crop", None, 16).sample((10, 8), "small.png")


def test_side_by_side_identical_halves_stay_identical(tmp_path: Path):
    half = np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    path = tmp_path / "ab.png"
    Image.fromarray(np.concatenate([half, half], axis=1)).save(path)
    dataset = SideBySideDataset([path], SpatialTransform("resize_and_crop", 30, 16, flip=True))
    torch.manual_seed(0)
    draws = [dataset[0] for _ in range(12)]
    for item in draws:
        assert item["A"].shape == (3, 16, 16) and torch.equal(item["A"], item["B"])
    assert any(not torch.equal(draws[0]["A"], item["A"]) for item in draws)  # the crops did vary


def test_paired_folders_share_crop_and_flip(tmp_path: Path):
    root = tmp_path / "pairs"
    for folder in ("trainA", "trainB"):
        write_image(root / folder / "x.png", size=(20, 16), seed=3)
    dm = PairedDataModule(root, layout="folders", preprocess="crop", crop_size=8)
    dataset = dm.dataset("train", augment=True)
    for _ in range(10):
        item = dataset[0]
        assert torch.equal(item["A"], item["B"])


def test_direction_swaps_the_halves(tmp_path: Path):
    root = tmp_path / "facades"
    left = np.zeros((4, 4, 3), dtype=np.uint8)
    right = np.full((4, 4, 3), 255, dtype=np.uint8)
    Image.fromarray(np.concatenate([left, right], axis=1)).save(write_image(root / "train" / "1.png"))
    forward = PairedDataModule(root, preprocess="none").dataset("train")[0]
    backward = PairedDataModule(root, preprocess="none", direction="BtoA").dataset("train")[0]
    assert (forward["A"] == -1).all() and (forward["B"] == 1).all()
    assert (backward["A"] == 1).all() and (backward["B"] == -1).all()


def _position_coded_item(tmp_path: Path, width: int = 32, height: int = 24) -> list[Path]:
    """Label, instance map and image that all encode each pixel's position.

    Instance id = 30000 + y * width + x (16 bit), label id = that position mod 35, image colour =
    (7 x, 10 y, 0). After any shared crop/flip, every output pixel must agree across the three.
    """
    ys, xs = np.mgrid[:height, :width]
    position = (ys * width + xs).astype(np.uint16)
    label = write_ids(tmp_path / "label.png", (position % 35).astype(np.uint8))
    inst = write_ids(tmp_path / "inst.png", position + 30000)
    image = tmp_path / "img.png"
    Image.fromarray(np.stack([xs * 7, ys * 10, np.zeros_like(xs)], axis=-1).astype(np.uint8)).save(image)
    return [label, inst, image]


@pytest.mark.parametrize("preprocess", ["crop", "scale_width"])
def test_label_inst_and_image_share_crop_and_flip(tmp_path: Path, preprocess: str):
    label, inst, image = _position_coded_item(tmp_path)
    # crop: 32x24 cropped to 16 (exact pixels); scale_width: 32x24 -> 48x36, then crop 16.
    transform = SpatialTransform(preprocess, 48, 16, flip=True)
    dataset = LabelDataset([label], [inst], [image], transform, label_nc=35)
    torch.manual_seed(1)
    for _ in range(10):
        item = dataset[0]
        assert item["label"].dtype == torch.int64 and item["inst"].dtype == torch.int64
        source = item["inst"] - 30000  # nearest neighbour: every value is an original pixel's id
        assert torch.equal(item["label"], source % 35)
        red = (item["B"][0] + 1) * 127.5 - (source % 32) * 7
        green = (item["B"][1] + 1) * 127.5 - (source // 32) * 10
        if preprocess == "crop":
            assert red.abs().max() < 1e-3 and green.abs().max() < 1e-3
        else:
            # Bicubic vs nearest sampling of the same spot differ by under half a source pixel
            # (3.5 in red, 5 in green); one output pixel of misalignment would add 4.7 / 6.7.
            assert red.abs().max() <= 4.5 and green.abs().max() <= 6
