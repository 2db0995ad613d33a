"""DRIT official checkpoints (HsinYingLee/DRIT): outputs equal to the official ones (random z and
example-guided), the rename rules against the paper-configuration key tables, the concat=0
layout, the newest snapshot of a results folder, bad inputs with their one-line errors, and
fine-tuning an import."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch

from imtrans.load import load_model
from imtrans.nets import drit as nets
from imtrans.official import rename_keys
from imtrans.official.formats import drit as fmt
from tests.official.helpers import (
    ATOL,
    KEYS,
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

FIX = fixture("drit")
FILE = FIX / "00001.pth"
NETWORKS = ["disA", "disA2", "disB", "disB2", "disContent", "enc_a", "enc_c", "gen"]


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    return do_import("drit", FIX, tmp_path_factory.mktemp("drit") / "run")


@pytest.fixture(scope="module")
def official():
    return torch.load(FILE, map_location="cpu", weights_only=True)


def test_folder_import_matches_the_official_outputs(imported):
    module = load_model(imported)
    assert module.concat is True
    # DRIT.test_forward with the recorded z; test_forward_transfer with z = mu of the
    # reference (our encode_style)
    for name, case in cases(FIX).items():
        assert max_diff(translate_case(module, case), case["output"]) < ATOL, name
    record = json.loads((imported / "import.json").read_text())
    assert record["networks_imported"] == NETWORKS and record["networks_fresh"] == []
    assert record["dropped_keys"] == [] and record["official_iteration"] == 200
    assert record["official_options"] == {
        "concat": 1, "input_dim_a": 3, "input_dim_b": 3, "dim": 2, "nz": 8,
        "dis_dim": 2, "dis_scale": 3, "dis_n_layer": 4, "ep": 1, "total_it": 200,
    }  # fmt: skip
    assert [f["path"].rsplit("/", 1)[1] for f in record["files"]] == ["00001.pth"]


# ----------------------------------------------------------------------------- key tables
def _ours(net: str, concat: bool):
    """Our network of the official entry ``net`` at the paper configuration (meta tensors)."""
    with torch.device("meta"):
        if net == "enc_c":
            return nets.ContentEncoder(3, 3, 64)
        if net == "enc_a":
            return nets.AttrEncoderConcat(3, 3, 8, 64) if concat else nets.AttrEncoder(3, 3, 8, 64)
        if net == "gen":
            return nets.GeneratorConcat(3, 3, 8, 64) if concat else nets.GeneratorMis(3, 3, 8, 64, 256)
        return nets.ContentDis(256) if net == "disContent" else nets.MultiScaleDis(3, 3, 4, 64)


@pytest.mark.skipif(not KEYS.is_dir(), reason="../shared/official_keys is absent")
@pytest.mark.parametrize("table", sorted(p.name for p in KEYS.glob("drit_*.tsv")) or ["none"])
def test_rules_map_the_paper_key_tables(table):
    net, concat = re.fullmatch(r"drit_(\w+?)_concat([01])\.tsv", table).groups()
    rows = key_table(table)
    ours = _ours(net, concat == "1").state_dict()
    sd = {o: torch.tensor(n) for n, (o, _, _) in enumerate(rows)}
    renamed, dropped = rename_keys(sd, fmt.rules_for(net, concat == "1"), Path(table), ours=ours)
    assert dropped == [] and set(renamed) == set(ours) == {i for _, i, _ in rows}
    for o, i, shape in rows:
        assert rows[int(renamed[i])][0] == o and tuple(ours[i].shape) == shape, (o, i)


@pytest.mark.skipif(not KEYS.is_dir(), reason="../shared/official_keys is absent")
def test_concat0_layout_from_the_key_tables_at_width_1_32(tmp_path):
    """A concat=0 ``example.pth`` (enc_c, enc_a, gen only) with the paper keys and every width
    >= 64 divided by 32: the layout and widths are read from it and each tensor lands on the
    key of the table; the discriminators are fresh."""
    g = torch.Generator().manual_seed(0)
    entries, where = {}, {}
    for net, table in (("enc_c", "drit_enc_c_concat1.tsv"), ("enc_a", "drit_enc_a_concat0.tsv"),
                       ("gen", "drit_gen_concat0.tsv")):  # fmt: skip
        entries[net] = {}
        for o, i, shape in key_table(table):
            entries[net][o] = torch.randn([d // 32 if d >= 64 else d for d in shape], generator=g)
            where[f"{net}.{i}"] = entries[net][o]
    (tmp_path / "models").mkdir()
    torch.save(entries, tmp_path / "models" / "example.pth")
    out = do_import("drit", tmp_path / "models", tmp_path / "run")
    record = json.loads((out / "import.json").read_text())
    assert record["official_options"] == {
        "concat": 0, "input_dim_a": 3, "input_dim_b": 3, "dim": 2, "nz": 8, "mlp_dim": 8,
        "ep": None, "total_it": None,
    }  # fmt: skip
    assert record["networks_fresh"] == ["disA", "disB", "disA2", "disB2", "disContent"]
    module = load_model(out)
    state = module.state_dict()
    assert module.concat is False and all(torch.equal(state[k], v) for k, v in where.items())
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert module.translate(x, "b2a", reference=x).shape == (2, 3, 32, 32)


# ----------------------------------------------------------------------------- folders
def _snapshot(official, path: Path, total_it: int):
    torch.save({**official, "ep": int(path.stem) if path.stem.isdigit() else -1, "total_it": total_it}, path)


def test_newest_snapshot_of_a_results_folder_and_epoch_option(official, tmp_path):
    folder = tmp_path / "results" / "yosemite"
    folder.mkdir(parents=True)
    # last.pth (ep -1) is rewritten at the iteration cap, while numbered snapshots go on
    for name, it in (("00009.pth", 10), ("00099.pth", 100), ("00109.pth", 110), ("last.pth", 50)):
        _snapshot(official, folder / name, it)

    def chosen(out, **opts):
        record = json.loads((do_import("drit", folder, tmp_path / out, **opts) / "import.json").read_text())
        return record["files"][0]["path"].rsplit("/", 1)[1], record["official_iteration"]

    assert chosen("a") == ("00109.pth", 110)
    assert chosen("b", epoch="99") == ("00099.pth", 100)
    for name in ("00009.pth", "00099.pth", "00109.pth"):
        (folder / name).unlink()
    shutil.copy(FILE, folder / "example.pth")
    assert chosen("c") == ("last.pth", 50)
    (folder / "last.pth").unlink()
    assert chosen("d") == ("example.pth", 200)


# ----------------------------------------------------------------------------- bad inputs
def _error(path, tmp_path, **opts) -> str:
    return import_error("drit", path, tmp_path, **opts)


def _variant(official, tmp_path, name: str, **nets) -> Path:
    path = tmp_path / name
    torch.save({**official, **nets}, path)
    return path


def test_bad_inputs_give_one_line_and_write_nothing(official, tmp_path):
    truncated = tmp_path / "00019.pth"
    truncated.write_bytes(FILE.read_bytes()[:20000])
    assert _error(truncated, tmp_path).startswith(
        f"{truncated}: not a readable PyTorch checkpoint (truncated or another format"
    )
    (tmp_path / "empty").mkdir()
    assert _error(tmp_path / "empty", tmp_path) == (
        f"{tmp_path / 'empty'}: no DRIT snapshot (%05d.pth, last.pth or example.pth) in this folder"
    )
    hint = "(not a DRIT snapshot: DRIT.save writes enc_c, enc_a, gen, the discriminators, ep, total_it)"
    cyclegan = fixture("cyclegan") / "latest_net_G_A.pth"
    if cyclegan.exists():  # the wrong METHOD: a junyanz raw state dict
        message = _error(cyclegan, tmp_path)
        assert message.startswith(
            f"{cyclegan}: no entry 'enc_c' (entries: 'model.1.weight', 'model.1.bias', "
        )
        assert message.endswith(f") {hint}")
    munit = fixture("munit") / "gen_00000001.pt"
    if munit.exists():  # MUNIT's {'a': sd, 'b': sd}
        assert _error(munit, tmp_path) == f"{munit}: no entry 'enc_c' (entries: 'a', 'b') {hint}"

    gen = dict(official["gen"])
    extra = _variant(official, tmp_path, "extra.pth", gen={**gen, "decA5.0.weight": torch.zeros(3)})
    assert _error(extra, tmp_path) == (
        f"{extra} ['gen']: unmapped key 'decA5.0.weight' (not a key of this method's networks)"
    )
    enc_c = {**official["enc_c"], "convA.3.model.1.weight": torch.zeros(8, 8, 5, 5)}
    odd = _variant(official, tmp_path, "odd.pth", enc_c=enc_c)
    assert _error(odd, tmp_path) == (
        f"{odd} ['enc_c']: key 'conv_a.3.model.1.weight' has shape (8, 8, 5, 5), imtrans enc_c built from "
        "the options read has (8, 8, 3, 3) (a shape that fits no option)"
    )
    # an E_attr_concat whose width is not E_content's (the official literals are in proportion)
    enc_a = {**official["enc_a"], "fc_A.0.weight": torch.zeros(8, 16)}
    wide = _variant(official, tmp_path, "wide.pth", enc_a=enc_a)
    assert "key 'branch_a.fc.weight' has shape (8, 16)" in _error(wide, tmp_path)

    disA = {}
    for k, v in official["disA"].items():  # --dis_spectral_norm: weight_orig + weight, weight_u buffers
        disA[k.replace("weight", "weight_orig")] = v
        if k.endswith("weight"):
            disA[k] = v
            disA[k.replace("weight", "weight_u")] = torch.zeros(v.shape[0])
    sn = _variant(official, tmp_path, "sn.pth", disA=disA)
    assert _error(sn, tmp_path) == (
        f"{sn} ['disA']: key 'Diss.0.0.model.1.weight_orig' is a --dis_spectral_norm discriminator, which "
        "imtrans DRIT does not support (its discriminators have no spectral norm)"
    )
    single = {"model.0.model.1.weight": torch.zeros(2, 3, 3, 3), "model.0.model.1.bias": torch.zeros(2)}
    one = _variant(official, tmp_path, "one.pth", disB=single)
    assert _error(one, tmp_path) == (
        f"{one} ['disB']: a single-scale Dis (--dis_scale 1, 'model.*' keys), which imtrans DRIT does not "
        "support (its image discriminators are MultiScaleDis, dis_scale >= 2)"
    )
    mixed = _variant(official, tmp_path, "mixed.pth", enc_a={"model_a.1.weight": torch.zeros(2, 3, 7, 7)})
    assert _error(mixed, tmp_path) == (
        f"{mixed}: enc_a is E_attr (concat 0) but gen is G_concat (concat 1); a DRIT model has one layout"
    )
    assert _error(FIX, tmp_path, epoch="7") == f"{FIX}: no snapshot 00007.pth (snapshots: 00001.pth)"
    assert _error(FILE, tmp_path, epoch="1") == (
        f"{FILE}: epoch=1 chooses a snapshot of a folder; PATH is one file"
    )


def test_instance_norm_statistics_of_old_files_are_dropped(official, tmp_path):
    """A file written where InstanceNorm kept running statistics (PyTorch 0.3 style) loads,
    the statistics listed in import.json as dropped."""
    enc_c = dict(official["enc_c"])
    enc_c["convA.1.model.2.running_mean"] = torch.zeros(4)
    enc_c["convA.1.model.2.running_var"] = torch.ones(4)
    old = _variant(official, tmp_path, "old.pth", enc_c=enc_c)
    record = json.loads((do_import("drit", old, tmp_path / "o") / "import.json").read_text())
    assert record["dropped_keys"] == [
        "old.pth [enc_c]: convA.1.model.2.running_mean",
        "old.pth [enc_c]: convA.1.model.2.running_var",
    ]


# ----------------------------------------------------------------------------- fine-tuning
def test_finetune_through_init_from(imported, tmp_path):
    """64 px (the image discriminators' 3 scales x 4 stride-2 layers need 16 px at the last
    scale; the content discriminator resizes the 16 px content maps, content_dis_fit=auto),
    batch 2 as officially, d_iter=1 so that both iterations are full updates."""
    data = ["data=shapes", "data.size=64", "data.batch_size=2", "data.num_fixed=2", "data.val_size=2"]
    before, ckpt, _ = finetune(imported, data, tmp_path / "ft", extra=["model.d_iter=1"])
    assert_finetuned(before, ckpt, NETWORKS)
    assert int(ckpt["state_dict"]["_iteration"]) == 2
