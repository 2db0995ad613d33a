"""Named selection of the best score (issue 27, point 2): ``data.val_from_train`` holds training
items out as the val split, and ``metrics.json`` says on which split and by which score the best
was chosen."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from imtrans.callbacks import Evaluation
from imtrans.data import (
    DomainsDataModule,
    LabelDataModule,
    PairedDataModule,
    ShapesDataModule,
    UnpairedDataModule,
)
from imtrans.errors import ConfigError
from imtrans.run import train
from tests.data.conftest import write_ids, write_image
from tests.helpers import compose_config, tiny_run_overrides


def _folder(root: Path, name: str, count: int, seed: int = 0) -> None:
    for i in range(count):
        write_image(root / name / f"{i:02d}.png", seed=seed + i)


@pytest.fixture
def unpaired(tmp_path: Path) -> Path:
    """trainA 7, trainB 6, testA/testB 2 (no val folder: val reads the test folders)."""
    root = tmp_path / "unpaired"
    for k, (name, count) in enumerate((("trainA", 7), ("trainB", 6), ("testA", 2), ("testB", 2))):
        _folder(root, name, count, seed=10 * k)
    return root


def _paths(dataset, key: str) -> list[str]:
    return [dataset[i][key] for i in range(len(dataset))]


def _epoch_paths(dm, key: str) -> set[str]:
    """Every path the training loader yields over one epoch."""
    return {p for batch in dm.train_dataloader() for p in batch[key]}


def test_val_from_train_takes_the_items_out_of_training(unpaired: Path):
    dm = UnpairedDataModule(unpaired, preprocess="none", val_from_train=2, seed=5)
    dm.setup("fit")
    val = dm.dataset("val")
    files = {side: {str(p) for p in (unpaired / f"train{side}").glob("*.png")} for side in "AB"}
    held = {side: set(_paths(val, f"{side}_path")) for side in "AB"}
    assert all(len(held[side]) == 2 and held[side] <= files[side] for side in "AB")
    # one epoch of the training loader visits every A image kept for training, and only those
    assert _epoch_paths(dm, "A_path") == files["A"] - held["A"]
    # training draws random B partners: among the kept B images only
    train = dm.dataset("train", augment=True)
    torch.manual_seed(0)
    partners = {train[i % len(train)]["B_path"] for i in range(60)}
    assert partners <= files["B"] - held["B"] and len(partners) > 2
    assert dm.split_source("val") == "train_holdout" and dm.split_source("test") == "test"


def test_held_out_items_are_the_same_on_every_run_and_resume(unpaired: Path):
    def held(seed: int, state: int = 0, resume: dict | None = None) -> list[str]:
        torch.manual_seed(state)  # another global random state: the draw depends on data.seed alone
        dm = UnpairedDataModule(unpaired, preprocess="none", val_from_train=3, seed=seed)
        if resume is not None:
            dm.load_state_dict(resume)
        dm.setup("fit")
        trained = _epoch_paths(dm, "A_path")
        val = _paths(dm.dataset("val"), "A_path")
        assert not trained & set(val)
        return val

    first = held(1)
    assert held(1, state=7) == first == held(1, state=8, resume={"epoch": 0, "batches": 2})
    assert any(held(seed) != first for seed in (2, 3, 4))  # the seed chooses them


def test_every_data_module_holds_out_and_checks_n(tmp_path: Path):
    paired = tmp_path / "paired"
    for side in "AB":
        _folder(paired, f"train{side}", 5)
        _folder(paired, f"test{side}", 1)
    labels = tmp_path / "labels"
    for i in range(4):
        write_ids(labels / "train_label" / f"{i}.png", np.full((6, 8), i, dtype=np.uint8))
        write_image(labels / "train_img" / f"{i}.png", seed=i)
    write_ids(labels / "test_label" / "0.png", np.zeros((6, 8), dtype=np.uint8))
    domains = tmp_path / "domains"
    for k, (name, count) in enumerate((("cat", 4), ("dog", 3))):
        _folder(domains / "train", name, count, seed=10 * k)
        _folder(domains / "test", name, 1)

    # what the items are called, the data module with N held out, the training items of each domain
    cases = [
        ("pairs", lambda n: PairedDataModule(paired, preprocess="none", val_from_train=n), [5]),
        (
            "label maps",
            lambda n: LabelDataModule(labels, label_nc=4, preprocess="none", val_from_train=n),
            [4],
        ),
        ("images of dog", lambda n: DomainsDataModule(domains, preprocess="none", val_from_train=n), [4, 3]),
        ("items (data.train_size)", lambda n: ShapesDataModule(size=16, train_size=6, val_from_train=n), [6]),
    ]
    for what, make, sizes in cases:
        dm = make(2)
        dm.setup("fit")
        val, train = dm.dataset("val"), dm.dataset("train", augment=True)
        key = {DomainsDataModule: "path", LabelDataModule: "label_path"}.get(type(dm), "A_path")
        held, kept = set(_paths(val, key)), set(_paths(train, key))
        assert len(held) == 2 * len(sizes) and len(kept) == sum(sizes) - len(held), what  # N of each domain
        assert not held & kept and dm.split_source("val") == "train_holdout"
        n = min(sizes)
        pattern = rf"^data\.val_from_train={n}: .*only {n} {re.escape(what)}, .*; set it below {n}$"
        with pytest.raises(ConfigError, match=pattern):
            make(n).setup("fit")
    with pytest.raises(ConfigError, match=r"^data\.val_from_train=-1: "):
        ShapesDataModule(val_from_train=-1)


def test_split_source_names_the_data_a_split_reads(unpaired: Path):
    assert UnpairedDataModule(unpaired).split_source("val") == "test"  # no val folder
    for side in "AB":
        _folder(unpaired, f"val{side}", 2)
    assert UnpairedDataModule(unpaired).split_source("val") == "val"
    assert ShapesDataModule().split_source("val") == "val"


def _evaluation(**changes) -> Evaluation:
    settings = dict(fid=False, kid=False, lpips=False, every_n_iters=2, monitor="val/a2b/fid")
    return Evaluation(**{**settings, **changes})


def test_selection_on_the_test_split_warns_once(unpaired: Path, caplog):
    trainer = SimpleNamespace(is_global_zero=True, loggers=[], datamodule=UnpairedDataModule(unpaired))
    with caplog.at_level(logging.WARNING, logger="imtrans"):
        _evaluation().on_fit_start(trainer, None)
        trainer.datamodule = UnpairedDataModule(unpaired, val_from_train=1)
        _evaluation().on_fit_start(trainer, None)
    lines = [r.getMessage() for r in caplog.records if "selected on the test split" in r.getMessage()]
    assert lines == [
        "imtrans: metrics.monitor=val/a2b/fid: selected on the test split: the best test score is "
        "optimistic; use data.val_from_train=N"
    ]


def test_best_scores_survive_a_resume():
    first = _evaluation()
    trainer = SimpleNamespace(callback_metrics={}, is_global_zero=True)
    module = SimpleNamespace(iteration=4)
    first._update_best(trainer, module, {"val/a2b/fid": 3.0, "val/a2b/kid": 0.5})
    module.iteration = 6
    first._update_best(trainer, module, {"val/a2b/fid": 5.0, "val/a2b/kid": 0.1})  # worse: kept
    assert first.best_iteration == 4
    resumed = _evaluation()
    resumed.load_state_dict(first.state_dict())
    trainer = SimpleNamespace(callback_metrics={})
    resumed.on_train_start(trainer, None)
    published = {k: float(v) for k, v in trainer.callback_metrics.items()}
    assert published == {"best/val/a2b/fid": 3.0, "best/val/a2b/kid": 0.5, "best/iteration": 4.0}


def test_metrics_json_names_the_selection(tmp_path: Path):
    extra = [
        "data.train_size=12",
        "data.val_from_train=3",
        "metrics.every_n_iters=2",
        "metrics.monitor=val/a2b/content_iou",
        "metrics.mode=max",
        "metrics.fid=false",
        "metrics.kid=false",
        "metrics.lpips=false",
        "callbacks.sample_grid=null",
    ]
    cfg = compose_config(tiny_run_overrides("cyclegan", "shapes", iters=4, extra=extra), output_dir=tmp_path)
    returned = train(cfg)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    selection = metrics["selection"]
    assert {k: selection[k] for k in ("monitor", "mode", "split")} == {
        "monitor": "val/a2b/content_iou",
        "mode": "max",
        "split": "train_holdout",
    }
    assert selection["iteration"] in (2, 4) and selection["iteration"] == metrics["best/iteration"]
    assert selection["value"] == metrics["best/val/a2b/content_iou"]
    assert selection["checkpoint"] == str(tmp_path / "checkpoints" / "best.ckpt")
    # the last evaluation's scores are kept beside the best one's, and the test's
    assert "val/a2b/content_iou" in metrics and "best/val/b2a/outline_iou" in metrics
    assert "test/a2b/content_iou" in metrics
    assert returned is None
