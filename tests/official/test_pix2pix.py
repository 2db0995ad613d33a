"""pix2pix official checkpoints (junyanz): outputs equal to the official eval-mode ones, the
published G-only file, files without num_batches_tracked, InstanceNorm and legacy files, bad
inputs with their one-line errors, the newest snapshot of a folder, fine-tuning, the key rules."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from imtrans.load import load_model
from imtrans.nets import UnetGenerator
from imtrans.official import IDENTITY, OfficialFormatError, rename_keys
from imtrans.official.layers import patch_discriminator_rules
from tests.official.helpers import (
    ATOL,
    assert_finetuned,
    bad_file,
    cases,
    do_import,
    finetune,
    fixture,
    import_error,
    key_table,
    max_diff,
    translate_case,
)

FIX = fixture("pix2pix")
EVAL = ["model.test_mode=eval"]  # the fixture's outputs are official --eval outputs


def _sd(name: str) -> dict:
    return torch.load(FIX / name, weights_only=True)


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    return do_import("pix2pix", FIX, tmp_path_factory.mktemp("p2p") / "run", overrides=EVAL)


def test_folder_import_matches_the_official_outputs(imported):
    module = load_model(imported)
    assert module.test_mode == "eval"
    for name, case in cases(FIX).items():
        assert max_diff(translate_case(module, case), case["output"]) < ATOL, name
    record = json.loads((imported / "import.json").read_text())
    assert record["networks_imported"] == ["D", "G"] and record["networks_fresh"] == []
    assert record["dropped_keys"] == [] and record["notes"] == []
    opts = record["official_options"]
    assert (opts["netG"], opts["num_downs"], opts["ngf"], opts["norm"]) == ("unet_128", 7, 4, "batch")
    assert (opts["ndf"], opts["n_layers_D"]) == (4, 3)
    assert "model.generator.num_downs=7" in record["overrides"]
    assert "data.crop_size=128" in record["overrides"] and record["overrides"][-1] == "model.test_mode=eval"


def test_default_test_mode_is_the_official_test_without_eval(tmp_path):
    """Without the override, inference keeps batch statistics and dropout (official test.py
    without --eval), so it is not the eval-mode output, and it leaves the running stats alone."""
    module = load_model(do_import("pix2pix", FIX / "latest_net_G.pth", tmp_path / "train"))
    assert module.test_mode == "train"
    case = cases(FIX)["a2b"]
    before = {k: v.clone() for k, v in module.G.state_dict().items()}
    torch.manual_seed(0)
    assert max_diff(module.translate(case["input"]), case["output"]) > 1e-2
    assert all(torch.equal(before[k], v) for k, v in module.G.state_dict().items())


def test_train_mode_inference_is_one_image_at_a_time(tmp_path):
    """The official test runs batch size 1, so batch statistics are each image's own: a batch of
    two gives what the two alone give (same dropout draws), whatever a tool's batch size."""
    module = load_model(do_import("pix2pix", FIX / "latest_net_G.pth", tmp_path / "train"))
    x = torch.randn(2, *cases(FIX)["a2b"]["input"].shape[1:], generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    both = module.translate(x)
    torch.manual_seed(0)
    alone = torch.cat([module.translate(x[:1]), module.translate(x[1:])])
    assert torch.equal(both, alone)
    assert not module._one_by_one  # training batches keep their batch statistics


@pytest.mark.parametrize("name", ["latest_net_G.pth", "facades_label2photo.pth"])
def test_published_generator_file_alone(tmp_path, name):
    """The published models are one G file (often renamed after download); D starts fresh."""
    file = tmp_path / name
    shutil.copy(FIX / "latest_net_G.pth", file)
    out = do_import("pix2pix", file, tmp_path / "g", overrides=EVAL)
    record = json.loads((out / "import.json").read_text())
    assert record["networks_imported"] == ["G"] and record["networks_fresh"] == ["D"]
    case = cases(FIX)["a2b"]
    assert max_diff(load_model(out).translate(case["input"]), case["output"]) < ATOL


def test_file_without_num_batches_tracked_is_filled(tmp_path):
    """BatchNorm state dicts of PyTorch < 0.4.1 lack num_batches_tracked; our strict load
    needs it, so it is filled with 0, as PyTorch does."""
    sd = {k: v for k, v in _sd("latest_net_G.pth").items() if not k.endswith("num_batches_tracked")}
    torch.save(sd, tmp_path / "old_net_G.pth")
    out = do_import("pix2pix", tmp_path / "old_net_G.pth", tmp_path / "o", overrides=EVAL)
    record = json.loads((out / "import.json").read_text())
    assert record["notes"] == [
        "filled 11 BatchNorm num_batches_tracked (0), absent in files of PyTorch < 0.4.1"
    ]
    module = load_model(out)
    assert int(module.G.state_dict()["model.model.1.model.2.num_batches_tracked"]) == 0
    case = cases(FIX)["a2b"]
    assert max_diff(module.translate(case["input"]), case["output"]) < ATOL


def test_instance_norm_generator_with_legacy_statistics(tmp_path):
    """--norm instance: convs with biases, no norm tensors; a file of before Oct 2018 also
    carries InstanceNorm running statistics, dropped as the official loader drops them."""
    torch.manual_seed(0)
    net = UnetGenerator(3, 1, num_downs=5, ngf=2, norm="instance").eval()
    sd = dict(net.state_dict())
    sd["model.model.1.model.2.running_mean"] = torch.zeros(4)
    sd["model.model.1.model.2.running_var"] = torch.ones(4)
    torch.save(sd, tmp_path / "latest_net_G.pth")
    out = do_import("pix2pix", tmp_path / "latest_net_G.pth", tmp_path / "o")
    record = json.loads((out / "import.json").read_text())
    assert record["official_options"]["norm"] == "instance"
    assert "model.generator.norm=instance" in record["overrides"]
    assert record["dropped_keys"] == [
        "latest_net_G.pth: model.model.1.model.2.running_mean",
        "latest_net_G.pth: model.model.1.model.2.running_var",
    ]
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert max_diff(load_model(out).translate(x), net(x)) == 0.0


def _error(path, tmp_path, method="pix2pix", **opts) -> str:
    return import_error(method, path, tmp_path, **opts)


def test_bad_inputs_give_one_line_and_write_nothing(tmp_path):
    g = _sd("latest_net_G.pth")
    truncated = bad_file(tmp_path, "latest_net_G.pth", (FIX / "latest_net_G.pth").read_bytes()[:5000])
    assert _error(truncated, tmp_path).startswith(
        f"{truncated}: not a readable PyTorch checkpoint (truncated or another format"
    )
    (tmp_path / "empty").mkdir()
    assert _error(tmp_path / "empty", tmp_path) == (
        f"{tmp_path / 'empty'}: no <epoch>_net_<G|D>.pth files in this folder"
    )
    extra = bad_file(tmp_path, "x_net_G.pth", sd={**g, "model.model.1.model.9.weight": torch.zeros(1)})
    assert _error(extra, tmp_path) == (
        f"{extra}: unmapped key 'model.model.1.model.9.weight' (not a key of this method's networks)"
    )
    odd = bad_file(
        tmp_path, "odd_net_G.pth", sd={**g, "model.model.1.model.1.weight": torch.zeros(8, 4, 3, 3)}
    )
    assert _error(odd, tmp_path) == (
        f"{odd}: key 'model.model.1.model.1.weight' has shape (8, 4, 3, 3), imtrans G built from the "
        "options read has (8, 4, 4, 4) (a shape that fits no option)"
    )
    cyclegan_g = fixture("cyclegan") / "latest_net_G_A.pth"
    if cyclegan_g.exists():  # the wrong METHOD for the file
        assert _error(cyclegan_g, tmp_path) == (
            f"{cyclegan_g}: no key 'model.model.0.weight', which this method's network has (first key "
            "of the file: 'model.1.weight'; the wrong METHOD for this file?)"
        )
    bicycle_g = fixture("bicyclegan") / "latest_net_G.pth"
    assert _error(bicycle_g, tmp_path) == (
        f"{bicycle_g}: no key 'model.model.0.weight', which this method's network has (first key "
        "of the file: 'model.down.0.weight'; the wrong METHOD for this file?)"
    )
    snap = tmp_path / "snap"
    snap.mkdir()
    shutil.copy(FIX / "latest_net_G.pth", snap / "latest_net_G.pth")
    d = _sd("latest_net_D.pth")
    d["model.0.weight"] = torch.zeros(4, 4, 4, 4)  # an unconditional D: 4 = not 3 + 3 channels
    torch.save(d, snap / "latest_net_D.pth")
    assert _error(snap, tmp_path) == (
        f"{snap / 'latest_net_D.pth'}: D reads 4 channels, the conditional D of this G reads "
        "input_nc + output_nc = 6 (another model's D?)"
    )
    assert _error(FIX, tmp_path, epoch="7") == f"{FIX}: no snapshot '7'; snapshots: latest"
    with pytest.raises(OfficialFormatError, match=r"unknown importer option\(s\) \['direction'\]"):
        do_import("pix2pix", FIX, tmp_path / "never", direction="a2b")


def test_newest_snapshot_of_a_folder_and_epoch_option(tmp_path):
    folder = tmp_path / "checkpoints" / "facades_pix2pix"
    folder.mkdir(parents=True)
    for label in ("5", "10", "iter_200"):
        for name in ("G", "D"):
            shutil.copy(FIX / f"latest_net_{name}.pth", folder / f"{label}_net_{name}.pth")

    def chosen(**opts):
        out = do_import("pix2pix", folder, tmp_path / f"o{len(list(tmp_path.iterdir()))}", **opts)
        return [f["path"].rsplit("/", 1)[1] for f in json.loads((out / "import.json").read_text())["files"]]

    assert chosen() == ["iter_200_net_G.pth", "iter_200_net_D.pth"]  # highest number, not "5" > "10"
    shutil.copy(FIX / "latest_net_G.pth", folder / "latest_net_G.pth")
    assert chosen() == ["latest_net_G.pth"]  # latest first, as --continue_train loads it
    assert chosen(epoch="10") == ["10_net_G.pth", "10_net_D.pth"]


def test_finetune_through_init_from(imported, tmp_path):
    before, ckpt, _ = finetune(imported, ["data=shapes_paired", "data.size=128"], tmp_path / "ft")
    assert_finetuned(before, ckpt, ["G", "D"])
    assert int(ckpt["state_dict"]["_iteration"]) == 2


@pytest.mark.parametrize(
    ("name", "rules"),
    [
        ("pix2pix_G_unet256.tsv", IDENTITY),
        ("pix2pix_D_basic_batch.tsv", patch_discriminator_rules(3, norm_tensors=True)),
    ],
)
def test_rules_map_the_paper_configuration_keys(name, rules):
    rows = key_table(name)
    sd = {official: torch.zeros(0) for official, _, _ in rows}
    renamed, dropped = rename_keys(sd, rules, Path(name), ours=[ours for _, ours, _ in rows])
    assert dropped == [] and list(renamed) == [ours for _, ours, _ in rows]
