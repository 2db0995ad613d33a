"""DataModules on tiny folders: layouts, split fallbacks, loaders, fixed batches."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from imtrans.data import DataError, DomainsDataModule, LabelDataModule, PairedDataModule, UnpairedDataModule
from imtrans.data import io as data_io

from .conftest import write_ids, write_image


def test_unpaired_items_and_loaders(unpaired_root: Path):
    dm = UnpairedDataModule(unpaired_root, preprocess="crop", crop_size=4, batch_size=2)
    assert dm.paired is False and dm.domains == ["A", "B"] and dm.input_nc == 3
    dm.setup("fit")
    train = dm.dataset("train", augment=True)
    assert len(train) == 3  # max(3 A, 2 B)
    item = train[2]
    assert set(item) == {"A", "B", "A_path", "B_path"}
    assert item["A"].shape == (3, 4, 4) and item["A"].dtype == torch.float32
    assert -1 <= item["A"].min() and item["A"].max() <= 1
    assert item["A_path"].endswith("trainA/002.png")
    loader = dm.train_dataloader()
    assert loader.drop_last and len(loader) == 1
    batch = next(iter(loader))
    assert batch["A"].shape == (2, 3, 4, 4) and len(batch["B_path"]) == 2
    val = dm.dataset("val")
    assert [Path(val[i]["B_path"]).name for i in range(2)] == ["000.png", "001.png"]
    assert str(unpaired_root / "testA") in val[0]["A_path"]  # no valA: val reads the test folders


def test_unpaired_training_draws_random_partners(unpaired_root: Path):
    for i in range(3, 8):
        write_image(unpaired_root / "trainB" / f"{i:03d}.png", seed=i)
    dataset = UnpairedDataModule(unpaired_root, preprocess="none").dataset("train", augment=True)
    torch.manual_seed(0)
    partners = {dataset[0]["B_path"] for _ in range(20)}
    assert len(partners) > 2
    evaluation = UnpairedDataModule(unpaired_root, preprocess="none").dataset("train")
    assert {evaluation[0]["B_path"] for _ in range(5)} == {str(unpaired_root / "trainB" / "000.png")}


def test_batch_larger_than_dataset_keeps_the_partial_batch(unpaired_root: Path):
    dm = UnpairedDataModule(unpaired_root, preprocess="none", batch_size=8)
    loader = dm.train_dataloader()
    assert not loader.drop_last and len(loader) == 1


def test_val_folder_is_used_when_present_and_val_size_caps(unpaired_root: Path):
    for side in "AB":
        for i in range(4):
            write_image(unpaired_root / f"val{side}" / f"{i}.png", seed=i)
    dm = UnpairedDataModule(unpaired_root, preprocess="none", val_size=3)
    assert "valA" in dm.dataset("val")[0]["A_path"] and len(dm.dataset("val")) == 3
    assert "testA" in dm.dataset("test")[0]["A_path"] and len(dm.dataset("test")) == 2


def test_fixed_batch_is_deterministic_and_needs_no_setup(unpaired_root: Path):
    dm = UnpairedDataModule(unpaired_root, load_size=8, crop_size=4, num_fixed=3)
    first = dm.fixed_batch(split="train")
    again = UnpairedDataModule(unpaired_root, load_size=8, crop_size=4).fixed_batch(3, split="train")
    assert first["A"].shape == (3, 3, 4, 4) and torch.equal(first["A"], again["A"])
    assert torch.equal(first["B"], again["B"]) and first["B_path"] == again["B_path"]
    assert dm.fixed_batch(n=10)["A"].shape[0] == 2  # only two val items


def test_seeded_shuffle_and_worker_processes(unpaired_root: Path):
    def order(seed: int, workers: int = 0) -> list[str]:
        dm = UnpairedDataModule(unpaired_root, preprocess="none", seed=seed, num_workers=workers)
        return [path for batch in dm.train_dataloader() for path in batch["A_path"]]

    assert order(0) == order(0) == order(0, workers=1)
    assert len({tuple(order(seed)) for seed in range(6)}) > 1


def test_grayscale_sides(unpaired_root: Path):
    dm = UnpairedDataModule(unpaired_root, preprocess="none", input_nc=1)
    item = dm.dataset("train")[0]
    assert item["A"].shape == (1, 6, 8) and item["B"].shape == (3, 6, 8)


def test_list_files(tmp_path: Path):
    root = tmp_path / "lists"
    for folder in ("trainA", "trainB", "testA", "testB"):
        for i in range(3):
            write_image(root / folder / f"{i}.jpg", seed=i)
        (root / f"list_{folder}.txt").write_text("./2.jpg\n\n./0.jpg\n")
    dm = UnpairedDataModule(root, preprocess="none")
    assert [Path(dm.dataset("val")[i]["A_path"]).name for i in range(2)] == ["2.jpg", "0.jpg"]
    assert len(UnpairedDataModule(root, preprocess="none", use_lists=False).dataset("val")) == 3
    (root / "list_trainB.txt").write_text("./missing.jpg\n")
    with pytest.raises(
        DataError, match=r"trainB/missing\.jpg: file listed in .*list_trainB\.txt \(line 1\) not found"
    ):
        UnpairedDataModule(root).setup()
    (root / "list_trainB.txt").unlink()
    with pytest.raises(DataError, match=r"list_trainB\.txt: list file not found"):
        UnpairedDataModule(root).setup()


def test_paired_side_by_side_with_train_and_val_only(tmp_path: Path):
    root = tmp_path / "edges2shoes"
    for split in ("train", "val"):
        for i in range(2):
            write_image(root / split / f"{i}_AB.jpg", size=(16, 8), seed=i)
    dm = PairedDataModule(root, preprocess="none")
    assert dm.paired is True
    dm.setup()  # no test folder: test reads val
    item = dm.dataset("test")[1]
    assert item["A"].shape == (3, 8, 8) and item["A_path"] == item["B_path"]
    assert "val" in item["A_path"]


def test_paired_folders(tmp_path: Path):
    root = tmp_path / "pairs"
    for folder in ("trainA", "trainB", "testA", "testB"):
        for stem in ("b", "a"):
            write_image(root / folder / f"{stem}.png", seed=ord(stem) + len(folder))
    dm = PairedDataModule(root, preprocess="none", direction="BtoA")
    item = dm.fixed_batch(1, split="test")
    assert item["A_path"][0].endswith("testB/a.png") and item["B_path"][0].endswith("testA/a.png")


def _write_label_item(root: Path, split: str, stem: str, with_image: bool = True) -> None:
    ids = np.arange(24, dtype=np.uint8).reshape(4, 6) % 5
    write_ids(root / f"{split}_label" / f"{stem}.png", ids)
    write_ids(root / f"{split}_inst" / f"{stem}.png", (ids.astype(np.uint16) + 26000))
    if with_image:
        write_image(root / f"{split}_img" / f"{stem}.jpg", size=(6, 4))


def test_labels_generic_names_and_test_without_images(tmp_path: Path):
    root = tmp_path / "labels"
    for stem in ("one", "two"):
        _write_label_item(root, "train", stem)
        _write_label_item(root, "test", stem, with_image=False)
    dm = LabelDataModule(root, label_nc=5, use_instance=True, preprocess="none")
    assert dm.input_nc == 5 and dm.output_nc == 3 and dm.paired
    dm.setup()
    train = dm.dataset("train")[1]
    assert train["label_path"].endswith("two.png") and train["B_path"].endswith("two.jpg")
    assert train["inst"].max() == 26004 and train["B"].shape == (3, 4, 6)
    test = dm.fixed_batch(2, split="test")
    assert set(test) == {"label", "inst", "label_path", "inst_path"} and test["label"].shape == (2, 4, 6)
    no_inst = LabelDataModule(root, label_nc=5, preprocess="none").dataset("train")[0]
    assert "inst" not in no_inst and no_inst["label"].dtype == torch.int64


def test_labels_missing_instance_folder(tmp_path: Path):
    root = tmp_path / "labels"
    _write_label_item(root, "train", "one")
    _write_label_item(root, "test", "one")
    for path in (root / "train_inst").iterdir():
        path.unlink()
    (root / "train_inst").rmdir()
    with pytest.raises(DataError, match=r"train_inst: folder not found; .*use_instance=true"):
        LabelDataModule(root, label_nc=5, use_instance=True).setup()


def test_domains(tmp_path: Path):
    root = tmp_path / "afhq"
    for split in ("train", "val"):
        for domain, count in (("wild", 1), ("cat", 2), ("dog", 1)):
            for i in range(count):
                write_image(root / split / domain / f"{i}.png", seed=i)
    (root / "train" / ".cache").mkdir()
    dm = DomainsDataModule(root, preprocess="none", batch_size=4)
    assert dm.domains == ["cat", "dog", "wild"] and dm.paired is False
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 3, 6, 8) and batch["domain"].dtype == torch.int64
    assert sorted(batch["domain"].tolist()) == [0, 0, 1, 2]
    test = dm.dataset("test")  # AFHQ has val only: test reads val
    assert [test[i]["domain"].item() for i in range(4)] == [0, 0, 1, 2] and "val" in test[0]["path"]
    chosen = DomainsDataModule(root, domains=["wild", "dog"], preprocess="none")
    assert [chosen.dataset("train")[i]["domain"].item() for i in range(2)] == [0, 1]
    with pytest.raises(DataError, match=r"train/bird: folder not found"):
        DomainsDataModule(root, domains=["bird"]).setup()


def test_large_sets_show_a_progress_line(unpaired_root: Path, monkeypatch, capsys):
    monkeypatch.setattr(data_io, "PROGRESS_MIN_FILES", 3)
    UnpairedDataModule(unpaired_root).setup("fit")
    err = capsys.readouterr().err
    assert "checking" in err and "5/5" in err and err.count("\n") == 2  # train (5 files) and val (4)


class _Probe(L.LightningModule):
    """Records the batches a Trainer feeds it."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.seen: list[tuple[str, tuple]] = []

    def training_step(self, batch, batch_idx):
        self.seen.append(("train", tuple(batch["A"].shape)))
        return (self.weight - batch["A"].mean()) ** 2

    def validation_step(self, batch, batch_idx):
        self.seen.append(("val", tuple(batch["B"].shape)))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_lightning_trainer_drives_setup_and_loaders(unpaired_root: Path):
    dm = UnpairedDataModule(unpaired_root, load_size=8, crop_size=4, batch_size=2)
    probe = _Probe()
    trainer = L.Trainer(
        max_epochs=1,
        limit_val_batches=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(probe, datamodule=dm)
    assert probe.seen == [("train", (2, 3, 4, 4)), ("val", (2, 3, 4, 4))]
