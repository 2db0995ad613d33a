"""CUT official checkpoints (taesungp/contrastive-unpaired-translation): the translation equals
the official one, G, D and F load strictly, the options read from the shapes, a generator file
alone, bad inputs with their one-line errors, the newest snapshot, fine-tuning."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from imtrans.load import load_model
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
    translate_case,
)

FIX = fixture("cut")


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    return do_import("cut", FIX, tmp_path_factory.mktemp("cut") / "run")


def test_folder_import_matches_the_official_outputs(imported):
    module = load_model(imported)
    for name, case in cases(FIX).items():
        assert max_diff(translate_case(module, case), case["output"]) < ATOL, name
    record = json.loads((imported / "import.json").read_text())
    assert sorted(record["networks_imported"]) == ["D", "F", "G"] and record["networks_fresh"] == []
    opts = record["official_options"]
    assert (opts["ngf"], opts["n_blocks"], opts["antialias"], opts["ndf"], opts["n_layers_D"]) == (
        4,
        6,
        True,
        4,
        3,
    )
    assert (opts["netF_nc"], opts["nce_layer_count"], opts["CUT_mode"]) == (16, 5, "CUT")
    # every official tensor is ours, the blur kernels included
    for name in ("G", "D", "F"):
        official = torch.load(FIX / f"latest_net_{name}.pth", weights_only=True)
        ours = getattr(module, name).state_dict()
        assert len(official) == len(ours), name
    assert torch.equal(
        module.G.model[7].filt, torch.load(FIX / "latest_net_G.pth", weights_only=True)["model.7.filt"]
    )


def test_generator_file_alone_and_fastcut_mode(tmp_path):
    run = do_import("cut", FIX / "latest_net_G.pth", tmp_path / "g", mode="fastcut")
    record = json.loads((run / "import.json").read_text())
    assert record["networks_imported"] == ["G"] and sorted(record["networks_fresh"]) == ["D", "F"]
    module = load_model(run)
    assert module.mode == "fastcut" and module.flip_equivariance and not module.nce_idt
    case = cases(FIX)["a2b"]
    assert max_diff(translate_case(module, case), case["output"]) < ATOL


def test_bad_inputs_give_one_line_and_write_nothing(tmp_path):
    g = torch.load(FIX / "latest_net_G.pth", weights_only=True)
    truncated = bad_file(tmp_path, "latest_net_G.pth", (FIX / "latest_net_G.pth").read_bytes()[:3000])
    assert "not a readable PyTorch checkpoint" in import_error("cut", truncated, tmp_path)
    (tmp_path / "empty").mkdir()
    assert import_error("cut", tmp_path / "empty", tmp_path) == (
        f"{tmp_path / 'empty'}: no <epoch>_net_<G|D|F>.pth files in this folder"
    )
    extra = bad_file(tmp_path, "x_net_G.pth", sd={**g, "model.12.conv_block.9.weight": torch.zeros(1)})
    assert import_error("cut", extra, tmp_path) == (
        f"{extra}: unmapped key 'model.12.conv_block.9.weight' (not a key of this method's networks)"
    )
    odd = bad_file(
        tmp_path, "odd_net_G.pth", sd={**g, "model.12.conv_block.5.weight": torch.zeros(16, 16, 5, 5)}
    )
    assert "'model.12.body.1.1.weight' has shape (16, 16, 5, 5)" in import_error("cut", odd, tmp_path)
    one_side = bad_file(
        tmp_path,
        "o_net_G.pth",
        sd={k: v for k, v in g.items() if k not in ("model.18.filt", "model.22.filt")},
    )
    assert "anti-aliasing on both sides" in import_error("cut", one_side, tmp_path)
    d_as_g = bad_file(tmp_path, "d_net_G.pth", sd=torch.load(FIX / "latest_net_D.pth", weights_only=True))
    assert "no key 'model.1.weight'" in import_error("cut", d_as_g, tmp_path)
    munit = fixture("munit") / "gen_00000001.pt"
    if munit.exists():  # the wrong METHOD for the file
        assert "not a state dict" in import_error("cut", munit, tmp_path)
    ugatit = next(fixture("ugatit").glob("light/*.pt"), None)
    if ugatit is not None:
        assert "not a state dict" in import_error("cut", ugatit, tmp_path)
    # an F whose MLPs do not fit the nce_layers of this generator
    folder = tmp_path / "wrongF"
    folder.mkdir()
    shutil.copy(FIX / "latest_net_G.pth", folder / "latest_net_G.pth")
    f = torch.load(FIX / "latest_net_F.pth", weights_only=True)
    torch.save({**f, "mlp_1.0.weight": torch.zeros(16, 5)}, folder / "latest_net_F.pth")
    assert "'mlp_1.0.weight' has shape (16, 5)" in import_error("cut", folder, tmp_path)
    assert (
        import_error("cut", FIX, tmp_path, mode="slowcut")
        == "mode=slowcut: expected cut or fastcut (the official --CUT_mode)"
    )


def test_newest_snapshot_of_a_folder(tmp_path):
    folder = tmp_path / "checkpoints" / "h2z_CUT"
    folder.mkdir(parents=True)
    for epoch in ("5", "20"):
        for name in ("G", "D", "F"):
            shutil.copy(FIX / f"latest_net_{name}.pth", folder / f"{epoch}_net_{name}.pth")
    record = json.loads((do_import("cut", folder, tmp_path / "o") / "import.json").read_text())
    assert [f["path"].rsplit("/", 1)[1] for f in record["files"]] == [
        "20_net_G.pth",
        "20_net_D.pth",
        "20_net_F.pth",
    ]


def test_finetune_through_init_from(imported, tmp_path):
    before, ckpt, _ = finetune(imported, ["data=shapes", "data.size=32"], tmp_path / "ft")
    assert_finetuned(before, ckpt, ["G", "D", "F"])
    assert int(ckpt["state_dict"]["_iteration"]) == 2
