"""MUNIT official checkpoints (NVlabs/MUNIT): outputs equal to the official ones for random and
reference styles, the PyTorch 0.3 file, the newest snapshot of a folder, bad inputs with their
one-line errors, fine-tuning."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from imtrans.load import load_model
from tests.official.helpers import (
    ATOL,
    assert_finetuned,
    cases,
    do_import,
    finetune,
    fixture,
    import_error,
    max_diff,
    run_import_cli,
    translate_case,
)

FIX = fixture("munit")
GEN = FIX / "gen_00000001.pt"
LEGACY = FIX / "legacy_pytorch03" / "gen_00000001.pt"
NETWORKS = ["dis_a", "dis_b", "gen_a", "gen_b"]


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    return do_import("munit", FIX, tmp_path_factory.mktemp("munit") / "run")


def _assert_cases(module) -> None:
    """Each case as test.py runs it: a sampled code (N x 8 x 1 x 1, as drawn officially) or the
    style of a reference image of the target domain."""
    for name, case in cases(FIX).items():
        assert max_diff(translate_case(module, case), case["output"]) < ATOL, name


def test_folder_import_matches_the_official_outputs(imported):
    module = load_model(imported)
    _assert_cases(module)
    # the reference code itself, N x 8 x 1 x 1 officially, N x 8 here
    case = cases(FIX)["a2b_reference"]
    code = module.encode_style(case["reference"], "B")
    assert max_diff(code, case["code_from_reference"].flatten(1)) < ATOL
    record = json.loads((imported / "import.json").read_text())
    assert record["networks_imported"] == NETWORKS and record["networks_fresh"] == []
    assert record["dropped_keys"] == [] and record["official_iteration"] == 1
    assert record["official_options"]["gen"] == {
        "dim": 4, "n_downsample": 2, "n_res": 2, "style_dim": 8, "mlp_dim": 8, "style_downsample": 4,
    }  # fmt: skip
    assert record["official_options"]["dis"] == {"dim": 2, "n_layer": 4, "num_scales": 3, "norm": "none"}
    assert [f["path"].rsplit("/", 1)[1] for f in record["files"]] == ["gen_00000001.pt", "dis_00000001.pt"]
    assert any(n.startswith("optimizer.pt not imported") for n in record["notes"])


def test_legacy_pytorch03_file_loads_with_the_notice(tmp_path):
    out = tmp_path / "legacy"
    proc = run_import_cli("munit", str(LEGACY), f"out={out}")
    assert proc.returncode == 0, proc.stderr
    assert "notice: dropped 28 legacy key(s)" in proc.stdout
    record = json.loads((out / "import.json").read_text())
    # 14 InstanceNorm statistics per content encoder; the AdaIN buffers of dec are kept
    assert len(record["dropped_keys"]) == 28
    assert all(
        k.split(": ")[1].startswith("enc_content.") and k.endswith(("running_mean", "running_var"))
        for k in record["dropped_keys"]
    )
    assert record["networks_fresh"] == ["dis_a", "dis_b"]
    official = torch.load(LEGACY, weights_only=True)["a"]
    state = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    adain = [k for k in official if k.startswith("dec.") and k.endswith(("running_mean", "running_var"))]
    assert len(adain) == 8 and all(torch.equal(state[f"gen_a.{k}"], official[k]) for k in adain)
    _assert_cases(load_model(out))


def test_newest_snapshot_of_a_folder(tmp_path):
    """Lexicographic order of the zero-padded names, as utils.get_model_list; the dis of the
    same number; the iteration from the name; outputs/<name>/ accepted for its checkpoints/."""
    folder = tmp_path / "outputs" / "e2s" / "checkpoints"
    folder.mkdir(parents=True)
    gens = torch.load(GEN, weights_only=True)
    newer = {
        d: {k: v + 1 if k == "dec.model.5.conv.bias" else v for k, v in sd.items()} for d, sd in gens.items()
    }
    shutil.copy(GEN, folder / "gen_00010000.pt")
    torch.save(newer, folder / "gen_00020000.pt")
    shutil.copy(FIX / "dis_00000001.pt", folder / "dis_00010000.pt")
    shutil.copy(FIX / "dis_00000001.pt", folder / "dis_00020000.pt")
    shutil.copy(FIX / "optimizer.pt", folder / "optimizer.pt")
    out = do_import("munit", folder.parent, tmp_path / "o")
    record = json.loads((out / "import.json").read_text())
    assert [f["path"].rsplit("/", 1)[1] for f in record["files"]] == ["gen_00020000.pt", "dis_00020000.pt"]
    assert record["official_iteration"] == 20000
    state = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    assert torch.equal(state["gen_b.dec.model.5.conv.bias"], newer["b"]["dec.model.5.conv.bias"])
    # an incomplete newest snapshot: its gen with fresh discriminators, not an older dis
    (folder / "dis_00020000.pt").unlink()
    record = json.loads((do_import("munit", folder, tmp_path / "p") / "import.json").read_text())
    assert [f["path"].rsplit("/", 1)[1] for f in record["files"]] == ["gen_00020000.pt"]
    assert record["networks_fresh"] == ["dis_a", "dis_b"]
    assert "no dis_00020000.pt of the same snapshot" in " ".join(record["notes"])


def _error(method, path, tmp_path) -> str:
    return import_error(method, path, tmp_path)


def _edit(tmp_path, name, edit) -> object:
    gens = torch.load(GEN, weights_only=True)
    edit(gens["a"])
    torch.save(gens, tmp_path / name)
    return tmp_path / name


def test_bad_inputs_give_one_line_and_write_nothing(tmp_path):
    unit = fixture("unit") / "gen_00000001.pt"
    assert _error("munit", unit, tmp_path) == (
        f"{unit} ['a']: holds UNIT generators (VAEGen: 'enc.*' keys, no style encoder), not MUNIT's "
        "AdaINGen; import it with METHOD unit"
    )
    cyclegan = fixture("cyclegan") / "latest_net_G_A.pth"
    assert _error("munit", cyclegan, tmp_path) == (
        f"{cyclegan}: a single state dict (first key 'model.1.weight'), not MUNIT/UNIT generators "
        "{'a': state dict, 'b': state dict} (the wrong METHOD for this file?)"
    )
    dis = FIX / "dis_00000001.pt"
    assert _error("munit", dis, tmp_path) == (
        f"{dis} ['a']: holds discriminators ('cnns.*' keys), not generators; give the gen_%08d.pt file "
        "or the checkpoints folder"
    )
    extra = _edit(tmp_path, "extra.pt", lambda sd: sd.update({"mlp.model.3.fc.weight": torch.zeros(8, 8)}))
    assert _error("munit", extra, tmp_path) == (
        f"{extra} ['a']: unmapped key 'mlp.model.3.fc.weight' (not a key of this method's networks)"
    )
    odd = _edit(
        tmp_path, "odd.pt", lambda sd: sd.update({"dec.model.2.conv.weight": torch.zeros(8, 16, 3, 3)})
    )
    assert _error("munit", odd, tmp_path) == (
        f"{odd} ['a']: key 'dec.model.2.conv.weight' has shape (8, 16, 3, 3), imtrans gen_a built from the "
        "options read has (8, 16, 5, 5) (a shape that fits no option)"
    )
    truncated = tmp_path / "gen_00000002.pt"
    truncated.write_bytes(GEN.read_bytes()[:4000])
    assert _error("munit", truncated, tmp_path).startswith(
        f"{truncated}: not a readable PyTorch checkpoint (truncated or another format"
    )
    (tmp_path / "empty").mkdir()
    assert _error("munit", tmp_path / "empty", tmp_path) == (
        f"{tmp_path / 'empty'}: no generator snapshot (gen_*.pt) in this folder"
    )
    half = tmp_path / "half.pt"
    torch.save({"a": torch.load(GEN, weights_only=True)["a"]}, half)
    assert _error("munit", half, tmp_path) == (
        f"{half}: no entry 'b' (entries: 'a') (an official MUNIT/UNIT checkpoint is "
        "{'a': state dict, 'b': state dict})"
    )
    mixed = tmp_path / "mixed.pt"
    gens = torch.load(GEN, weights_only=True)
    gens["b"]["mlp.model.0.fc.weight"] = torch.zeros(16, 8)
    torch.save(gens, mixed)
    assert _error("munit", mixed, tmp_path) == (
        f"{mixed}: generators 'a' and 'b' differ in mlp_dim (8 vs 16); the official trainer builds both "
        "from one config"
    )


def test_published_style_gen_only_file_with_another_name(tmp_path):
    """edges2shoes.pt: a gen file of any name; no iteration, fresh discriminators."""
    shutil.copy(GEN, tmp_path / "edges2shoes.pt")
    out = do_import("munit", tmp_path / "edges2shoes.pt", tmp_path / "o")
    record = json.loads((out / "import.json").read_text())
    assert record["official_iteration"] is None and record["networks_fresh"] == ["dis_a", "dis_b"]
    case = cases(FIX)["b2a_random"]
    out = load_model(out).translate(case["input"], "b2a", style=case["style"])
    assert max_diff(out, case["output"]) < ATOL


def test_finetune_through_init_from(imported, tmp_path):
    # 64 px: the third discriminator scale (16 px) still takes its four stride-2 convolutions
    before, ckpt, _ = finetune(imported, ["data=shapes", "data.size=64"], tmp_path / "ft")
    assert_finetuned(before, ckpt, NETWORKS)
    assert int(ckpt["state_dict"]["_iteration"]) == 2


def test_discriminator_norm_read_from_its_tensors(tmp_path):
    """dis norm ln leaves gamma/beta (ours: layer); sn leaves conv.module.* (not supported)."""
    folder = tmp_path / "ln"
    folder.mkdir()
    shutil.copy(GEN, folder / "gen_00000005.pt")
    dis = torch.load(FIX / "dis_00000001.pt", weights_only=True)
    for sd in dis.values():
        for s in range(3):
            for layer in (1, 2, 3):
                c = sd[f"cnns.{s}.{layer}.conv.weight"].shape[0]
                sd[f"cnns.{s}.{layer}.norm.gamma"] = torch.rand(c)
                sd[f"cnns.{s}.{layer}.norm.beta"] = torch.zeros(c)
    torch.save(dis, folder / "dis_00000005.pt")
    record = json.loads((do_import("munit", folder, tmp_path / "o") / "import.json").read_text())
    assert record["official_options"]["dis"]["norm"] == "layer"
    assert "model.discriminator.norm=layer" in record["overrides"]
    sn = torch.load(FIX / "dis_00000001.pt", weights_only=True)
    weight = sn["a"].pop("cnns.0.1.conv.weight")
    sn["a"]["cnns.0.1.conv.module.weight_bar"] = weight
    torch.save(sn, folder / "dis_00000005.pt")
    assert _error("munit", folder, tmp_path) == (
        f"{folder / 'dis_00000005.pt'} ['a']: spectral-norm discriminator (dis norm sn, key "
        "'cnns.0.1.conv.module.weight_bar') is not supported by imtrans MsImageDis"
    )
