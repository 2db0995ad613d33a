"""Bad or unusual inputs: each gives a one-line DataError naming the file/folder, or is converted."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from imtrans.data import DataError, LabelDataModule, PairedDataModule, UnpairedDataModule
from imtrans.data.io import load_photo, photo_to_tensor

from .conftest import write_ids, write_image


def _raises(dm, path: Path) -> str:
    """``dm.setup()`` raises a one-line DataError starting with ``path``; returns the message."""
    with pytest.raises(DataError) as info:
        dm.setup()
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: "), message
    return message


def test_truncated_jpeg(unpaired_root: Path):
    bad = write_image(unpaired_root / "trainA" / "003.jpg", size=(64, 64))
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) * 2 // 3])  # header intact, scan data cut off
    message = _raises(UnpairedDataModule(unpaired_root), bad)
    assert "truncated or corrupt image" in message
    # verify="header" does not decode; the error then comes when the item is read.
    dm = UnpairedDataModule(unpaired_root, verify="header")
    dm.setup()
    with pytest.raises(DataError, match=re.escape(f"{bad}: truncated")):
        dm.dataset("train")[3]


def test_non_image_with_image_extension_is_an_error_and_txt_is_ignored(unpaired_root: Path):
    (unpaired_root / "trainA" / "notes.txt").write_text("not an image")
    (unpaired_root / "trainA" / ".hidden.png").write_text("hidden files are ignored")
    dm = UnpairedDataModule(unpaired_root)
    dm.setup()
    assert len(dm.dataset("train", augment=True)) == 3
    fake = unpaired_root / "trainB" / "fake.PNG"
    fake.write_text("hello")
    message = _raises(UnpairedDataModule(unpaired_root, verify="header"), fake)
    assert "not an image" in message


def test_grayscale_is_converted_to_rgb(tmp_path: Path):
    path = write_image(tmp_path / "gray.png", mode="L")
    tensor = photo_to_tensor(load_photo(path, 3))
    assert tensor.shape == (3, 6, 8)
    assert torch.equal(tensor[0], tensor[1]) and torch.equal(tensor[1], tensor[2])
    expected = torch.from_numpy(np.array(Image.open(path))).float() / 127.5 - 1
    assert torch.allclose(tensor[0], expected)
    assert photo_to_tensor(load_photo(path, 1)).shape == (1, 6, 8)


def test_rgba_is_composited_on_white(tmp_path: Path):
    pixels = np.zeros((2, 2, 4), dtype=np.uint8)
    pixels[0, 0] = (255, 0, 0, 255)  # opaque red
    pixels[0, 1] = (0, 0, 255, 0)  # fully transparent: white
    pixels[1, 0] = (0, 0, 0, 128)  # half-transparent black: grey
    path = tmp_path / "alpha.png"
    Image.fromarray(pixels, "RGBA").save(path)
    rgb = np.asarray(load_photo(path, 3))
    assert rgb[0, 0].tolist() == [255, 0, 0]
    assert rgb[0, 1].tolist() == [255, 255, 255]
    assert all(abs(v - 127) <= 1 for v in rgb[1, 0])


def test_16bit_photo_is_scaled_to_8bit(tmp_path: Path):
    values = np.array([[0, 257 * 100, 65535]], dtype=np.uint16)
    path = write_ids(tmp_path / "photo16.png", values)
    assert Image.open(path).mode.startswith("I")
    rgb = np.asarray(load_photo(path, 3))
    assert rgb[0, :, 0].tolist() == [0, 100, 255] and rgb.shape == (1, 3, 3)


def test_empty_folder(unpaired_root: Path):
    empty = unpaired_root / "testB"
    shutil.rmtree(empty)
    empty.mkdir()
    (empty / "readme.txt").write_text("only text")
    message = _raises(UnpairedDataModule(unpaired_root), empty)
    assert "no image files" in message


def test_missing_trainB(unpaired_root: Path):
    shutil.rmtree(unpaired_root / "trainB")
    message = _raises(UnpairedDataModule(unpaired_root), unpaired_root / "trainB")
    assert message.endswith("folder not found; expected <root>/{trainA,trainB,testA,testB} (unpaired layout)")


def test_missing_root_suggests_download(tmp_path: Path):
    root = tmp_path / "horse2zebra"
    message = _raises(UnpairedDataModule(root, name="horse2zebra"), root)
    assert "data.root" in message
    assert f"python -m imtrans.data.download horse2zebra --root {tmp_path}" in message
    generic = tmp_path / "mine"
    assert "data.root" in _raises(UnpairedDataModule(generic), generic)
    with pytest.raises(DataError, match=r"^data\.root: not set"):
        UnpairedDataModule().setup()


def test_unmatched_pair(tmp_path: Path):
    root = tmp_path / "pairs"
    for folder in ("trainA", "trainB", "testA", "testB"):
        for stem in ("a", "b"):
            write_image(root / folder / f"{stem}.png")
    lonely = write_image(root / "trainA" / "c.png")
    message = _raises(PairedDataModule(root), lonely)
    assert "no file with the matching name 'c'" in message and str(root / "trainB") in message
    lonely.unlink()
    extra = write_image(root / "testB" / "z.jpg")
    _raises(PairedDataModule(root), extra)


def test_paired_folders_with_different_sizes(tmp_path: Path):
    root = tmp_path / "pairs"
    write_image(root / "trainA" / "a.png", size=(8, 6))
    wrong = write_image(root / "trainB" / "a.png", size=(8, 7))
    message = _raises(PairedDataModule(root, preprocess="none"), wrong)
    assert "differs from" in message


def test_odd_width_side_by_side(tmp_path: Path):
    root = tmp_path / "facades"
    write_image(root / "train" / "1.jpg", size=(8, 4))
    odd = write_image(root / "train" / "2.jpg", size=(9, 4))
    write_image(root / "test" / "1.jpg", size=(8, 4))
    message = _raises(PairedDataModule(root, verify="header"), odd)
    assert "odd width 9" in message
    dm = PairedDataModule(root, verify="none", preprocess="none")
    dm.setup()
    with pytest.raises(DataError, match=re.escape(f"{odd}: side-by-side AB image has odd width")):
        dm.dataset("train")[1]


def test_label_id_above_label_nc(tmp_path: Path):
    root = tmp_path / "labels"
    ids = np.zeros((4, 8), dtype=np.uint8)
    write_ids(root / "train_label" / "x.png", ids)
    ids[2, 3] = 40
    bad = write_ids(root / "train_label" / "y.png", ids)
    for stem in ("x", "y"):
        write_image(root / "train_img" / f"{stem}.png", size=(8, 4))
    write_ids(root / "test_label" / "x.png", np.zeros((4, 8), dtype=np.uint8))
    message = _raises(LabelDataModule(root, label_nc=35, preprocess="none"), bad)
    assert "label id 40 >= label_nc 35" in message
    dm = LabelDataModule(root, label_nc=35, preprocess="none", verify="header")
    dm.setup()  # only headers checked; the item itself still refuses the id
    with pytest.raises(DataError, match="label id 40"):
        dm.dataset("train")[1]
    LabelDataModule(root, label_nc=41, preprocess="none").setup()


def test_rgb_label_map_is_refused(tmp_path: Path):
    root = tmp_path / "labels"
    bad = write_image(root / "train_label" / "x.png", size=(8, 4))
    write_image(root / "train_img" / "x.png", size=(8, 4))
    assert "map has mode RGB" in _raises(LabelDataModule(root, preprocess="none", verify="header"), bad)
    dm = LabelDataModule(root, preprocess="none", verify="none")
    with pytest.raises(DataError, match=re.escape(f"{bad}: map has mode RGB")):
        dm.dataset("train")[0]


def test_bad_options_are_refused_at_construction():
    with pytest.raises(ValueError, match="data.preprocess"):
        UnpairedDataModule("x", preprocess="stretch")
    with pytest.raises(ValueError, match="data.crop_size"):
        UnpairedDataModule("x", load_size=200, crop_size=256)
    with pytest.raises(ValueError, match="data.verify"):
        UnpairedDataModule("x", verify="maybe")
    with pytest.raises(ValueError, match="data.direction"):
        PairedDataModule("x", direction="sideways")
    with pytest.raises(ValueError, match="data.input_nc"):
        UnpairedDataModule("x", input_nc=4)
