"""Shared pieces of the speed benchmarks: config composition, an iteration clock, rates.

Each ``bench_<method>.py`` times the same update through imtrans (``imtrans.run.train``
with a Lightning trainer and ``iters``) and through a bare PyTorch loop over the same
modules, built from the same config; the ratio is the framework overhead.
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig

import imtrans  # noqa: F401  (resolvers)
from imtrans.losses import weighted_sum
from imtrans.run import train


def run_config(overrides: list[str], out_dir: Path):
    """The config of ``python -m imtrans.run <overrides>`` writing to ``out_dir``."""
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="imtrans.conf", version_base="1.3"):
        cfg = compose(
            config_name="config",
            overrides=[*overrides, f"paths.output_dir={out_dir}"],
            return_hydra_config=True,
        )
    HydraConfig.instance().set_config(cfg)
    return cfg


def bench_config(overrides: list[str], iters: int, out_dir: Path, device: str = "cpu"):
    """A run config for timing: no logger, no callbacks, no validation, ``iters`` iterations."""
    return run_config(
        [
            *overrides,
            "data.num_workers=0",
            f"trainer={'gpu' if device == 'cuda' else 'cpu'}",
            "logger=none",
            "callbacks=none",
            f"iters={iters}",
            "task=fit",
            "trainer.enable_model_summary=false",
            "+trainer.enable_progress_bar=false",
            "trainer.limit_val_batches=0",
        ],
        out_dir,
    )


class Clock(L.Callback):
    """Timestamps the end of every training iteration."""

    def __init__(self):
        self.times: list[float] = []

    def on_train_batch_end(self, trainer, module, *_):
        if module.device.type == "cuda":
            torch.cuda.synchronize()
        self.times.append(time.perf_counter())


def rates(times: list[float], warmup: int) -> tuple[float, float]:
    """(median, best) iterations per second over the per-iteration times after ``warmup``.

    On a shared machine other jobs slow some iterations down by several times; the best
    (fastest) iteration is the least disturbed estimate, the median the typical one.
    """
    per_iter = sorted(b - a for a, b in zip(times[warmup:], times[warmup + 1 :]))
    return 1 / per_iter[len(per_iter) // 2], 1 / per_iter[0]


def run_imtrans(cfg, warmup: int) -> tuple[float, float]:
    clock = Clock()
    train(cfg, extra_callbacks=[clock])
    return rates(clock.times, warmup)


def bare_step(opts, frozen, weights, terms_fn, *args) -> None:
    """One update of the bare loops: freeze ``frozen``, build the weighted loss of
    ``terms_fn(*args)``, zero, backward, step every optimizer in ``opts``, unfreeze."""
    for p in frozen:
        p.requires_grad_(False)
    loss = weighted_sum(terms_fn(*args), weights)
    for o in opts:
        o.zero_grad(set_to_none=True)
    loss.backward()
    for o in opts:
        o.step()
    for p in frozen:
        p.requires_grad_(True)


def environment(threads: int, device: str) -> str:
    return (
        f"{device}, {threads} threads; torch {torch.__version__}, lightning {L.__version__}, "
        f"{platform.processor() or platform.machine()}"
    )


#: the vector extensions that decide which CPU kernels run (oneDNN's and ATen's dispatch)
VECTOR_FLAGS = (
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_bf16",
)


def cpu_description() -> str:
    """``lscpu``'s model name, CPU count and the vector extensions among its flags (``VECTOR_FLAGS``);
    ``/proc/cpuinfo`` where ``lscpu`` is missing."""
    fields: dict[str, str] = {}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        fields = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines())}
    except (OSError, subprocess.CalledProcessError):
        cpuinfo = Path("/proc/cpuinfo")
        if cpuinfo.exists():
            for line in cpuinfo.read_text().splitlines():
                k, _, v = line.partition(":")
                key = {"model name": "Model name", "flags": "Flags"}.get(k.strip())
                if key and key not in fields:
                    fields[key] = v.strip()
    flags = set(fields.get("Flags", "").split())
    model = fields.get("Model name", platform.processor() or platform.machine())
    cpus = fields.get("CPU(s)", str(os.cpu_count()))
    vector = " ".join(f for f in VECTOR_FLAGS if f in flags) or "none of " + " ".join(VECTOR_FLAGS)
    return f"{model}, {cpus} CPUs; vector extensions (lscpu): {vector}"


def write_report(path: Path, lines: list[str]) -> None:
    """Write the Markdown report (a trailing newline added) and print it."""
    text = "\n".join(lines).rstrip("\n") + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(text, end="")
