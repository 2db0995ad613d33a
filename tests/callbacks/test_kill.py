"""kill -9 at any moment loses at most the work since the last checkpoint, never the
checkpoint: killed during an iteration, during the checkpoint write, during an evaluation and
during the final test, each time resumed with ``ckpt_path=auto``, the run ends with the same
weights as an uninterrupted one."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import torch

from tests.callbacks.test_resume import assert_same_state

REPO = Path(__file__).resolve().parents[2]
ITERS, EVERY = 8, 2
RUN = [
    "model=cyclegan", "data=shapes", "data.size=32", "data.val_size=4", "data.test_size=4", "data.num_fixed=2",
    "model.generator.ngf=4", "model.generator.n_blocks=1", "model.discriminator.ndf=4",
    "model.discriminator.n_layers=2", "trainer=cpu", "logger=none", "task=fit+test", f"iters={ITERS}",
    "callbacks.progress_bar=null", "trainer.enable_model_summary=false", "callbacks.sample_grid.every_n_iters=3",
    f"callbacks.last_checkpoint.every_n_iters={EVERY}", "metrics.every_n_iters=4", "+metrics.overrides.num_inputs=4",
    "seed=3",
]  # fmt: skip


def _launch(run_dir: Path, kill: dict | None, resume: bool = True) -> int:
    extra = [f"hydra.run.dir={run_dir}", *(["ckpt_path=auto"] if resume else [])]
    if kill:
        extra.append("+callbacks.kill._target_=tests.callbacks.killpoints.KillPoint")
        extra += [f"+callbacks.kill.{k}={v}" for k, v in kill.items()]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "imtrans.run", *RUN, *extra],
        capture_output=True,
        text=True,
        env=env,
        cwd=run_dir.parent,
    )
    if kill:
        assert proc.returncode == -signal.SIGKILL, (kill, proc.returncode, proc.stderr[-2000:])
    else:
        assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.returncode


def _iteration(run_dir: Path) -> int:
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    if not ckpt.exists():
        return 0
    # never a half file: whatever a kill interrupted, last.ckpt loads
    return int(torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]["_iteration"])


def test_kill_9_at_random_moments_resumes_to_the_same_weights(tmp_path):
    rng = random.Random(20261201)
    kills = [
        {"phase": "iteration", "at": rng.randint(2, 3)},
        {"phase": "checkpoint", "at": 4, "delay": round(rng.uniform(0.0, 0.05), 3)},
        {"phase": "validation", "at": 8, "delay": round(rng.uniform(0.0, 0.1), 3)},
        {"phase": "test", "delay": round(rng.uniform(0.0, 0.1), 3)},
    ]
    killed = tmp_path / "killed"
    killed.mkdir()
    done = 0
    for kill in kills:
        _launch(killed, kill)
        now = _iteration(killed)
        # at most the work since the last checkpoint is lost, and the checkpoint never goes back
        assert now >= done and now % EVERY == 0, (kill, now)
        if kill["phase"] in ("iteration", "validation"):
            at = kill["at"]
            assert at - EVERY <= now < at or (kill["phase"] == "validation" and now == at), (kill, now)
        done = now
    assert not (killed / "metrics.json").exists()  # the run never got to its end
    _launch(killed, None)  # the final resume completes the run
    whole = tmp_path / "whole"
    whole.mkdir()
    _launch(whole, None, resume=False)
    a = torch.load(whole / "checkpoints" / "last.ckpt", weights_only=False)
    b = torch.load(killed / "checkpoints" / "last.ckpt", weights_only=False)
    assert a["state_dict"]["_iteration"].item() == ITERS
    assert_same_state(a, b)
    scores_a = json.loads((whole / "metrics.json").read_text())
    scores_b = json.loads((killed / "metrics.json").read_text())
    assert {k: v for k, v in scores_a.items() if k.startswith("test/")} == {
        k: v for k, v in scores_b.items() if k.startswith("test/")
    }
