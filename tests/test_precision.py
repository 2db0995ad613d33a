"""bf16 mixed precision on the CPU for every method: a few iterations, finite weights."""

from __future__ import annotations

import json

import pytest
import torch

from imtrans.load import load_model
from imtrans.run import train
from tests.helpers import compose_config, tiny_run_overrides

METHODS = [
    ("cyclegan", "shapes"),
    ("pix2pix", "shapes_paired"),
    ("bicyclegan", "shapes_paired"),
    ("munit", "shapes"),
    ("unit", "shapes"),
]


@pytest.mark.parametrize(("model", "data"), METHODS)
def test_bf16_mixed_run(model, data, tmp_path):
    extra = ["trainer.precision=bf16-mixed", "callbacks.sample_grid=null", "metrics=none"]
    if model == "bicyclegan":
        extra.append("data.batch_size=2")
    cfg = compose_config(tiny_run_overrides(model, data, iters=3, extra=extra), output_dir=tmp_path)
    train(cfg)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["iteration"] == 3
    assert all(isinstance(v, float) for k, v in metrics.items() if k.startswith("test/"))
    restored = load_model(tmp_path)
    # parameters stay float32 (autocast only changes the compute), and finite
    for name, p in restored.named_parameters():
        assert p.dtype == torch.float32 and torch.isfinite(p).all(), name
