"""SPADE's label-map data sets on tiny copies of their official layouts: ``data=ade20k``
(``images/`` + ``annotations/{training,validation}/``, ids as stored, 150 classes + dontcare, no
instance maps) and ``data=coco_stuff`` (``{train,val}_{img,label,inst}/``, 255 read as the
dontcare id 182, instance maps); the data module's items and the checker's verdicts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from imtrans.data import DataError, LabelDataModule
from imtrans.data.check import check
from imtrans.errors import ConfigError

from .conftest import write_ids, write_image

CONF = Path(__file__).resolve().parents[2] / "imtrans" / "conf"
ADE_IDS = (0, 1, 75, 150)  # 0 = "other", 150 = the last class (it shares the dontcare channel)
COCO_IDS = (0, 90, 181, 182, 255)  # 182: the dontcare id as itself; 255: COCO-Stuff's unlabelled


def _ids(values, seed: int) -> np.ndarray:
    """A 16 x 16 uint8 map holding every id of ``values``, the rest drawn from them."""
    ids = np.random.default_rng(seed).choice(np.array(values, dtype=np.uint8), size=(16, 16))
    ids.flat[: len(values)] = values
    return ids


def write_ade20k(root: Path, train: int = 3, val: int = 2) -> Path:
    """ADEChallengeData2016's tree: images/ and annotations/ with training/ and validation/."""
    for split, tag, count in (("training", "train", train), ("validation", "val", val)):
        for i in range(1, count + 1):
            stem = f"ADE_{tag}_{i:08d}"
            write_image(root / "images" / split / f"{stem}.jpg", size=(16, 16), seed=i)
            write_ids(root / "annotations" / split / f"{stem}.png", _ids(ADE_IDS, i))
    return root


def write_coco_stuff(root: Path, train: int = 3, val: int = 2) -> Path:
    """SPADE's COCO-Stuff tree: {train,val}_img/*.jpg, {train,val}_label/*.png, {train,val}_inst/*.png."""
    for split, count in (("train", train), ("val", val)):
        for i in range(1, count + 1):
            stem = f"{i:012d}"
            write_image(root / f"{split}_img" / f"{stem}.jpg", size=(16, 16), seed=i)
            write_ids(root / f"{split}_label" / f"{stem}.png", _ids(COCO_IDS, i))
            write_ids(root / f"{split}_inst" / f"{stem}.png", _ids((0, 1, 2, 3), 100 + i))
    return root


def _preset(name: str, root: Path, **overrides):
    data = OmegaConf.load(CONF / "data" / f"{name}.yaml")
    cfg = OmegaConf.merge({"paths": {"data_dir": str(root.parent)}}, {"data": data}, {"data": overrides})
    return instantiate(cfg.data)


def test_ade20k_ids_as_stored_splits_and_official_sizes(tmp_path: Path):
    root = write_ade20k(tmp_path / "ade20k")
    dm = _preset("ade20k", root, num_workers=0)
    assert (dm.label_nc, dm.contain_dontcare_label, dm.input_nc, dm.use_instance) == (150, True, 151, False)
    dm.setup()
    sizes = {split: len(dm.dataset(split, augment=split == "train")) for split in ("train", "val", "test")}
    assert sizes == {"train": 3, "val": 2, "test": 2}
    assert dm.split_source("val") == "test"  # val and test both read validation/, as SPADE's test phase
    item = dm.dataset("test")[1]
    assert set(item) == {"label", "label_path", "B", "B_path"}  # no instance maps
    assert item["label_path"].endswith("annotations/validation/ADE_val_00000002.png")
    assert item["B_path"].endswith("images/validation/ADE_val_00000002.jpg")
    # Evaluation: the whole 16 x 16 map resized to 256 x 256 (nearest), not cropped, ids unshifted.
    raw = torch.from_numpy(_ids(ADE_IDS, 2).astype(np.int64))
    assert item["label"].dtype == torch.int64 and torch.equal(
        item["label"], raw.repeat_interleave(16, 0).repeat_interleave(16, 1)
    )
    assert item["B"].shape == (3, 256, 256) and item["B"].dtype == torch.float32
    batch = next(iter(dm.train_dataloader()))  # training: 286 resize, 256 random crop
    assert batch["label"].shape == (1, 256, 256) and batch["B"].shape == (1, 3, 256, 256)
    assert set(batch["label"].unique().tolist()) <= set(ADE_IDS)
    with pytest.raises(ConfigError, match=r"data.label_folder='annotations': needs \{split\}"):
        LabelDataModule(root, label_folder="annotations")


def test_coco_stuff_dontcare_and_instance_maps(tmp_path: Path):
    root = write_coco_stuff(tmp_path / "coco_stuff")
    dm = _preset("coco_stuff", root, num_workers=0, preprocess="none")
    assert (dm.label_nc, dm.contain_dontcare_label, dm.input_nc, dm.use_instance) == (182, True, 183, True)
    dm.setup()
    assert [len(dm.dataset(s)) for s in ("train", "val", "test")] == [3, 2, 2]
    batch = dm.fixed_batch(2, split="test")
    assert set(batch) == {"label", "label_path", "inst", "inst_path", "B", "B_path"}
    assert batch["label"].dtype == torch.int64 and batch["label"].shape == (2, 16, 16)
    assert batch["inst"].dtype == torch.int64 and batch["B"].dtype == torch.float32
    assert batch["inst_path"][0].endswith("val_inst/000000000001.png")
    raw = torch.from_numpy(_ids(COCO_IDS, 1).astype(np.int64))
    assert torch.equal(batch["label"][0], torch.where(raw == 255, 182, raw))  # 255 -> the dontcare id
    assert batch["label"].unique().tolist() == [0, 90, 181, 182]
    assert torch.equal(batch["inst"][0], torch.from_numpy(_ids((0, 1, 2, 3), 101).astype(np.int64)))


def test_label_out_of_range_is_one_line_naming_the_file(tmp_path: Path):
    root = write_coco_stuff(tmp_path / "coco_stuff")
    bad = root / "val_label" / "000000000002.png"
    ids = _ids(COCO_IDS, 2)
    ids[3, 4] = 200  # neither a class (0..181) nor the dontcare id (182, or 255 in the file)
    write_ids(bad, ids)
    problem = "label id 200 >= label_nc 182 and not the dontcare id (182, or 255 in the file)"
    with pytest.raises(DataError, match=r"val_label/000000000002\.png: ") as info:
        _preset("coco_stuff", root, preprocess="none").setup("test")
    assert problem in str(info.value) and "\n" not in str(info.value)

    report = check(["data=coco_stuff", f"data.root={root}"])
    assert [line for line in report.errors if "label id" in line] == [
        f"{bad}: label id(s) 200 >= label_nc 182 and not the dontcare id (182, or 255 in the file); "
        "fix the map, or raise data.label_nc (the classes besides dontcare)"
    ]
    # the instance maps SPADE's COCO model needs: a missing folder is an error
    for path in (root / "train_inst").iterdir():
        path.unlink()
    (root / "train_inst").rmdir()
    missing = check(["data=coco_stuff", f"data.root={root}"])
    assert any(line.startswith(f"{root / 'train_inst'}: folder not found") for line in missing.errors)


def test_checker_accepts_the_official_layouts(tmp_path: Path):
    ade = check(["data=ade20k", f"data.root={write_ade20k(tmp_path / 'ade20k')}"])
    assert ade.ok and not ade.warnings, ade.format()
    assert {key: g.files for key, g in ade.groups.items()} == {
        ("train", "label"): 3,
        ("train", "img"): 3,
        ("val", "label"): 2,
        ("val", "img"): 2,
    }
    assert ade.folder("val", "label") == "annotations/validation/"
    coco = check(["data=coco_stuff", f"data.root={write_coco_stuff(tmp_path / 'coco_stuff')}"])
    assert coco.ok and not coco.warnings, coco.format()
    assert coco.groups[("val", "inst")].files == 2 and coco.groups[("train", "label")].files == 3
