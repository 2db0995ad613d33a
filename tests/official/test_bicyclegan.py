"""BicycleGAN official checkpoints (junyanz/BicycleGAN): random-z and encoded-z outputs equal
to the official ones, the published G+E folder, a G alone, legacy InstanceNorm statistics, bad
inputs with their one-line errors, the newest snapshot of a folder, fine-tuning, the key rules."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from imtrans.load import load_model
from imtrans.official import rename_keys
from imtrans.official.formats import bicyclegan
from tests.official.helpers import (
    ATOL,
    assert_finetuned,
    cases,
    do_import,
    finetune,
    fixture,
    import_error,
    key_table,
    max_diff,
    translate_case,
)

FIX = fixture("bicyclegan")


def _sd(name: str) -> dict:
    return torch.load(FIX / name, weights_only=True)


def _check_cases(module) -> None:
    for name, case in cases(FIX).items():
        if case["reference"] is not None:  # example-guided: z = mu of E(reference)
            assert max_diff(module.encode(case["reference"]), case["code_from_reference"]) < ATOL
        assert max_diff(translate_case(module, case), case["output"]) < ATOL, name


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    return do_import("bicyclegan", FIX, tmp_path_factory.mktemp("bg") / "run")


def test_folder_import_matches_the_official_outputs(imported):
    assert set(cases(FIX)) == {"a2b_random", "a2b_encoded"}
    _check_cases(load_model(imported))
    record = json.loads((imported / "import.json").read_text())
    assert record["networks_imported"] == ["D", "D2", "E", "G"] and record["networks_fresh"] == []
    assert record["dropped_keys"] == [] and record["notes"] == []
    opts = record["official_options"]
    assert (opts["netG"], opts["netE"], opts["netD"]) == ("unet_128", "resnet_128", "basic_128_multi")
    assert (opts["ngf"], opts["nef"], opts["ndf"], opts["nz"], opts["input_nc"]) == (2, 4, 4, 8, 1)
    for override in (
        "model.generator.num_downs=7",
        "model.encoder.n_blocks=3",
        "model.discriminator.n_layers=2",
    ):
        assert override in record["overrides"]
    assert "data.size=128" in record["overrides"] and "data.crop_size=128" in record["overrides"]


def test_published_generator_and_encoder(tmp_path):
    """The published models are G and E only: the discriminators start fresh."""
    folder = tmp_path / "pretrained_models" / "edges2shoes"
    folder.mkdir(parents=True)
    for name in ("G", "E"):
        shutil.copy(FIX / f"latest_net_{name}.pth", folder / f"latest_net_{name}.pth")
    out = do_import("bicyclegan", folder, tmp_path / "o")
    record = json.loads((out / "import.json").read_text())
    assert record["networks_imported"] == ["E", "G"] and record["networks_fresh"] == ["D", "D2"]
    _check_cases(load_model(out))


def test_generator_alone_has_a_fresh_encoder(tmp_path):
    out = do_import("bicyclegan", FIX / "latest_net_G.pth", tmp_path / "o")
    record = json.loads((out / "import.json").read_text())
    assert record["networks_fresh"] == ["E", "D", "D2"]
    assert record["notes"] == [
        "no E file (--no_encode?): the encoder is fresh; example-guided translation needs it trained"
    ]
    case = cases(FIX)["a2b_random"]
    assert max_diff(load_model(out).translate(case["input"], style=case["style"]), case["output"]) < ATOL


def test_legacy_instance_norm_statistics_are_dropped(tmp_path):
    """Files of PyTorch <= 0.3 carry InstanceNorm running statistics, which the official
    loader drops; so does the import."""
    folder = tmp_path / "old"
    folder.mkdir()
    g, e = _sd("latest_net_G.pth"), _sd("latest_net_E.pth")
    g["model.submodule.down.2.running_mean"] = torch.zeros(4)
    g["model.submodule.up.2.running_var"] = torch.ones(2)
    e["conv.1.conv.0.running_mean"] = torch.zeros(4)
    torch.save(g, folder / "latest_net_G.pth")
    torch.save(e, folder / "latest_net_E.pth")
    out = do_import("bicyclegan", folder, tmp_path / "o")
    assert json.loads((out / "import.json").read_text())["dropped_keys"] == [
        "latest_net_G.pth: model.submodule.down.2.running_mean",
        "latest_net_G.pth: model.submodule.up.2.running_var",
        "latest_net_E.pth: conv.1.conv.0.running_mean",
    ]
    _check_cases(load_model(out))


def _error(path, tmp_path, method="bicyclegan", **opts) -> str:
    return import_error(method, path, tmp_path, **opts)


def _save(tmp_path, name: str, sd: dict) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    for net, state in sd.items():
        torch.save(state, folder / f"latest_net_{net}.pth")
    return folder


def test_bad_inputs_give_one_line_and_write_nothing(tmp_path):
    g, e, d = _sd("latest_net_G.pth"), _sd("latest_net_E.pth"), _sd("latest_net_D.pth")
    truncated = tmp_path / "latest_net_G.pth"
    truncated.write_bytes((FIX / "latest_net_G.pth").read_bytes()[:3000])
    assert _error(truncated, tmp_path).startswith(
        f"{truncated}: not a readable PyTorch checkpoint (truncated or another format"
    )
    (tmp_path / "empty").mkdir()
    assert _error(tmp_path / "empty", tmp_path) == (
        f"{tmp_path / 'empty'}: no <epoch>_net_<G|D|D2|E>.pth files in this folder"
    )
    only_e = _save(tmp_path, "only_e", {"E": e})
    assert _error(only_e, tmp_path) == f"{only_e}: no generator file (<epoch>_net_G.pth) in this snapshot"
    extra = _save(tmp_path, "extra", {"G": {**g, "model.submodule.middle.1.weight": torch.zeros(1)}})
    assert _error(extra, tmp_path) == (
        f"{extra / 'latest_net_G.pth'}: unmapped key 'model.submodule.middle.1.weight' (not a key of "
        "this method's networks)"
    )
    odd = _save(tmp_path, "odd", {"G": g, "E": {**e, "conv.2.conv.2.weight": torch.zeros(8, 8, 5, 5)}})
    assert _error(odd, tmp_path) == (
        f"{odd / 'latest_net_E.pth'}: key 'conv.2.body.2.weight' has shape (8, 8, 5, 5), imtrans E built "
        "from the options read has (8, 8, 3, 3) (a shape that fits no option)"
    )
    p2p = fixture("pix2pix") / "latest_net_G.pth"  # the wrong METHOD for the file
    assert _error(p2p, tmp_path) == (
        f"{p2p}: no key 'model.down.0.weight', which this method's network has (first key of the file: "
        "'model.model.0.weight'; the wrong METHOD for this file?)"
    )
    no_z = _save(tmp_path, "no_z", {"G": {**g, "model.submodule.down.1.weight": torch.zeros(4, 2, 4, 4)}})
    assert "adds z at the input only (--where_add input)" in _error(no_z, tmp_path)
    batch = _save(tmp_path, "batch", {"G": {**g, "model.submodule.down.2.weight": torch.ones(4)}})
    assert _error(batch, tmp_path) == (
        f"{batch / 'latest_net_G.pth'}: BatchNorm tensor 'model.submodule.down.2.weight' in G (trained with "
        "--norm batch); imtrans imports BicycleGAN models with InstanceNorm (--norm instance, the default) only"
    )
    e_nz = _save(tmp_path, "e_nz", {"G": g, "E": {**e, "fc.0.weight": torch.zeros(16, 16)}})
    assert _error(e_nz, tmp_path) == (
        f"{e_nz / 'latest_net_E.pth'}: E encodes 3-channel images to nz 16, G makes 3-channel images from "
        "nz 8 (files of two models?)"
    )
    single = _save(
        tmp_path, "single", {"G": g, "D": {k.replace("model_0.", "model."): v for k, v in d.items()}}
    )
    assert "a single-scale D ('model.0.weight': netD basic_* or --num_Ds 1)" in _error(single, tmp_path)
    three = {**d, **{k.replace("model_1.", "model_2."): v for k, v in d.items() if k.startswith("model_1.")}}
    three = _save(tmp_path, "three", {"G": g, "D": three})
    assert _error(three, tmp_path) == (
        f"{three / 'latest_net_D.pth'}: D scale widths [4, 2, 2]; imtrans's MultiScalePatchGAN has [4, 2, 1] "
        "(ndf 4, 3 scales; only --num_Ds 2 agrees)"
    )


def test_newest_snapshot_of_a_folder_and_epoch_option(tmp_path):
    folder = tmp_path / "checkpoints" / "edges2shoes_bicycle_gan"
    folder.mkdir(parents=True)
    for label in ("5", "20"):
        for name in ("G", "E", "D", "D2"):
            shutil.copy(FIX / f"latest_net_{name}.pth", folder / f"{label}_net_{name}.pth")

    def chosen(out, **opts):
        record = json.loads(
            (do_import("bicyclegan", folder, tmp_path / out, **opts) / "import.json").read_text()
        )
        return [f["path"].rsplit("/", 1)[1] for f in record["files"]]

    assert chosen("a") == ["20_net_G.pth", "20_net_D.pth", "20_net_D2.pth", "20_net_E.pth"]
    assert chosen("b", epoch="5")[0] == "5_net_G.pth"
    shutil.copy(FIX / "latest_net_G.pth", folder / "latest_net_G.pth")
    assert chosen("c") == ["latest_net_G.pth"]


def test_finetune_through_init_from(imported, tmp_path):
    data = ["data=shapes_paired", "data.size=128", "data.batch_size=2"]  # BicycleGAN splits a batch in halves
    before, ckpt, _ = finetune(imported, data, tmp_path / "ft")
    assert_finetuned(before, ckpt, ["G", "E", "D", "D2"])
    assert int(ckpt["state_dict"]["_iteration"]) == 2


@pytest.mark.parametrize(
    ("name", "rules"),
    [
        ("bicyclegan_G_unet256_all.tsv", bicyclegan.G_RULES),
        ("bicyclegan_D_basic256multi.tsv", bicyclegan.d_rules(3, 2)),
        ("bicyclegan_E_resnet256.tsv", bicyclegan.E_RULES),
    ],
)
def test_rules_map_the_paper_configuration_keys(name, rules):
    rows = key_table(name)
    sd = {official: torch.zeros(0) for official, _, _ in rows}
    renamed, dropped = rename_keys(sd, rules, Path(name), ours=[ours for _, ours, _ in rows])
    assert dropped == [] and list(renamed) == [ours for _, ours, _ in rows]
