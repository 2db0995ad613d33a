"""An imported official checkpoint is an ordinary run folder: every tool takes it unchanged
(``imtrans translate``, ``imtrans evaluate`` under every protocol, ``imtrans export``)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from imtrans import evaluate as E
from imtrans.load import load_model
from tests.metrics.conftest import metric_weights  # noqa: F401  (session fixture)
from tests.official.helpers import cases, do_import, fixture, max_diff

PROTOCOLS = ["quick", "munit", "bicyclegan", "stargan_v2", "cut"]  # every named protocol


@pytest.fixture(scope="module")
def cyclegan_run(tmp_path_factory):
    return do_import("cyclegan", fixture("cyclegan"), tmp_path_factory.mktemp("tools") / "cg")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_evaluate_under_every_protocol(cyclegan_run, protocol, tmp_path, monkeypatch, metric_weights):  # noqa: F811
    # random-weight Inception/AlexNet files: the real code paths run, the values are no FIDs
    monkeypatch.setenv("IMTRANS_METRICS_DOWNLOAD", "0")
    monkeypatch.setenv("TORCH_HOME", str(metric_weights["inception"].parents[2]))
    out = tmp_path / "eval.json"
    result = E.main([f"ckpt={cyclegan_run}", f"metrics={protocol}", "data=shapes", "data.size=64",
                     "+metrics.overrides.num_inputs=2", "+metrics.overrides.num_reference=2",
                     "+metrics.overrides.samples_per_input=2", "+metrics.overrides.fid_samples_per_input=1",
                     f"out={out}"])  # fmt: skip
    scores = json.loads(out.read_text())["scores"]
    assert result["protocol"]["name"] == protocol
    for direction in ("a2b", "b2a"):
        assert np.isfinite(scores[f"{direction}/fid"]) and np.isfinite(scores[f"{direction}/kid"])


def test_translate_cli_writes_the_module_output(cyclegan_run, tmp_path):
    case = cases(fixture("cyclegan"))["a2b"]
    # a PNG holds uint8: feed the quantised image and compare with the module on the same
    image = ((case["input"][0] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    (tmp_path / "in").mkdir()
    Image.fromarray(image.permute(1, 2, 0).numpy()).save(tmp_path / "in" / "x.png")
    proc = subprocess.run(
        [sys.executable, "-m", "imtrans.translate", f"ckpt={cyclegan_run}", f"input={tmp_path / 'in'}",
         f"output={tmp_path / 'out'}", "direction=a2b"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    written = np.asarray(Image.open(tmp_path / "out" / "x_a2b.png")).astype(np.float32)
    expected = load_model(cyclegan_run).translate(image[None].float() / 127.5 - 1, "a2b")[0]
    expected = ((expected + 1) * 127.5).permute(1, 2, 0).numpy()
    assert np.abs(written - expected).max() <= 1.0  # rounding to uint8 only
    # and the module itself reproduces the official output on the float input
    assert max_diff(load_model(cyclegan_run).translate(case["input"], "a2b"), case["output"]) < 1e-5


def test_export_of_an_imported_munit_matches_the_official_output(tmp_path):
    """Round trip: official MUNIT files -> imtrans import -> imtrans export (TorchScript, image
    and style inputs) -> the official output of the random-style case, to 1e-4."""
    run = do_import("munit", fixture("munit"), tmp_path / "munit")
    proc = subprocess.run(
        [sys.executable, "-m", "imtrans.export", f"ckpt={run}", f"out={tmp_path / 'x'}", "direction=all",
         "formats=torchscript"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    for name in ("a2b_random", "b2a_random"):
        case = cases(fixture("munit"))[name]
        scripted = torch.jit.load(str(tmp_path / "x" / f"generator_{case['direction']}.pt"))
        style = case["style"].reshape(case["style"].shape[0], -1)
        assert max_diff(scripted(case["input"], style), case["output"]) < 1e-4, name


def test_init_from_another_architecture_is_one_config_error(cyclegan_run, tmp_path):
    from imtrans.errors import ConfigError
    from imtrans.run import _user_error
    from tests.official.helpers import finetune

    with pytest.raises(Exception) as info:  # noqa: B017  (Lightning wraps errors raised in setup)
        finetune(cyclegan_run, ["data=shapes", "data.size=64", "model.generator.ngf=8"], tmp_path / "ft")
    label, err = _user_error(info.value)
    assert label == "config error" and isinstance(err, ConfigError)
    assert str(err).startswith(
        f"model.init_from={cyclegan_run}: 'G_A.model.0.1.weight' has shape (4, 3, 7, 7)"
    )
