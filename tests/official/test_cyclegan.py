"""CycleGAN official checkpoints (junyanz): outputs equal to the official ones, the legacy
2018 file, single-direction files, bad inputs with their one-line errors, fine-tuning, export."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch

from imtrans.load import load_model
from imtrans.official import OfficialFormatError
from tests.official.helpers import (
    ATOL,
    assert_finetuned,
    bad_file,
    cases,
    do_import,
    finetune,
    fixture,
    import_error,
    max_diff,
    run_import_cli,
    translate_case,
)

FIX = fixture("cyclegan")
LEGACY = FIX / "legacy_2018_pretrained" / "latest_net_G.pth"


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    return do_import("cyclegan", FIX, tmp_path_factory.mktemp("cg") / "run")


def test_folder_import_matches_the_official_outputs(imported):
    module = load_model(imported)
    for name, case in cases(FIX).items():
        assert max_diff(translate_case(module, case), case["output"]) < ATOL, name
    record = json.loads((imported / "import.json").read_text())
    assert record["networks_imported"] == ["D_A", "D_B", "G_A", "G_B"]
    assert record["networks_fresh"] == [] and record["dropped_keys"] == []
    assert record["official_options"]["n_blocks"] == 6 and record["official_options"]["ngf"] == 4
    assert len(record["files"]) == 4 and all(len(f["sha256"]) == 64 for f in record["files"])
    assert (imported / "config.yaml").is_file()


def test_legacy_2018_file_loads_with_the_notice_and_translates_one_way(tmp_path):
    out = tmp_path / "legacy"
    proc = run_import_cli("cyclegan", str(LEGACY), f"out={out}")
    assert proc.returncode == 0, proc.stderr
    assert "notice: dropped 51 legacy key(s)" in proc.stdout
    record = json.loads((out / "import.json").read_text())
    assert len(record["dropped_keys"]) == 51
    assert all(
        k.endswith(("running_mean", "running_var", "num_batches_tracked")) for k in record["dropped_keys"]
    )
    assert record["networks_fresh"] == ["G_B", "D_A", "D_B"]
    module = load_model(out)
    case = cases(FIX)["a2b"]
    assert max_diff(module.translate(case["input"], "a2b"), case["output"]) < ATOL
    with pytest.raises(ValueError, match="translates a2b only"):
        module.translate(case["input"], "b2a")


def test_single_generator_of_the_other_direction(tmp_path):
    module = load_model(do_import("cyclegan", FIX / "latest_net_G_B.pth", tmp_path / "b", direction="b2a"))
    case = cases(FIX)["b2a"]
    assert module.directions == ("b2a",)
    assert max_diff(module.translate(case["input"], "b2a"), case["output"]) < ATOL


def _error(method, path, tmp_path, **opts) -> str:
    return import_error(method, path, tmp_path, **opts)


def test_bad_inputs_give_one_line_and_write_nothing(tmp_path):
    g = torch.load(FIX / "latest_net_G_A.pth", weights_only=True)
    truncated = bad_file(tmp_path, "latest_net_G.pth", (FIX / "latest_net_G_A.pth").read_bytes()[:5000])
    assert _error("cyclegan", truncated, tmp_path).startswith(
        f"{truncated}: not a readable PyTorch checkpoint (truncated or another format"
    )
    text = bad_file(tmp_path, "notes_net_G.pth", b"hello, not a checkpoint")
    assert "not a readable PyTorch checkpoint" in _error("cyclegan", text, tmp_path)
    (tmp_path / "empty").mkdir()
    assert _error("cyclegan", tmp_path / "empty", tmp_path) == (
        f"{tmp_path / 'empty'}: no <epoch>_net_<G_A|G_B|D_A|D_B|G>.pth files in this folder"
    )
    extra = bad_file(tmp_path, "x_net_G.pth", sd={**g, "model.10.conv_block.9.weight": torch.zeros(1)})
    assert _error("cyclegan", extra, tmp_path) == (
        f"{extra}: unmapped key 'model.10.conv_block.9.weight' (not a key of this method's networks)"
    )
    odd = dict(g)
    odd["model.10.conv_block.5.weight"] = torch.zeros(16, 16, 5, 5)
    odd = bad_file(tmp_path, "odd_net_G.pth", sd=odd)
    assert _error("cyclegan", odd, tmp_path) == (
        f"{odd}: key 'model.3.body.1.1.weight' has shape (16, 16, 5, 5), imtrans G_A built from the options "
        "read has (16, 16, 3, 3) (a shape that fits no option)"
    )
    munit = fixture("munit") / "gen_00000001.pt"
    if munit.exists():  # the wrong METHOD for the file
        assert "not a state dict" in _error("cyclegan", munit, tmp_path)
    d_as_g = bad_file(tmp_path, "d_net_G.pth", sd=torch.load(FIX / "latest_net_D_A.pth", weights_only=True))
    assert _error("cyclegan", d_as_g, tmp_path) == (
        f"{d_as_g}: no key 'model.1.weight', which this method's network has (first key of the file: "
        "'model.0.weight'; the wrong METHOD for this file?)"
    )
    assert _error("cyclegan", LEGACY, tmp_path, direction="up") == "direction=up: expected a2b or b2a"
    with pytest.raises(OfficialFormatError, match="unknown METHOD 'cyclegann'; official formats: "):
        do_import("cyclegann", LEGACY, tmp_path / "x")


def test_cli_error_is_one_line_exit_2(tmp_path):
    proc = run_import_cli("cyclegan", str(tmp_path / "missing"), f"out={tmp_path / 'o'}")
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"imtrans import: {tmp_path / 'missing'}: no such file or folder"


def test_newest_snapshot_of_a_folder_and_epoch_option(tmp_path):
    folder = tmp_path / "checkpoints" / "h2z"
    folder.mkdir(parents=True)
    for name in ("G_A", "G_B"):
        shutil.copy(FIX / f"latest_net_{name}.pth", folder / f"5_net_{name}.pth")
        shutil.copy(FIX / f"latest_net_{name}.pth", folder / f"10_net_{name}.pth")
    record = json.loads((do_import("cyclegan", folder, tmp_path / "o") / "import.json").read_text())
    assert [f["path"].rsplit("/", 1)[1] for f in record["files"]] == ["10_net_G_A.pth", "10_net_G_B.pth"]
    record = json.loads(
        (do_import("cyclegan", folder, tmp_path / "p", epoch="5") / "import.json").read_text()
    )
    assert record["files"][0]["path"].endswith("5_net_G_A.pth")


def test_finetune_through_init_from(imported, tmp_path):
    before, ckpt, _ = finetune(imported, ["data=shapes", "data.size=64"], tmp_path / "ft")
    assert_finetuned(before, ckpt, ["G_A", "G_B", "D_A", "D_B"])
    assert int(ckpt["state_dict"]["_iteration"]) == 2


def test_resume_with_ckpt_path_auto(imported, tmp_path):
    """The imported folder is a run folder: ckpt_path=auto with it as the run directory resumes."""
    run = tmp_path / "run"
    shutil.copytree(imported, run)
    record = json.loads((run / "import.json").read_text())
    from imtrans.run import train
    from tests.helpers import compose_config

    cfg = compose_config(
        [
            *record["overrides"],
            "data=shapes",
            "data.size=64",
            "ckpt_path=auto",
            "trainer=cpu",
            "logger=none",
            "metrics=none",
            "iters=1",
            "task=fit",
            "callbacks.sample_grid=null",
            "callbacks.progress_bar=null",
        ],
        output_dir=run,
    )
    train(cfg)
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    assert int(ckpt["state_dict"]["_iteration"]) == 1


def test_export_round_trip(imported, tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "imtrans.export",
            f"ckpt={imported}",
            f"out={tmp_path}",
            "direction=a2b",
            "formats=torchscript",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    scripted = torch.jit.load(str(tmp_path / "generator_a2b.pt"))
    case = cases(FIX)["a2b"]
    assert max_diff(scripted(case["input"]), case["output"]) < 1e-4
