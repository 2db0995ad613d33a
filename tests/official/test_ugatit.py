"""U-GAT-IT official checkpoints (znxlwm/UGATIT-pytorch), light and full: translations, CAM
logits and heatmaps equal to the official ones; the options read from the shapes."""

from __future__ import annotations

import json

import pytest
import torch

from imtrans.load import load_model
from tests.official.helpers import ATOL, cases, do_import, fixture, max_diff, translate_case

FIX = fixture("ugatit")


@pytest.mark.parametrize("variant", ["light", "full"])
def test_import_matches_the_official_outputs(tmp_path, variant):
    folder = FIX / variant
    run = do_import("ugatit", folder, tmp_path / "run")
    module = load_model(run)
    record = json.loads((run / "import.json").read_text())
    assert record["networks_fresh"] == [] and record["dropped_keys"] == []
    assert sorted(record["networks_imported"]) == sorted(
        ["genA2B", "genB2A", "disGA", "disGB", "disLA", "disLB"]
    )
    opts = record["official_options"]
    assert (opts["ch"], opts["n_res"], opts["light"]) == (2, 4, variant == "light")
    assert (opts["global_n_layers"], opts["local_n_layers"]) == (7, 5)
    for name, case in cases(folder).items():
        assert max_diff(translate_case(module, case), case["output"]) < ATOL, name
        gen = module.genA2B if case["direction"] == "a2b" else module.genB2A
        with torch.no_grad():
            _, cam_logit, heatmap = gen.eval()(case["input"])
        assert max_diff(cam_logit, case["cam_logit"]) < ATOL and max_diff(heatmap, case["heatmap"]) < ATOL
