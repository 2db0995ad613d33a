"""``python -m imtrans.evaluate``: folders of images (FID/KID), sample folders (LPIPS diversity), checkpoints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from imtrans import evaluate as E
from tests.metrics.conftest import metric_weights, without_group_metrics  # noqa: F401  (session fixture)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _metrics_env(monkeypatch, metric_weights):  # noqa: F811
    monkeypatch.setenv("IMTRANS_METRICS_DOWNLOAD", "0")
    monkeypatch.setenv("TORCH_HOME", str(metric_weights["inception"].parents[2]))


def _pngs(folder: Path, n: int, seed: int, size: int = 32, names=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    for i in range(n):
        image = (torch.rand(size, size, 3, generator=g) * 255).to(torch.uint8).numpy()
        Image.fromarray(image).save(folder / (names[i] if names else f"{i:03d}.png"))
    return folder


def test_folders_cli_exits_0_and_writes_json(tmp_path, metric_weights):  # noqa: F811
    fake, real = _pngs(tmp_path / "fake", 5, 0), _pngs(tmp_path / "real", 6, 1)
    out = tmp_path / "eval.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    res = subprocess.run(
        [sys.executable, "-m", "imtrans.evaluate", f"fake={fake}", f"real={real}", f"out={out}", "metrics.protocol=cut",
         "+metrics.overrides.image_size=null"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["mode"] == "folders" and result["protocol"]["name"] == "cut"
    assert result["protocol"]["overrides"] == {"image_size": None}
    assert result["scores"]["n_fake"] == 5 and result["scores"]["n_reference"] == 6
    assert "fid" in res.stdout and "kid" in res.stdout


def test_folders_equal_torch_fidelity(tmp_path, metric_weights):  # noqa: F811
    import torch_fidelity

    fake, real = _pngs(tmp_path / "fake", 4, 2), _pngs(tmp_path / "real", 4, 3)
    result = E.main([f"fake={fake}", f"real={real}", f"out={tmp_path / 'e.json'}", "device=cpu"])
    ref = torch_fidelity.calculate_metrics(
        input1=str(fake), input2=str(real), fid=True, kid=True, kid_subset_size=4, cuda=False,
        save_cpu_ram=True, cache=False, verbose=False,
        feature_extractor_weights_path=str(metric_weights["inception"]),
    )  # fmt: skip
    assert result["scores"]["fid"] == pytest.approx(ref["frechet_inception_distance"], rel=1e-5)
    assert result["scores"]["kid"] == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-4, abs=1e-7)


def test_sample_folders_give_lpips_diversity(tmp_path, metric_weights):  # noqa: F811
    # layout 1: one folder per input; layout 2: flat <input>_<k>.png
    for i in range(2):
        _pngs(tmp_path / "nested" / f"in{i}", 3, 10 + i)
    _pngs(tmp_path / "flat", 6, 20, names=[f"x{i}_{k}.png" for i in range(2) for k in range(3)])
    for layout in ("nested", "flat"):
        result = E.main([f"samples={tmp_path / layout}", "metrics=quick", "+metrics.overrides.samples_per_input=3",
                         f"out={tmp_path / layout}.json"])  # fmt: skip
        assert result["scores"]["n_inputs"] == 2 and result["scores"]["lpips_div"] > 0
        assert result["protocol"]["pairs_per_input"] == 3


def test_checkpoint_mode(tmp_path, metric_weights):  # noqa: F811
    from imtrans.run import train
    from tests.helpers import compose_config, tiny_run_overrides

    extra = ["callbacks.sample_grid=null", "task=fit", "data.test_size=4", *without_group_metrics()]
    train(
        compose_config(
            tiny_run_overrides("pix2pix", "shapes_paired", iters=1, extra=extra), output_dir=tmp_path
        )
    )
    out = tmp_path / "eval.json"
    result = E.main([f"ckpt={tmp_path}", "+metrics.overrides.num_inputs=2", "+metrics.overrides.num_reference=2",
                     "metrics.fid=false", "metrics.kid=false", f"out={out}", "directions=a2b"])  # fmt: skip
    scores = json.loads(out.read_text())["scores"]
    assert {"a2b/psnr_8bit", "a2b/ssim", "a2b/lpips_gt", "a2b/content_iou", "a2b/n_inputs"} <= set(scores)
    assert result["split"] == "test" and scores["a2b/n_inputs"] == 2


def test_bad_arguments_exit_with_usage(tmp_path):
    with pytest.raises(SystemExit, match="exactly one of"):
        E.main([f"fake={tmp_path}"])
    with pytest.raises(SystemExit, match="key=value"):
        E.main(["oops"])
