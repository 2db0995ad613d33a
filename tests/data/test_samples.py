"""Readers on the real sample data (../shared/data): Cityscapes maps and edges2handbags folders/lists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from imtrans.data import DataError, LabelDataModule, PairedDataModule, UnpairedDataModule
from imtrans.data.transforms import Geometry


def _array(path: str | Path) -> np.ndarray:
    return np.array(Image.open(path)).astype(np.int64)


def _label_from_instances(inst: torch.Tensor) -> torch.Tensor:
    """Cityscapes instance ids are label * 1000 + k for "thing" classes and the label otherwise."""
    return torch.where(inst >= 1000, inst // 1000, inst)


def _crop_and_flip(ref: torch.Tensor, geometry: Geometry) -> torch.Tensor:
    """The crop and flip of ``geometry`` done by tensor slicing, as an independent reference."""
    left, top, right, bottom = geometry.box
    crop = ref[..., top:bottom, left:right]
    return crop.flip(-1) if geometry.flip else crop


@pytest.fixture
def cityscapes(shared_data: Path) -> Path:
    return shared_data / "cityscapes_sample"


def test_cityscapes_maps_are_read_exactly(cityscapes: Path):
    dm = LabelDataModule(cityscapes, label_nc=35, use_instance=True, preprocess="none", verify="header")
    dm.setup()
    assert len(dm.dataset("train")) == 8 and len(dm.dataset("test")) == 15
    item = dm.dataset("train")[0]
    assert item["label_path"].endswith("aachen_000000_000019_gtFine_labelIds.png")
    assert item["inst_path"].endswith("aachen_000000_000019_gtFine_instanceIds.png")
    assert item["B_path"].endswith("aachen_000000_000019_leftImg8bit.png")
    assert item["label"].shape == (1024, 2048) and item["label"].dtype == torch.int64
    assert item["inst"].dtype == torch.int64 and item["B"].shape == (3, 1024, 2048)
    assert np.array_equal(item["label"].numpy(), _array(item["label_path"]))
    assert np.array_equal(item["inst"].numpy(), _array(item["inst_path"]))  # 16-bit ids, exact
    assert int(item["inst"].max()) == 33001 and int(item["label"].max()) <= 33
    assert "B" not in dm.dataset("test")[0]  # the sample's test split has no photos


def test_cityscapes_scale_width_resizes_maps_with_nearest(cityscapes: Path):
    dm = LabelDataModule(cityscapes, label_nc=35, use_instance=True, verify="none")  # 1024, no crop
    item = dm.fixed_batch(1, split="train")
    inst, label = item["inst"][0], item["label"][0]
    assert inst.shape == (512, 1024) and item["B"].shape == (1, 3, 512, 1024)
    original = _array(item["inst_path"][0])
    # Nearest neighbour at scale 1/2 samples pixel (2i + 1, 2j + 1): ids are original ids, exactly.
    assert np.array_equal(inst.numpy(), original[1::2, 1::2])
    assert int(inst.max()) == 33001
    assert torch.equal(label, _label_from_instances(inst))


def test_cityscapes_random_crop_and_flip_are_identical_on_label_inst_and_image(cityscapes: Path):
    dm = LabelDataModule(
        cityscapes, label_nc=35, use_instance=True, preprocess="crop", crop_size=256, verify="none"
    )
    dataset = dm.dataset("train", augment=True)
    label_ref = torch.from_numpy(_array(dataset.labels[3]))
    inst_ref = torch.from_numpy(_array(dataset.insts[3]))
    image_ref = torch.from_numpy(np.array(Image.open(dataset.images[3]))).permute(2, 0, 1).float() / 127.5 - 1
    flips = set()
    for seed in range(4):
        torch.manual_seed(seed)
        item = dataset[3]
        torch.manual_seed(seed)  # the same draws give the geometry the item used
        geometry = dataset.transform.sample((2048, 1024), "x")
        flips.add(geometry.flip)
        assert torch.equal(item["label"], _crop_and_flip(label_ref, geometry))
        assert torch.equal(item["inst"], _crop_and_flip(inst_ref, geometry))
        assert torch.allclose(item["B"], _crop_and_flip(image_ref, geometry))
        assert torch.equal(item["label"], _label_from_instances(item["inst"]))
    assert flips == {True, False}


def test_cityscapes_full_verification_passes(cityscapes: Path):
    LabelDataModule(cityscapes, label_nc=35, use_instance=True).setup("fit")
    with pytest.raises(DataError, match=r"gtFine_labelIds\.png: label id 33 >= label_nc 20"):
        LabelDataModule(cityscapes, label_nc=20).setup("fit")


def test_edges2handbags_folders_and_lists(shared_data: Path):
    root = shared_data / "edges2handbags_sample"
    folders = UnpairedDataModule(root, use_lists=False, load_size=64, crop_size=64, verify="header")
    folders.setup()
    train = folders.dataset("train")
    assert len(train) == 8 and Path(train[0]["A_path"]).name == "00000.jpg"
    assert Path(train[0]["B_path"]).name == "00001.jpg"
    lists = UnpairedDataModule(root, load_size=64, crop_size=64, verify="header")  # auto: list files
    listed = lists.dataset("train")
    order = [line.strip()[2:] for line in (root / "list_trainA.txt").read_text().split()]
    assert [Path(listed[i]["A_path"]).name for i in range(len(order))] == order
    assert listed[0]["A_path"] == str(root / "trainA" / "00002.jpg")
    assert len(lists.dataset("test")) == 9
    batch = lists.fixed_batch(2)
    assert batch["A"].shape == (2, 3, 64, 64) and batch["A"].min() >= -1 and batch["A"].max() <= 1


def test_edges2handbags_as_paired_folders(shared_data: Path):
    root = shared_data / "edges2handbags_sample"
    dm = PairedDataModule(root, layout="folders", preprocess="none", verify="header")
    item = dm.dataset("test")[4]  # testA / testB share names
    assert Path(item["A_path"]).name == Path(item["B_path"]).name == "00004.jpg"
    # trainA holds even numbers, trainB odd ones: no partners.
    with pytest.raises(DataError, match=r"trainA/00000\.jpg: no file with the matching name '00000'"):
        dm.setup("fit")
