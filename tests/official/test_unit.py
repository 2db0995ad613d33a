"""UNIT official checkpoints (mingyuliutw/UNIT): outputs equal to the official ones (the
noise-free hidden code decoded), PyTorch 0.3 statistics dropped, the wrong METHOD and other bad
inputs with their one-line errors, fine-tuning. The folder logic shared with MUNIT is tested
in test_munit.py."""

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
    translate_case,
)

FIX = fixture("unit")
GEN = FIX / "gen_00000001.pt"
NETWORKS = ["dis_a", "dis_b", "gen_a", "gen_b"]


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    return do_import("unit", FIX, tmp_path_factory.mktemp("unit") / "run")


def test_folder_import_matches_the_official_outputs(imported):
    module = load_model(imported)
    for name, case in cases(FIX).items():
        assert max_diff(translate_case(module, case), case["output"]) < ATOL, name
    record = json.loads((imported / "import.json").read_text())
    assert record["networks_imported"] == NETWORKS and record["networks_fresh"] == []
    assert record["dropped_keys"] == [] and record["official_iteration"] == 1
    assert record["official_options"]["gen"] == {"dim": 4, "n_downsample": 2, "n_res": 2}
    assert record["official_options"]["dis"] == {"dim": 2, "n_layer": 4, "num_scales": 3, "norm": "none"}
    assert record["overrides"][0] == "model=unit"


def test_pytorch03_statistics_are_dropped(tmp_path):
    """A file in the form of unit_gta2city.pt (built here from the fixture, as PyTorch 0.3 wrote
    it): InstanceNorm running_mean/var in enc and in the decoder's residual blocks dec.model.0,
    under a name of its own; gen only."""
    gens = torch.load(GEN, weights_only=True)
    legacy = {}
    for d, sd in gens.items():
        legacy[d] = {}
        for key, value in sd.items():
            if key.endswith(".conv.weight") and key.startswith(("enc.", "dec.model.0.")):
                norm = key[: -len("conv.weight")] + "norm."
                legacy[d][norm + "running_mean"] = torch.zeros(value.shape[0])
                legacy[d][norm + "running_var"] = torch.ones(value.shape[0])
            legacy[d][key] = value
    torch.save(legacy, tmp_path / "unit_gta2city.pt")
    out = do_import("unit", tmp_path / "unit_gta2city.pt", tmp_path / "o")
    record = json.loads((out / "import.json").read_text())
    assert len(record["dropped_keys"]) == 2 * 2 * 11  # 7 enc + 4 dec.model.0 norms, 2 stats, 2 gens
    assert record["official_iteration"] is None and record["networks_fresh"] == ["dis_a", "dis_b"]
    module = load_model(out)
    case = cases(FIX)["b2a"]
    assert max_diff(module.translate(case["input"], "b2a"), case["output"]) < ATOL


def _error(method, path, tmp_path) -> str:
    return import_error(method, path, tmp_path)


def test_bad_inputs_give_one_line_and_write_nothing(tmp_path):
    munit = fixture("munit") / "gen_00000001.pt"
    assert _error("unit", munit, tmp_path) == (
        f"{munit} ['a']: holds MUNIT generators (AdaINGen: 'enc_style.*'/'enc_content.*' keys), not UNIT's "
        "VAEGen; import it with METHOD munit"
    )
    gens = torch.load(GEN, weights_only=True)
    gens["a"]["dec.model.6.conv.weight"] = torch.zeros(3, 3, 1, 1)
    torch.save(gens, tmp_path / "extra.pt")
    assert _error("unit", tmp_path / "extra.pt", tmp_path) == (
        f"{tmp_path / 'extra.pt'} ['a']: unmapped key 'dec.model.6.conv.weight' (not a key of this "
        "method's networks)"
    )
    gens = torch.load(GEN, weights_only=True)
    gens["b"]["dec.model.5.conv.weight"] = torch.zeros(3, 4, 5, 5)
    torch.save(gens, tmp_path / "odd.pt")
    assert _error("unit", tmp_path / "odd.pt", tmp_path) == (
        f"{tmp_path / 'odd.pt'} ['b']: key 'dec.model.5.conv.weight' has shape (3, 4, 5, 5), imtrans gen_b "
        "built from the options read has (3, 4, 7, 7) (a shape that fits no option)"
    )
    # a discriminator whose channels do not fit the generators of its snapshot
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    shutil.copy(GEN, folder / "gen_00010000.pt")
    dis = torch.load(FIX / "dis_00000001.pt", weights_only=True)
    for s in range(3):
        dis["b"][f"cnns.{s}.0.conv.weight"] = torch.zeros(2, 1, 4, 4)
    torch.save(dis, folder / "dis_00010000.pt")
    assert _error("unit", folder, tmp_path) == (
        f"{folder / 'dis_00010000.pt'} ['b']: takes 1 channels, gen 'b' of gen_00010000.pt 3 (files of "
        "different models?)"
    )
    truncated = tmp_path / "gen_00000002.pt"
    truncated.write_bytes(GEN.read_bytes()[:3000])
    assert "not a readable PyTorch checkpoint (truncated" in _error("unit", truncated, tmp_path)
    (tmp_path / "empty").mkdir()
    assert _error("unit", tmp_path / "empty", tmp_path) == (
        f"{tmp_path / 'empty'}: no generator snapshot (gen_*.pt) in this folder"
    )


def test_gen_file_takes_its_dis_sibling(tmp_path):
    record = json.loads((do_import("unit", GEN, tmp_path / "o") / "import.json").read_text())
    assert [f["path"].rsplit("/", 1)[1] for f in record["files"]] == ["gen_00000001.pt", "dis_00000001.pt"]


def test_finetune_through_init_from(imported, tmp_path):
    before, ckpt, _ = finetune(imported, ["data=shapes", "data.size=64"], tmp_path / "ft")
    assert_finetuned(before, ckpt, NETWORKS)
    assert int(ckpt["state_dict"]["_iteration"]) == 2
