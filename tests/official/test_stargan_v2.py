"""StarGAN v2 official checkpoints (clovaai/stargan-v2), w_hpf 0 (AFHQ layout) and w_hpf 1
(CelebA-HQ layout): latent-, reference- and style-guided translations equal to the official ones;
the options read from the shapes."""

from __future__ import annotations

import json

import pytest
import torch

from imtrans.load import load_model
from tests.official.helpers import ATOL, cases, do_import, fixture, import_error, max_diff

FIX = fixture("stargan_v2")
#: (folder, domains, w_hpf) of the two fixture sets
SETS = [("w_hpf0", 3, 0), ("w_hpf1", 2, 1)]


def translate(module, case: dict) -> torch.Tensor:
    """A case of cases.pt through ``translate``: the latent z as ``style``, or the reference."""
    k = case["domain"]
    if case["reference"] is not None:
        return module.translate(case["input"], target_domain=k, reference=case["reference"])
    if case["latent"] is not None:
        return module.translate(case["input"], target_domain=k, style=case["latent"])
    # an explicit style vector s: the generator alone (the domain does not enter G)
    with module.inference_mode():
        return module.generator(case["input"], case["style"])


@pytest.mark.parametrize("folder,domains,w_hpf", SETS)
@pytest.mark.parametrize("nets", ["ema", "train"])
def test_import_matches_the_official_outputs(tmp_path, folder, domains, w_hpf, nets):
    path = FIX / folder / ("000001_nets_ema.ckpt" if nets == "ema" else "000001_nets.ckpt")
    run = do_import("stargan_v2", path, tmp_path / "run")
    module = load_model(run)
    record = json.loads((run / "import.json").read_text())
    expected = ["generator", "mapping_network", "style_encoder"] + (
        ["discriminator"] if nets == "train" else []
    )
    assert sorted(record["networks_imported"]) == sorted(expected) and record["dropped_keys"] == []
    assert record["networks_fresh"] == ([] if nets == "train" else ["discriminator"])
    opts = record["official_options"]
    assert (opts["num_domains"], opts["w_hpf"], opts["img_size"]) == (domains, w_hpf, 32)
    assert (opts["latent_dim"], opts["style_dim"], opts["dim_in"], opts["max_conv_dim"]) == (16, 8, 4, 8)
    assert record["official_iteration"] == 1
    for name, case in cases(FIX / folder).items():
        out = translate(module, case)
        if nets == "ema":  # the cases were made with nets_ema
            assert max_diff(out, case["output"]) < ATOL, name
    if nets == "ema":
        c = cases(FIX / folder)["latent"]
        with torch.no_grad():
            s = module.mapping_network(c["latent"], torch.full((2,), c["domain"]))
        assert max_diff(s, c["style_from_latent"]) < ATOL


def test_folder_takes_the_ema_file_and_fan_is_ignored(tmp_path):
    # an official w_hpf > 0 file holds the frozen FAN under 'fan': left out, said in the notes
    sd = torch.load(FIX / "w_hpf1" / "000001_nets_ema.ckpt", weights_only=True)
    sd["fan"] = {"conv1.conv.weight": torch.zeros(64, 6, 7, 7)}
    (tmp_path / "ckpts").mkdir()
    torch.save(sd, tmp_path / "ckpts" / "000005_nets_ema.ckpt")
    torch.save(sd, tmp_path / "ckpts" / "000002_nets_ema.ckpt")
    run = do_import("stargan_v2", tmp_path / "ckpts", tmp_path / "run")
    record = json.loads((run / "import.json").read_text())
    assert record["official_iteration"] == 5
    assert any("'fan'" in note for note in record["notes"])
    assert "model.fan=null" in record["overrides"]


def test_bad_files_are_one_line(tmp_path):
    sd = torch.load(FIX / "w_hpf0" / "000001_nets_ema.ckpt", weights_only=True)
    del sd["mapping_network"]
    torch.save(sd, tmp_path / "000001_nets_ema.ckpt")
    assert "mapping_network" in import_error("stargan_v2", tmp_path / "000001_nets_ema.ckpt", tmp_path)
    assert "nets=" in import_error("stargan_v2", FIX / "w_hpf0", tmp_path, nets="both")
