"""Nothing is lost when a run goes wrong: NaN losses, Ctrl-C, a kill during a checkpoint write."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import lightning as L
import pytest
import torch

from imtrans.callbacks.checkpoint import save_checkpoint_atomic
from imtrans.errors import OutputError
from imtrans.load import load_model
from imtrans.methods.base import NonFiniteLossError
from imtrans.run import train
from tests.helpers import compose_config, run_process, tiny_run_overrides, wait_for_file

REPO = Path(__file__).resolve().parents[2]


def _cfg(tmp_path, iters, extra=()):
    extra = ["callbacks.last_checkpoint.every_n_iters=2", "callbacks.sample_grid=null", *extra]
    return compose_config(
        tiny_run_overrides("cyclegan", "shapes", iters=iters, extra=extra), output_dir=tmp_path
    )


class PoisonAt(L.Callback):
    """From iteration ``at`` on, the cycle_A term of CycleGAN's G loss is NaN."""

    def __init__(self, at: int):
        self.at = at

    def on_train_start(self, trainer, module):
        original = module.generator_terms

        def poisoned(*args):
            terms, fakes = original(*args)
            if module.iteration >= self.at:
                terms["cycle_A"] = terms["cycle_A"] * float("nan")
            return terms, fakes

        module.generator_terms = poisoned


def test_nan_loss_stops_with_the_term_and_iteration(tmp_path):
    with pytest.raises(NonFiniteLossError, match=r"loss term 'cycle_A' is nan at iteration 3"):
        train(_cfg(tmp_path, iters=6), extra_callbacks=[PoisonAt(3)])
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["state_dict"]["_iteration"].item() == 2  # the last good one
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())


def test_nan_from_the_command_line_is_one_line(tmp_path):
    # A learning rate of 1e30 blows the weights up within a couple of iterations.
    args = [
        *tiny_run_overrides("cyclegan", "shapes", iters=20),
        "model.optimizer.lr=1e30",
        "callbacks.last_checkpoint.every_n_iters=1",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    res = subprocess.run(
        [sys.executable, "-m", "imtrans.run", *args, f"hydra.run.dir={tmp_path}/run"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 3, res.stderr[-2000:]
    lines = [line for line in res.stderr.splitlines() if line.startswith("imtrans: training stopped:")]
    assert len(lines) == 1 and "at iteration" in lines[0] and "last good checkpoint" in lines[0], res.stderr[
        -2000:
    ]
    assert "Traceback" not in res.stderr
    assert load_model(tmp_path / "run").iteration >= 1


class CtrlCAt(L.Callback):
    def __init__(self, at: int):
        self.at = at

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if module.iteration + 1 == self.at:  # the iteration about to run
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_finishes_the_iteration_saves_and_stops(tmp_path, capsys):
    before = signal.getsignal(signal.SIGINT)
    train(_cfg(tmp_path, iters=50), extra_callbacks=[CtrlCAt(3)])
    assert signal.getsignal(signal.SIGINT) is before  # handler restored
    assert load_model(tmp_path).iteration == 3
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["iteration"] == 3 and not any(k.startswith("test/") for k in metrics)
    assert "resume with ckpt_path=" in capsys.readouterr().out


def test_kill_during_checkpoint_write_keeps_the_previous_file(tmp_path):
    train(_cfg(tmp_path, iters=2))
    last = tmp_path / "checkpoints" / "last.ckpt"
    good = last.read_bytes()

    class DyingTrainer:
        """A trainer whose process dies half-way through writing the checkpoint."""

        is_global_zero = True

        def save_checkpoint(self, path, weights_only=False):
            Path(path).write_bytes(good[: len(good) // 2])
            raise SystemExit("killed")

    with pytest.raises(SystemExit):
        save_checkpoint_atomic(DyingTrainer(), last)
    assert last.read_bytes() == good
    assert load_model(last).iteration == 2


@pytest.mark.slow
def test_ctrl_c_in_a_two_process_ddp_run(tmp_path):
    """A terminal's Ctrl-C (SIGINT to the whole process group) under trainer=ddp_cpu: the
    launching process waits, both workers finish the iteration, last.ckpt is written, the run
    exits 0 without testing and says how to resume."""
    args = [
        *tiny_run_overrides("cyclegan", "shapes", iters=100000),
        "trainer=ddp_cpu",
        "callbacks.last_checkpoint.every_n_iters=5",
        "callbacks.sample_grid=null",
        f"hydra.run.dir={tmp_path}/run",
    ]
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    with run_process(args, tmp_path) as proc:  # its own process group, as a terminal job has
        wait_for_file(last, proc)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err
    assert "resume with ckpt_path=" in out
    stopped = torch.load(last, weights_only=False)["state_dict"]["_iteration"].item()
    assert 5 <= stopped < 100000
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["iteration"] == stopped and not any(k.startswith("test/") for k in metrics)

    # the Ctrl-C checkpoint resumes exactly under DDP too: resumed to `stopped + 3` iterations,
    # the run ends where an uninterrupted 2-process run of that length ends
    end = stopped + 3
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}

    def run(folder, *extra):
        overrides = [a for a in args if not a.startswith(("iters=", "hydra.run.dir="))]
        done = subprocess.run(
            [sys.executable, "-m", "imtrans.run", *overrides, f"iters={end}", f"hydra.run.dir={folder}", *extra],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        return torch.load(folder / "checkpoints" / "last.ckpt", weights_only=False)

    from tests.callbacks.test_resume import assert_same_state

    resumed = run(tmp_path / "run", "ckpt_path=auto")
    assert resumed["state_dict"]["_iteration"].item() == end
    assert_same_state(run(tmp_path / "whole"), resumed)


def _children(pid: int) -> list[int]:
    """Child process ids of ``pid`` (Linux /proc), in creation order."""
    kids = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        kids += [int(c) for c in (task / "children").read_text().split()]
    return sorted(kids)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds the DDP workers through /proc")
def test_a_dead_ddp_rank_stops_the_job_naming_it(tmp_path):
    """kill -9 of one worker of a trainer=ddp_cpu run: the job stops within 60 s with one line
    naming the dead rank (not a hang, not a traceback), and the last checkpoint loads."""
    args = [
        *tiny_run_overrides("cyclegan", "shapes", iters=100000),
        "trainer=ddp_cpu",
        "callbacks.last_checkpoint.every_n_iters=5",
        "callbacks.sample_grid=null",
        "metrics=none",
        f"hydra.run.dir={tmp_path}/run",
    ]
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    with run_process(args, tmp_path) as proc:
        wait_for_file(last, proc)
        workers = _children(proc.pid)
        assert len(workers) >= 2, workers
        os.kill(workers[1], signal.SIGKILL)  # the second worker started: rank 1
        killed_at = time.monotonic()
        out, err = proc.communicate(timeout=60)
        assert time.monotonic() - killed_at < 60
    assert proc.returncode == 4, err[-3000:]
    # one line, the last of the output: the launching process reports no traceback (a surviving
    # worker may print its own failed collective before the launcher stops it)
    lines = [line for line in err.strip().splitlines() if line.startswith("imtrans:")]
    assert len(lines) == 1 and err.strip().splitlines()[-1] == lines[0], err[-3000:]
    assert "HYDRA_FULL_ERROR" not in err
    assert lines[0].startswith(
        (f"imtrans: training stopped: DDP rank 1 (pid {workers[1]}) died (signal SIGKILL)",
         "imtrans: training stopped: DDP rank 0 lost the connection to another rank")
    ), lines[0]  # fmt: skip
    assert f"the last checkpoint is {last}" in lines[0]
    assert load_model(last).iteration >= 5


def test_unwritable_output_folder_is_one_line_before_training(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    proc = subprocess.run(
        [sys.executable, "-m", "imtrans.run", *tiny_run_overrides("cyclegan", "shapes", iters=2),
         f"hydra.run.dir={blocker}/run"],
        cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"imtrans: output error: {blocker}/run: the run's output folder cannot be written (Not a directory); "
        "choose a writable one (hydra.run.dir=...) or fix its permissions"
    )
    # the same check guards programmatic runs (paths.output_dir)
    with pytest.raises(OutputError, match="cannot be written"):
        train(_cfg(blocker / "run", iters=2))


def test_disk_full_during_a_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    """ENOSPC in the middle of writing last.ckpt: the previous checkpoint stays, no half file is
    left, and the run stops with one line saying so."""
    import errno

    from lightning.fabric.plugins.io import torch_io

    from imtrans.run import _user_error

    real_save, calls = torch_io._atomic_save, []

    def full_disk(checkpoint, path):
        calls.append(path)
        if len(calls) < 2:
            return real_save(checkpoint, path)
        Path(path).write_bytes(b"\x80half a checkpoint")  # the bytes that fitted
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch_io, "_atomic_save", full_disk)
    cfg = _cfg(tmp_path, iters=6)  # checkpoints at 2 (written), 4 (the disk is full)
    with pytest.raises(Exception) as info:  # noqa: B017  (Lightning re-raises from its loop)
        train(cfg)
    label, err = _user_error(info.value)
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert label == "output error" and str(err) == (
        f"{last}: writing the checkpoint failed (No space left on device); {last} still holds the previous checkpoint"
    )
    assert load_model(last).iteration == 2
    assert sorted(p.name for p in last.parent.iterdir()) == ["last.ckpt"]


# ---------------------------------------------------------------------- every stop resumes exactly
def _resume_matches(tmp_path, first_callbacks, stopped_at, expect_error=None):
    """Run 1 stops (a callback of ``first_callbacks``), run 2 resumes its last.ckpt to 6
    iterations; both end equal to one uninterrupted run of 6."""
    from tests.callbacks.test_resume import RecordLosses, assert_same_losses, assert_same_state

    whole, losses_whole = tmp_path / "whole", RecordLosses()
    train(_cfg(whole, iters=6), extra_callbacks=[losses_whole])
    first = tmp_path / "first"
    if expect_error:
        with pytest.raises(expect_error):
            train(_cfg(first, iters=6), extra_callbacks=first_callbacks)
    else:
        train(_cfg(first, iters=6), extra_callbacks=first_callbacks)
    assert load_model(first).iteration == stopped_at
    resumed, losses_resumed = tmp_path / "resumed", RecordLosses()
    train(
        _cfg(resumed, iters=6, extra=[f"ckpt_path={first}/checkpoints/last.ckpt"]),
        extra_callbacks=[losses_resumed],
    )
    assert sorted(losses_resumed.losses) == list(range(stopped_at + 1, 7))
    assert_same_losses(losses_resumed.losses, losses_whole.losses)
    load = partial(torch.load, weights_only=False)
    assert_same_state(load(whole / "checkpoints" / "last.ckpt"), load(resumed / "checkpoints" / "last.ckpt"))


def test_the_ctrl_c_checkpoint_resumes_exactly(tmp_path):
    _resume_matches(tmp_path, [CtrlCAt(3)], stopped_at=3)


def test_the_last_good_checkpoint_of_a_nan_stop_resumes_exactly(tmp_path):
    _resume_matches(tmp_path, [PoisonAt(5)], stopped_at=4, expect_error=NonFiniteLossError)
