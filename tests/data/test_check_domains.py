"""``imtrans.data.check`` on folder-per-domain trees reads exactly the folders training reads:
``data.domains`` of ``data=afhq_cat2dog`` (an unpaired pair) and of ``data=domains``."""

from __future__ import annotations

from pathlib import Path

import hydra
import numpy as np
import pytest
from PIL import Image

from imtrans.data import DataError
from imtrans.data.check import check, compose, run
from imtrans.data.layouts import SPLITS


def _afhq_like(root: Path, extra_val: str | None = None) -> Path:
    """``<root>/{train,val}/{cat,dog,wild}/`` with two small RGB images each (and, when given, a
    domain folder that only val has)."""
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for domain in ("cat", "dog", "wild", *([extra_val] if extra_val and split == "val" else [])):
            folder = root / split / domain
            folder.mkdir(parents=True)
            for i in range(2):
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
                    folder / f"{domain}{i}.png"
                )
    return root


def _relative(folders, root: Path) -> set[str]:
    return {Path(f).relative_to(root).as_posix() for f in folders}


def module_folders(overrides: list[str]) -> set[str]:
    """The folders (relative to the root) the training data module reads, over every split."""
    dm = hydra.utils.instantiate(compose(overrides).data)
    root = dm._root()
    folders = set()
    for split in SPLITS:
        found = dm._find(root, split)
        paths = [p for p, _ in found] if isinstance(found, list) else [p for side in found for p in side]
        folders |= {p.parent for p in paths}
    return _relative(folders, root)


def test_afhq_cat2dog_checks_the_cat_and_dog_folders(tmp_path, capsys):
    root = _afhq_like(tmp_path / "afhq")
    argv = ["data=afhq_cat2dog", f"data.root={root}"]
    assert run(argv) == 0
    out = capsys.readouterr().out
    for folder in ("train/cat/", "train/dog/", "val/cat/", "val/dog/"):
        assert folder in out, out
    assert "wild" not in out and "trainA" not in out and "OK: 0 error(s)" in out
    report = check(argv)
    assert {k: g.files for k, g in report.groups.items()} == {
        ("train", "cat"): 2,
        ("train", "dog"): 2,
        ("val", "cat"): 2,
        ("val", "dog"): 2,
    }
    assert (
        _relative(report.folders.values(), root)
        == module_folders(argv)
        == {
            "train/cat",
            "train/dog",
            "val/cat",
            "val/dog",
        }
    )
    assert "input: cat" in out
    assert any("input: dog" in n for n in check([*argv, "data.direction=BtoA"]).notes)


def test_afhq_cat2dog_missing_domain_folder_is_the_error_training_raises(tmp_path):
    root = _afhq_like(tmp_path / "afhq")
    for f in (root / "val" / "dog").iterdir():
        f.unlink()
    (root / "val" / "dog").rmdir()
    argv = ["data=afhq_cat2dog", f"data.root={root}"]
    report = check(argv)
    assert len(report.errors) == 1 and report.errors[0].startswith(str(root / "val" / "dog"))
    assert "domains layout" in report.errors[0]
    dm = hydra.utils.instantiate(compose(argv).data)
    with pytest.raises(DataError, match="val/dog: folder not found"):
        dm.setup("fit")
    assert run(argv) == 1


@pytest.mark.parametrize(
    "domains, expected",
    [(None, ["cat", "dog", "wild"]), ("[dog,wild]", ["dog", "wild"]), ("[wild,cat]", ["wild", "cat"])],
)
def test_domains_checker_and_data_module_agree(tmp_path, domains, expected):
    # val has a folder train lacks: without data.domains, train's folders decide, in both
    root = _afhq_like(tmp_path / "data", extra_val="fox")
    argv = ["data=domains", f"data.root={root}", *([f"data.domains={domains}"] if domains else [])]
    report = check(argv)
    assert report.ok, report.format()
    folders = _relative(report.folders.values(), root)
    assert folders == module_folders(argv) == {f"{s}/{d}" for s in ("train", "val") for d in expected}
    assert [role for split, role in report.groups if split == "train"] == expected  # index order
    assert any(n.startswith(f"domains: {', '.join(expected)}") for n in report.notes)
