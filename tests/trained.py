"""Tiny checkpoints trained for a few iterations, shared by the translate and export tests.

``trained_run(model, root)`` trains once per pytest session (cached by model name) and returns
the run directory. CycleGAN: shapes at 32 px; BicycleGAN (multimodal): shapes_paired at 64 px,
batch 2 (as tests/methods/test_bicyclegan.py).
"""

from __future__ import annotations

from pathlib import Path

from imtrans.run import train
from tests.helpers import compose_config, tiny_run_overrides

DATA = {"cyclegan": "shapes", "pix2pix": "shapes_paired", "bicyclegan": "shapes_paired"}
_RUNS: dict[str, Path] = {}


def trained_run(model: str, root: Path, iters: int = 2) -> Path:
    if model not in _RUNS:
        out = Path(root) / model
        extra = ["task=fit", "callbacks.sample_grid=null"]
        if model == "bicyclegan":
            extra.append("data.batch_size=2")
        train(
            compose_config(tiny_run_overrides(model, DATA[model], iters=iters, extra=extra), output_dir=out)
        )
        _RUNS[model] = out
    return _RUNS[model]
