"""``imtrans.data.check``: clean real samples pass; each planted problem is one line naming its file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imtrans.data.check import check, run

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
CITYSCAPES = SHARED / "cityscapes_sample"
HANDBAGS = SHARED / "edges2handbags_sample"

needs_cityscapes = pytest.mark.skipif(not CITYSCAPES.is_dir(), reason=f"{CITYSCAPES} not present")
needs_handbags = pytest.mark.skipif(not HANDBAGS.is_dir(), reason=f"{HANDBAGS} not present")


def _copy(src: Path, dst: Path, keep: int | None = None) -> Path:
    """A writable copy of a sample; ``keep``: only the first files of each folder (speed)."""
    dst.mkdir(parents=True)
    for path in sorted(src.iterdir()):
        if path.is_dir():
            (dst / path.name).mkdir()
            for f in sorted(path.iterdir())[:keep]:
                shutil.copyfile(f, dst / path.name / f.name)
        else:
            shutil.copyfile(path, dst / path.name)
    return dst


def _lines_naming(report, path: Path) -> list[str]:
    return [line for line in report.errors + report.warnings if line.startswith(str(path))]


@needs_cityscapes
def test_clean_cityscapes_sample_passes():
    report = check(["data=cityscapes", f"data.root={CITYSCAPES}"])
    assert report.ok and not report.warnings, report.format()
    counts = {key: g.files for key, g in report.groups.items()}
    assert counts == {("train", "label"): 8, ("train", "inst"): 8, ("train", "img"): 8,
                      ("test", "label"): 15, ("test", "inst"): 15}  # fmt: skip
    assert dict(report.groups[("train", "inst")].modes) == {"I;16": 8}
    assert report.groups[("train", "img")].sizes() == "2048x1024"
    text = report.format()
    assert "I;16 8" in text and "OK: 0 error(s)" in text


@needs_handbags
@pytest.mark.parametrize("use_lists", ["true", "false"])
def test_clean_unpaired_sample_passes(use_lists):
    report = check(["data=unpaired", f"data.root={HANDBAGS}", f"data.use_lists={use_lists}"])
    assert report.ok and not report.warnings, report.format()
    assert {k: g.files for k, g in report.groups.items()} == {
        ("train", "A"): 8,
        ("train", "B"): 8,
        ("test", "A"): 9,
        ("test", "B"): 9,
    }


@needs_cityscapes
def test_planted_problems_in_cityscapes_copy(tmp_path, capsys):
    root = _copy(CITYSCAPES, tmp_path / "cityscapes", keep=4)
    imgs = sorted((root / "train_img").iterdir())
    labels = sorted((root / "train_label").iterdir())
    insts = sorted((root / "train_inst").iterdir())
    # 1. a truncated photo
    truncated = imgs[0]
    truncated.write_bytes(truncated.read_bytes()[:5000])
    # 2. an RGBA photo (read, but composited on white: a warning)
    rgba = imgs[1]
    Image.open(rgba).convert("RGBA").save(rgba)
    # 3. label id 40 with label_nc 35
    bad_label = labels[2]
    ids = np.array(Image.open(bad_label))
    ids[10, 10] = 40
    Image.fromarray(ids).save(bad_label)
    # 4. the missing partner of a pair: an instance map deleted, so its label has none
    insts[3].unlink()
    lonely_label = labels[3]
    # 5. an instance map without a label map (test split)
    orphan = root / "test_inst" / "zurich_000000_000000_gtFine_instanceIds.png"
    shutil.copyfile(sorted((root / "test_inst").iterdir())[0], orphan)
    # 6. an RGBA label map: not single-channel ids
    rgba_label = sorted((root / "test_label").iterdir())[1]
    Image.open(rgba_label).convert("RGBA").save(rgba_label)

    argv = ["data=cityscapes", f"data.root={root}"]
    report = check(argv)
    assert not report.ok
    expect = {
        truncated: "truncated or corrupt image",
        rgba: "mode RGBA has transparency",
        bad_label: "label id(s) 40 >= label_nc 35; set data.label_nc to at least 41",
        lonely_label: "no file with the matching name 'aachen_000003_000019' in",
        orphan: "no file with the matching name 'zurich_000000_000000' in",
        rgba_label: "label map has mode RGBA",
    }
    for path, problem in expect.items():
        lines = _lines_naming(report, path)
        assert len(lines) == 1 and problem in lines[0], (path, report.format())
    assert len(report.errors) == 5 and len(report.warnings) == 1, report.format()

    assert run(argv) == 1
    out = capsys.readouterr().out
    assert out.count("\nERROR   ") == 5 and "FAILED: 5 error(s), 1 warning(s)" in out


@needs_handbags
def test_paired_folders_missing_partner_and_model_sizes(tmp_path):
    root = tmp_path / "pairs"
    (root / "trainA").mkdir(parents=True)
    (root / "trainB").mkdir()
    a_files = sorted((HANDBAGS / "trainA").iterdir())[:4]
    b_files = sorted((HANDBAGS / "trainB").iterdir())[:4]
    for a, b in zip(a_files, b_files):  # B named as its A partner
        shutil.copyfile(a, root / "trainA" / a.name)
        shutil.copyfile(b, root / "trainB" / a.name)
    (root / "trainB" / a_files[1].name).unlink()
    Image.open(a_files[2]).resize((200, 256)).save(root / "trainB" / a_files[2].name)
    report = check(["data=paired", f"data.root={root}"])
    missing = _lines_naming(report, root / "trainA" / a_files[1].name)
    assert len(missing) == 1 and "no file with the matching name" in missing[0] and "trainB" in missing[0]
    size = _lines_naming(report, root / "trainB" / a_files[2].name)
    assert len(size) == 1 and "size 200x256 differs" in size[0]
    assert len(report.errors) == 2

    # sizes the model cannot take: no resize or crop, 256 px images, a U-Net of depth 8 is fine,
    # an image of 200 px width is not (and CycleGAN's ResNet takes both: multiples of 4)
    (root / "trainB" / a_files[2].name).unlink()
    Image.open(a_files[2]).resize((202, 256)).save(root / "trainA" / a_files[2].name)
    Image.open(b_files[2]).resize((202, 256)).save(root / "trainB" / a_files[2].name)
    base = [
        "data=paired",
        f"data.root={root}",
        "data.preprocess=none",
        "data.load_size=null",
        "data.crop_size=256",
    ]
    report = check([*base, "model=pix2pix"])
    odd = _lines_naming(report, root / "trainA" / a_files[2].name)
    assert len(odd) == 1 and "is 202x256 as read; the model needs sides divisible by 256" in odd[0], (
        report.format()
    )
    report = check([*base, "model=cyclegan"])
    odd = _lines_naming(report, root / "trainA" / a_files[2].name)
    assert len(odd) == 1 and "divisible by 4" in odd[0]
    report = check(["data=paired", f"data.root={root}", "data.crop_size=250", "data.load_size=256"])
    assert any(e.startswith("data.crop_size: 250 is not divisible by 4") for e in report.errors)


@needs_handbags
def test_unreadable_listed_and_missing(tmp_path):
    root = _copy(HANDBAGS, tmp_path / "bags")
    broken = root / "trainA" / "00002.jpg"
    broken.write_bytes(broken.read_bytes()[:600])
    (root / "trainB" / "00003.jpg").unlink()  # still named by list_trainB.txt
    (root / "testB" / "notes.png").write_text("not a picture")
    report = check(["data=unpaired", f"data.root={root}"])
    assert "truncated or corrupt image" in _lines_naming(report, broken)[0]
    assert "listed in" in _lines_naming(report, root / "trainB" / "00003.jpg")[0]
    report = check(["data=unpaired", f"data.root={root}", "data.use_lists=false"])
    assert "not an image" in _lines_naming(report, root / "testB" / "notes.png")[0]
    assert not check(["data=unpaired", f"data.root={tmp_path / 'none'}"]).ok


@needs_cityscapes
def test_acceptance_command_exits_0_and_prints_the_report():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "imtrans.data.check",
        "data=cityscapes",
        "data.root=../shared/data/cityscapes_sample",
    ]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "train   inst            8  I;16 8" in done.stdout
    assert done.stdout.strip().endswith("OK: 0 error(s), 0 warning(s)")
    bad = subprocess.run(
        [*cmd[:3], "data=nope"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert bad.returncode == 2 and "Could not find 'data/nope'" in bad.stderr
