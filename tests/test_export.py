"""``imtrans.export``: TorchScript (and ONNX where the packages are installed) match PyTorch."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from imtrans import inference as inf
from imtrans.export import ONNX_MISSING, export, onnx_available
from tests.trained import trained_run


@pytest.fixture(scope="session")
def cyclegan_run(tmp_path_factory):
    return trained_run("cyclegan", tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="session")
def bicyclegan_run(tmp_path_factory):
    return trained_run("bicyclegan", tmp_path_factory.mktemp("runs"))


def _load(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.load(str(path))


def test_torchscript_cyclegan_matches_pytorch(cyclegan_run, tmp_path, capsys):
    info = export(cyclegan_run, out=tmp_path, formats="torchscript", atol=1e-5)
    printed = capsys.readouterr().out
    assert [f["file"] for f in info["files"]] == ["generator_a2b.pt", "generator_b2a.pt"]
    for entry in info["files"]:
        assert entry["ok"] and entry["ran"] and entry["max_abs_diff"] <= 1e-5
        assert (
            f"{entry['file']}: max |exported - pytorch| = " in printed and "(tolerance 1e-05) ok" in printed
        )
    assert json.loads((tmp_path / "export.json").read_text())["files"][0]["modules"] == ["G_A"]

    model, _ = inf.load_for_inference(cyclegan_run)
    scripted = _load(tmp_path / "generator_a2b.pt")
    # only G_A is shipped, not G_B or the discriminators
    assert sum(p.numel() for p in scripted.parameters()) == sum(p.numel() for p in model.G_A.parameters())
    x = torch.rand(3, 3, 40, 24) * 2 - 1  # another batch and size than the traced one
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), model.translate(x, "a2b"), atol=1e-5, rtol=0)
    print(
        f"torchscript CycleGAN: max |diff| {(scripted(x) - model.translate(x, 'a2b')).abs().max():.2e} (tol 1e-5)"
    )


def test_torchscript_multimodal_takes_the_style_code(bicyclegan_run, tmp_path):
    info = export(bicyclegan_run, out=tmp_path, formats="torchscript")
    entry, guided = info["files"]  # random styles, and the reference-guided file
    assert entry["ok"] and entry["inputs"]["style"] == ["N", 8] and entry["modules"] == ["G"]
    assert guided["ok"] and guided["file"] == "generator_a2b_reference.pt" and guided["modules"] == ["G", "E"]
    assert guided["inputs"]["reference"] == ["N", 3, 64, 64]
    model, _ = inf.load_for_inference(bicyclegan_run)
    scripted = _load(tmp_path / "generator_a2b.pt")
    x = torch.rand(2, 3, 64, 128) * 2 - 1
    z = torch.randn(2, 8)
    with torch.no_grad():
        got = scripted(x, z)
    want = model.translate(x, style=z)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    print(f"torchscript BicycleGAN: max |diff| {(got - want).abs().max():.2e} (tol 1e-5)")
    assert not torch.allclose(scripted(x, torch.randn(2, 8)), got)  # the code is an input, not baked in


def test_ema_generator_is_exported(cyclegan_run, tmp_path):
    ckpt = torch.load(cyclegan_run / "checkpoints" / "last.ckpt", weights_only=False)
    sd = ckpt["state_dict"]
    # the EMA layout of GeneratorEMA: a copy of every generator module (halved weights here)
    sd.update({f"ema.{k}": v * 0.5 for k, v in list(sd.items()) if k.startswith(("G_A.", "G_B."))})
    torch.save(ckpt, tmp_path / "ema.ckpt")
    info = export(tmp_path / "ema.ckpt", out=tmp_path / "export", direction="a2b", formats="torchscript")
    assert info["ema"] and info["files"][0]["ok"]
    scripted = _load(tmp_path / "export" / "generator_a2b.pt")
    ema = {k[len("ema.G_A.") :]: v for k, v in sd.items() if k.startswith("ema.G_A.")}
    assert all(torch.equal(v, ema[k]) for k, v in scripted.generators.G_A.state_dict().items())


def test_onnx_export_or_clear_notice(cyclegan_run, bicyclegan_run, tmp_path):
    lines = []
    info = export(bicyclegan_run, out=tmp_path, log=lines.append)
    if not onnx_available():
        assert any(ONNX_MISSING in line for line in lines)
        assert [f["format"] for f in info["files"]] == ["torchscript", "torchscript"]  # random and reference
        assert not list(tmp_path.glob("*.onnx"))
        pytest.skip("onnx is not installed: ONNX export is the optional extra imtrans[onnx]")
    onnx_entries = [f for f in info["files"] if f["format"] == "onnx"]
    assert len(onnx_entries) == 2 and all(e["ok"] for e in onnx_entries)
    print("\n".join(lines))
    info = export(cyclegan_run, out=tmp_path / "cyclegan", formats="onnx", log=lines.append)
    assert [f["file"] for f in info["files"]] == ["generator_a2b.onnx", "generator_b2a.onnx"]
    assert all(f["ok"] for f in info["files"])


def test_usage_errors(cyclegan_run, bicyclegan_run, tmp_path):
    with pytest.raises(inf.UsageError, match="formats=tflite"):
        export(cyclegan_run, out=tmp_path, formats="tflite")
    with pytest.raises(inf.UsageError, match="BicycleGAN translates a2b"):
        export(bicyclegan_run, out=tmp_path, direction="b2a")
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        export(tmp_path / "missing")
