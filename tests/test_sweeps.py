"""Sweeps and multi-node: --multirun gives each run its own folder; torchrun with two
"nodes" on the loopback address keeps parameters identical on both ranks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch

from tests.helpers import tiny_run_overrides

REPO = Path(__file__).resolve().parents[1]


def _env(**changes):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), **changes}
    return {k: v for k, v in env.items() if v is not None}


def _tiny(model="cyclegan", data="shapes", iters=2):
    over = tiny_run_overrides(model, data, iters=iters, extra=["metrics=none", "callbacks.sample_grid=null"])
    return [o for o in over if not o.startswith(("model=", "data=", "trainer="))]


@pytest.mark.slow
@pytest.mark.parametrize("trainer", ["cpu", "ddp_cpu"])
def test_multirun_2x2_each_run_has_its_own_folder(trainer, tmp_path):
    sweep = tmp_path / "sweep"
    args = ["--multirun", "model=cyclegan", "data=shapes", f"trainer={trainer}", "seed=0,1",
            "model.pool_size=2,4", *[o for o in _tiny() if "pool_size" not in o], f"hydra.sweep.dir={sweep}"]  # fmt: skip
    res = subprocess.run(
        [sys.executable, "-m", "imtrans.run", *args],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    runs = sorted(p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit())
    assert [p.name for p in runs] == ["0", "1", "2", "3"]
    seen = set()
    for run in runs:
        assert (run / "checkpoints" / "last.ckpt").is_file() and json.loads(
            (run / "metrics.json").read_text()
        )["iteration"] == 2
        cfg = (run / "config.yaml").read_text()
        seen.add((next(line for line in cfg.splitlines() if line.startswith("seed:")), "pool_size: 2" in cfg))
    assert len(seen) == 4  # the four combinations, one per folder


@pytest.mark.slow
def test_optuna_sweep_optimises_the_returned_metric(tmp_path):
    sweep = tmp_path / "sweep"
    args = ["--multirun", "model=cyclegan", "data=shapes", "trainer=cpu", "hydra/sweeper=tune", "hydra.sweeper.n_trials=2",
            "optimized_metric=test/a2b/cycle_l1", "model.optimizer.lr=interval(1e-4,1e-3)", *_tiny(),
            f"hydra.sweep.dir={sweep}"]  # fmt: skip
    res = subprocess.run(
        [sys.executable, "-m", "imtrans.run", *args],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    best = (sweep / "optimization_results.yaml").read_text()
    assert "best_value" in best and "model.optimizer.lr" in best


class SaveRankParams(L.Callback):
    """Writes each rank's parameters to ``<out>/rank<r>.pt`` at the end of training."""

    def __init__(self, out: str):
        self.out = Path(out)

    def on_train_end(self, trainer, module):
        state = {k: v.detach().cpu() for k, v in module.named_parameters()}
        torch.save(
            {"world_size": trainer.world_size, "params": state}, self.out / f"rank{trainer.global_rank}.pt"
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_torchrun_two_nodes_on_loopback(tmp_path):
    port = _free_port()
    run_dir = tmp_path / "run"
    overrides = [
        "model=cyclegan", "data=shapes", "trainer=cpu", "trainer.num_nodes=2", "trainer.devices=1",
        "trainer.strategy=ddp_find_unused_parameters_true", *_tiny(iters=3), f"hydra.run.dir={run_dir}",
        "+callbacks.dump._target_=tests.test_sweeps.SaveRankParams", f"+callbacks.dump.out={tmp_path}",
    ]  # fmt: skip
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nnodes",
                "2",
                "--nproc-per-node",
                "1",
                "--node-rank",
                str(rank),
                "--master-addr",
                "127.0.0.1",
                "--master-port",
                str(port),
                "-m",
                "imtrans.run",
                *overrides,
            ],
            cwd=tmp_path,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for rank in (0, 1)
    ]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs[0][-2000:] + outs[1][-2000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert r0["world_size"] == r1["world_size"] == 2
    assert r0["params"].keys() == r1["params"].keys()
    assert all(torch.equal(r0["params"][k], r1["params"][k]) for k in r0["params"])
    assert json.loads((run_dir / "metrics.json").read_text())["iteration"] == 3
