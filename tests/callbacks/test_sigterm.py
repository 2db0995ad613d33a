"""SIGTERM is handled as Ctrl-C, and either one during the test keeps what was computed: the
current iteration (or block of the evaluation) finishes, last.ckpt is kept, metrics.json holds
the scores computed before the signal and names it, and the exit code is the README's (0 after
Ctrl-C, 143 after SIGTERM)."""

from __future__ import annotations

import functools
import json
import os
import signal
from pathlib import Path

import lightning as L
import pytest
import torch

from imtrans.callbacks import Evaluation
from imtrans.load import load_model
from imtrans.run import train
from tests.helpers import compose_config, run_process, tiny_run_overrides, wait_for_file

REPO = Path(__file__).resolve().parents[2]


def _cfg(tmp_path, iters, extra=()):
    extra = [
        "callbacks.last_checkpoint.every_n_iters=2", "callbacks.sample_grid=null", "metrics=none",
        "data.val_size=8", "data.test_size=8", *extra,
    ]  # fmt: skip
    return compose_config(
        tiny_run_overrides("cyclegan", "shapes", iters=iters, extra=extra), output_dir=tmp_path
    )


def _evaluation(every_n_iters=0):
    """The protocol scores of the shapes data (no weight file in the tests' TORCH_HOME): 8
    inputs per direction in 2 blocks of 4."""
    return Evaluation(
        protocol="quick", overrides={"num_inputs": 8}, every_n_iters=every_n_iters, batch_size=4
    )


class SignalDuringEvaluation(L.Callback):
    """Sends ``signum`` to this process from the Evaluation callback's first translation of
    ``direction`` at ``stage`` (its samplers pass ``num_samples``; the method's own test step
    does not), and counts that direction's evaluation translations."""

    def __init__(self, signum: int, direction: str, stage: str, group: bool = False):
        self.signum, self.direction, self.stage, self.group = signum, direction, stage, group
        self.translations = 0

    def _arm(self, module):
        translate = module.translate
        sends = module.trainer.is_global_zero  # rank 0 only, as one `kill` does

        @functools.wraps(translate)
        def wrapped(x, direction="a2b", **kwargs):
            if "num_samples" in kwargs and direction == self.direction:
                self.translations += 1
                if self.translations == 1 and sends:
                    if self.group:  # as `timeout` or SLURM signal the job: every process of it
                        os.killpg(os.getpgid(0), self.signum)
                    else:
                        os.kill(os.getpid(), self.signum)
            return translate(x, direction, **kwargs)

        module.translate = wrapped

    def on_train_start(self, trainer, module):
        if self.stage == "val":
            self._arm(module)

    def on_test_epoch_end(self, trainer, module):  # this callback comes before the Evaluation
        if self.stage == "test":
            self._arm(module)


@pytest.fixture
def sigterm_fallback():
    """A SIGTERM handler that records instead of ending pytest, should a signal escape the run."""
    caught = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: caught.append(signum))
    yield caught
    signal.signal(signal.SIGTERM, previous)


def _protocol_keys(metrics: dict, direction: str) -> list[str]:
    """The Evaluation's keys of a direction (the method's own test scores share the prefix)."""
    own = ("content_iou", "style_div_fg", "style_div_bg", "outline_iou", "n_inputs")
    return [k for k in metrics if k.startswith(f"test/{direction}/") and k.rsplit("/", 1)[-1] in own]


def test_ctrl_c_during_the_test_keeps_the_scores_computed_before(tmp_path, capsys):
    before = signal.getsignal(signal.SIGINT)
    sender = SignalDuringEvaluation(signal.SIGINT, "b2a", "test")
    train(_cfg(tmp_path, iters=2), extra_callbacks=[sender, _evaluation()])
    assert signal.getsignal(signal.SIGINT) is before
    assert sender.translations == 1  # b2a's first block finished, its second never started
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["stopped_by"] == "Ctrl-C" and metrics["iteration"] == 2
    assert metrics["test/a2b/n_inputs"] == 8 and 0 <= metrics["test/a2b/content_iou"] <= 1
    assert _protocol_keys(metrics, "b2a") == []  # never a score over part of the inputs
    assert load_model(tmp_path).iteration == 2
    assert "test stopped by Ctrl-C" in capsys.readouterr().out


def test_sigterm_during_the_test_writes_metrics_and_exits_143(tmp_path, sigterm_fallback, capsys):
    sender = SignalDuringEvaluation(signal.SIGTERM, "a2b", "test")
    with pytest.raises(SystemExit) as info:
        train(_cfg(tmp_path, iters=2), extra_callbacks=[sender, _evaluation()])
    assert info.value.code == 143
    assert sigterm_fallback == [] and signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    assert sender.translations == 1
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["stopped_by"] == "SIGTERM" and metrics["iteration"] == 2
    assert _protocol_keys(metrics, "a2b") == [] and _protocol_keys(metrics, "b2a") == []
    assert "metrics_protocol" in metrics and load_model(tmp_path).iteration == 2
    assert "test stopped by SIGTERM" in capsys.readouterr().out


def test_a_stop_during_a_val_evaluation_ends_the_iteration_and_saves(tmp_path, capsys):
    """The evaluation of iteration 2 stops after its current block; last.ckpt of iteration 2 is
    written and the run stops there, without a test."""
    sender = SignalDuringEvaluation(signal.SIGINT, "a2b", "val")
    train(_cfg(tmp_path, iters=50), extra_callbacks=[sender, _evaluation(every_n_iters=2)])
    assert sender.translations == 1
    assert load_model(tmp_path).iteration == 2
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["iteration"] == 2 and metrics["stopped_by"] == "Ctrl-C"
    assert not [k for k in metrics if k.startswith("test/")]
    assert "val/a2b/content_iou" not in metrics and "val/a2b/n_inputs" not in metrics
    assert "resume with ckpt_path=" in capsys.readouterr().out


def test_sigterm_mid_training_exits_143_with_last_ckpt_and_metrics(tmp_path):
    """``kill <pid>`` (as ``timeout`` or a scheduler does) during training, from outside."""
    args = [
        *tiny_run_overrides("cyclegan", "shapes", iters=100000),
        "callbacks.last_checkpoint.every_n_iters=2",
        "callbacks.sample_grid=null",
        f"hydra.run.dir={tmp_path}/run",
    ]
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    with run_process(args, tmp_path) as proc:
        wait_for_file(last, proc)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-3000:]
    assert "Traceback" not in err
    assert "imtrans: SIGTERM: finishing this iteration and saving last.ckpt" in out
    assert "resume with ckpt_path=" in out
    stopped = torch.load(last, weights_only=False)["state_dict"]["_iteration"].item()
    assert 2 <= stopped < 100000
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["iteration"] == stopped and metrics["stopped_by"] == "SIGTERM"
    assert not [k for k in metrics if k.startswith("test/")]


@pytest.mark.slow
def test_sigterm_to_the_process_group_during_a_ddp_test(tmp_path):
    """trainer=ddp_cpu, SIGTERM to every process of the run (as ``timeout`` sends it) during the
    test's b2a evaluation: both ranks finish the block under way and stop together, the
    launching process writes metrics.json with the a2b scores, and the exit code is 143."""
    args = [
        *tiny_run_overrides("cyclegan", "shapes", iters=2),
        "trainer=ddp_cpu", "callbacks.sample_grid=null", "data.test_size=16", "metrics.every_n_iters=0",
        "+metrics.overrides.num_inputs=16", "metrics.batch_size=4",
        "+callbacks.term._target_=tests.callbacks.test_sigterm.SignalDuringEvaluation",
        "+callbacks.term.signum=15", "+callbacks.term.direction=b2a", "+callbacks.term.stage=test",
        "+callbacks.term.group=true", f"hydra.run.dir={tmp_path}/run",
    ]  # fmt: skip
    with run_process(args, tmp_path) as proc:
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 143, err[-3000:]
    assert "Traceback" not in err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["stopped_by"] == "SIGTERM" and metrics["iteration"] == 2
    assert metrics["test/a2b/n_inputs"] == 16 and _protocol_keys(metrics, "b2a") == []
