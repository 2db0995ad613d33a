"""Training-data schedules (a method's ``train_data_schedule``: CUT stops cropping in its decay
epochs) and the unpaired data module's ``domains`` and ``direction`` options."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from imtrans.data import UnpairedDataModule
from imtrans.data.errors import DataError
from imtrans.errors import ConfigError
from tests.data.conftest import write_image


def _attach(dm, schedule):
    """A data module as a Trainer holds it, with a model that has ``schedule``."""
    module = SimpleNamespace(train_data_schedule=lambda: schedule)
    dm.trainer = SimpleNamespace(lightning_module=module)
    return dm


def _keys(loader_dataset, epoch, n):
    return [loader_dataset[(epoch, i)] for i in range(n)]


def test_schedule_switches_to_the_uncropped_images_from_its_epoch(unpaired_root: Path):
    # 8x6 images: resize to 8x8 and crop 4 (random place) until epoch 2, then resize to 4x4
    dm = UnpairedDataModule(
        unpaired_root, load_size=8, crop_size=4, flip=False, preprocess="resize_and_crop", num_workers=0
    )
    _attach(dm, [(2, {"load_size": 4})])
    dm.setup("fit")
    data = dm.train_dataloader().dataset
    resized = UnpairedDataModule(
        unpaired_root, load_size=4, crop_size=4, flip=False, preprocess="resize_and_crop", num_workers=0
    )
    resized.setup("fit")
    whole = resized.dataset("train", augment=True)
    for epoch in (2, 3):
        for i, item in enumerate(_keys(data, epoch, 3)):
            # the whole image at 4x4: the same pixels as a data set resized to 4 directly
            torch.testing.assert_close(item["A"], whole[i]["A"], rtol=0, atol=0)
    # before the switch: crops of the 8x8 image, which differ from the downscaled whole image
    early = _keys(data, 1, 3)
    assert all(item["A"].shape == (3, 4, 4) for item in early)
    assert any(not torch.equal(item["A"], whole[i]["A"]) for i, item in enumerate(early))
    # the epoch travels with the key: asking again gives the same item (workers, resume)
    torch.testing.assert_close(data[(3, 1)]["A"], data[(3, 1)]["A"], rtol=0, atol=0)


def test_no_schedule_and_bad_settings(unpaired_root: Path):
    dm = UnpairedDataModule(unpaired_root, load_size=8, crop_size=4, num_workers=0)
    dm.setup("fit")
    assert dm.train_dataloader().dataset.later == []  # outside a Trainer: no model, no schedule
    _attach(dm, [(1, {"zoom": 2})])
    with pytest.raises(ConfigError, match="'zoom'.* not preprocessing settings"):
        dm.train_dataloader()


def test_shapes_data_ignores_preprocessing_changes():
    from imtrans.data import ShapesDataModule

    dm = _attach(ShapesDataModule(size=32, train_size=4), [(1, {"load_size": 32})])
    dm.setup("fit")
    data = dm.train_dataloader().dataset
    torch.testing.assert_close(data[(0, 1)]["A"], data.dataset_at(5)[1]["A"])


def _domains_tree(root: Path) -> Path:
    for split, count in (("train", 3), ("val", 2)):
        for k, domain in enumerate(("cat", "dog", "wild")):
            for i in range(count):
                write_image(root / split / domain / f"{domain}{i}.png", seed=100 * k + i)
    return root


def test_two_domain_folders_as_an_unpaired_pair(tmp_path: Path):
    root = _domains_tree(tmp_path / "afhq")
    dm = UnpairedDataModule(root, domains=["cat", "dog"], load_size=8, crop_size=8, num_workers=0)
    dm.setup()
    train = dm.dataset("train")
    assert len(train) == 3 and Path(train[0]["A_path"]).parent.name == "cat"
    assert Path(train[0]["B_path"]).parent.name == "dog"
    test = dm.dataset("test")  # AFHQ has no test split: val is read
    assert Path(test[1]["A_path"]).parts[-3:] == ("val", "cat", "cat1.png")
    with pytest.raises(ConfigError, match="exactly two domain folders"):
        UnpairedDataModule(root, domains=["cat"])
    missing = UnpairedDataModule(root, domains=["cat", "fox"], num_workers=0)
    with pytest.raises(DataError, match="fox.*folder not found"):
        missing.setup()


def test_direction_swaps_the_sides(unpaired_root: Path):
    forward = UnpairedDataModule(unpaired_root, load_size=8, crop_size=8, num_workers=0)
    backward = UnpairedDataModule(unpaired_root, load_size=8, crop_size=8, num_workers=0, direction="BtoA")
    forward.setup(), backward.setup()
    a, b = forward.dataset("test")[0], backward.dataset("test")[0]
    assert (a["A_path"], a["B_path"]) == (b["B_path"], b["A_path"])
    assert "trainB" in backward.dataset("train")[0]["A_path"]
    with pytest.raises(ConfigError, match="data.direction"):
        UnpairedDataModule(unpaired_root, direction="sideways")
