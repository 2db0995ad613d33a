"""The download helper, offline: urlopen is patched to fail; archives are built locally."""

from __future__ import annotations

import tarfile
import urllib.error
import zipfile
from pathlib import Path

import pytest

from imtrans.data import download
from imtrans.data.sources import DATASETS


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Every test here runs without network: any urlopen call fails like an unreachable host."""

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(download.urllib.request, "urlopen", refuse)


def test_known_data_sets():
    assert set(DATASETS) == {
        "horse2zebra",
        "summer2winter_yosemite",
        "facades",
        "edges2shoes",
        "edges2handbags",
        "cat2dog",
        "afhq",
        "celeba_hq",
        "selfie2anime",
        "cityscapes",
        "cityscapes_cut",
        "ade20k",
        "coco_stuff",
    }
    host = "http://efrosgans.eecs.berkeley.edu"
    assert DATASETS["horse2zebra"].url == f"{host}/cyclegan/datasets/horse2zebra.zip"
    assert DATASETS["facades"].url == f"{host}/pix2pix/datasets/facades.tar.gz"
    assert DATASETS["cat2dog"].url == "http://vllab.ucmerced.edu/hylee/DRIT/datasets/cat2dog.zip"
    assert DATASETS["afhq"].url.startswith("https://www.dropbox.com/")
    assert DATASETS["cityscapes"].url is None and DATASETS["cityscapes_cut"].url is None
    assert DATASETS["ade20k"].url == "http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip"
    assert DATASETS["coco_stuff"].url is None


def test_unreachable_network_prints_url_place_and_layout(tmp_path: Path, capsys):
    assert download.main(["horse2zebra", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "download failed" in err and DATASETS["horse2zebra"].url in err
    assert str(tmp_path / "horse2zebra.zip") in err
    assert f"{tmp_path / 'horse2zebra'}/{{trainA,trainB,testA,testB}}" in err
    assert not list(tmp_path.glob("*.part"))


def test_cityscapes_prints_instructions(tmp_path: Path, capsys):
    assert download.main(["cityscapes", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "login required" in err and "cityscapes-dataset.com" in err
    assert f"{tmp_path / 'cityscapes'}/train_inst/*_gtFine_instanceIds.png" in err


def test_coco_stuff_prints_the_archives_and_the_instance_map_step(tmp_path: Path, capsys):
    assert download.main(["coco_stuff", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "(several archives and a conversion step)" in err and "stuffthingmaps_trainval2017.zip" in err
    assert "coco_generate_instance_map.py" in err and f"{tmp_path / 'coco_stuff'}/train_inst/*.png" in err


def test_an_archive_placed_by_hand_is_unpacked(tmp_path: Path, capsys):
    with zipfile.ZipFile(tmp_path / "horse2zebra.zip", "w") as zf:
        for folder in ("trainA", "trainB", "testA", "testB"):
            zf.writestr(f"horse2zebra/{folder}/1.jpg", b"jpeg bytes")
    assert download.main(["horse2zebra", "--root", str(tmp_path)]) == 0
    assert (tmp_path / "horse2zebra" / "trainB" / "1.jpg").read_bytes() == b"jpeg bytes"
    assert not (tmp_path / ".horse2zebra.unpacking").exists()
    assert download.main(["horse2zebra", "--root", str(tmp_path)]) == 0  # already present
    assert "already present" in capsys.readouterr().out


def test_tar_archive_without_top_folder(tmp_path: Path):
    source = tmp_path / "src"
    (source / "train").mkdir(parents=True)
    (source / "train" / "1.jpg").write_bytes(b"x")
    (source / "val").mkdir()
    with tarfile.open(tmp_path / "facades.tar.gz", "w:gz") as tf:
        tf.add(source / "train", arcname="train")
        tf.add(source / "val", arcname="val")
    assert download.download("facades", tmp_path) == 0
    assert (tmp_path / "facades" / "train" / "1.jpg").is_file()


def test_archive_escaping_its_folder_is_refused(tmp_path: Path):
    with zipfile.ZipFile(tmp_path / "cat2dog.zip", "w") as zf:
        zf.writestr("../evil.txt", b"x")
    with pytest.raises(RuntimeError, match="outside"):
        download.download("cat2dog", tmp_path)
    assert not (tmp_path.parent / "evil.txt").exists()


def test_cityscapes_cut_prints_the_official_preparation(tmp_path: Path, capsys):
    assert download.main(["cityscapes_cut", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "prepare_cityscapes_dataset.py" in err and "contrastive-unpaired-translation" in err
    assert f"{tmp_path / 'cityscapes_cut'}/{{trainA,trainB,valA,valB}}" in err
