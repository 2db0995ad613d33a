"""A run stopped after iteration k and resumed from last.ckpt continues exactly as the
uninterrupted run: the same losses at every later iteration, the same final weights."""

from __future__ import annotations

import json
from functools import partial

import lightning as L
import pytest
import torch

from imtrans.run import train
from tests.helpers import FP16_CPU, METHODS, compose_config, method_overrides, tiny_run_overrides


class RecordLosses(L.Callback):
    def __init__(self):
        self.losses: dict[int, dict[str, float]] = {}

    def on_train_batch_end(self, trainer, module, *_):
        metrics = trainer.callback_metrics
        self.losses[module.iteration] = {k: float(v) for k, v in metrics.items() if k.startswith("train/")}


# Schedules that change the rate inside the run, so a scheduler one step off after the
# resume changes the losses: LinearDecay from the first epoch end (epoch interval), StepLR
# every 3 iterations (MUNIT's iteration interval).
SCHEDULES = {
    "cyclegan": ["model.scheduler.n_epochs=0", "model.scheduler.n_epochs_decay=4"],
    "pix2pix": ["model.scheduler.n_epochs=0", "model.scheduler.n_epochs_decay=4"],
    "munit": ["model.scheduler.step_size=3"],
    "cut": ["model.scheduler.n_epochs=0", "model.scheduler.n_epochs_decay=4"],
}


EMA = ["callbacks=ema", "callbacks.ema.start_iter=2", "callbacks.ema.decay=0.9"]
# ADA's p adjusted every 2 iterations by 0.02 (p and its statistics are in the state dict)
ADA = ["augment=ada", "augment.interval=2", "augment.speed=100", "augment.p_init=0.2"]


def _run(model, data, out, iters, ckpt=None, every=4, precision=()):
    extra = [
        *precision,
        *SCHEDULES.get(model, []),
        "task=fit",
        "metrics=none",
        "data.train_size=6",  # epochs of 6 iterations: the resumed run crosses an epoch end
        f"callbacks.last_checkpoint.every_n_iters={every}",
        "callbacks.sample_grid.every_n_iters=3",  # sampling in between must not shift anything
    ]
    if ckpt:
        extra.append(f"ckpt_path={ckpt}")
    record = RecordLosses()
    train(
        compose_config(tiny_run_overrides(model, data, iters=iters, extra=extra), output_dir=out),
        extra_callbacks=[record],
    )
    return record.losses, torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)


def assert_same_losses(resumed: dict, whole: dict) -> None:
    """The terms logged at each iteration after the resume equal the uninterrupted run's.
    (The uninterrupted run's ``callback_metrics`` may also hold a term last logged before the
    resume point, e.g. DRIT's content-only iterations: only the resumed run's terms count.)"""
    for it, terms in resumed.items():
        assert terms, it
        assert {k: whole[it].get(k) for k in terms} == terms, f"iteration {it}"


def assert_same_state(a: dict, b: dict) -> None:
    """Every state-dict tensor, optimizer state, learning rate and scheduler state equal."""
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    assert len(a["optimizer_states"]) == len(b["optimizer_states"])
    for opt_a, opt_b in zip(a["optimizer_states"], b["optimizer_states"]):
        assert opt_a["state"].keys() == opt_b["state"].keys()
        for sa, sb in zip(opt_a["state"].values(), opt_b["state"].values()):
            assert all(torch.equal(sa[k], sb[k]) for k in sa if torch.is_tensor(sa[k]))
        assert [g["lr"] for g in opt_a["param_groups"]] == [g["lr"] for g in opt_b["param_groups"]]
    assert a["lr_schedulers"] == b["lr_schedulers"]


@pytest.mark.parametrize(
    ("model", "data", "stop", "precision"),
    [
        ("cyclegan", "shapes", 4, ()),
        ("cyclegan", "shapes", 6, ()),  # at an epoch end: the epoch scheduler's step is pending
        ("pix2pix", "shapes_paired", 4, ()),
        ("munit", "shapes", 4, ()),  # iteration scheduler: the step for iteration 4 is pending
        ("munit", "shapes", 4, FP16_CPU),  # and the gradient scalers
        ("munit", "shapes", 4, EMA),  # and the generator EMA (compared in the state dict)
        ("cut", "shapes", 4, ["model.mode=fastcut"]),  # random flips and patch ids
        ("pix2pix", "shapes_paired", 5, ADA),  # mid-interval: ADA's statistics half gathered
    ],
    ids=[
        "cyclegan",
        "cyclegan-epoch-end",
        "pix2pix",
        "munit",
        "munit-fp16",
        "munit-ema",
        "fastcut",
        "pix2pix-ada",
    ],
)
def test_resume_is_bit_exact(model, data, stop, precision, tmp_path):
    run = partial(_run, model, data, precision=precision)
    whole, whole_ckpt = run(tmp_path / "whole", iters=10)
    _, stopped = run(tmp_path / "first", iters=stop, every=stop)
    assert stopped["state_dict"]["_iteration"].item() == stop
    resumed, resumed_ckpt = run(
        tmp_path / "resumed", iters=10, ckpt=tmp_path / "first" / "checkpoints" / "last.ckpt"
    )
    assert sorted(resumed) == list(range(stop + 1, 11))
    for it in range(stop + 1, 11):
        assert resumed[it] == whole[it], f"iteration {it}: {resumed[it]} != {whole[it]}"
    assert_same_state(whole_ckpt, resumed_ckpt)
    if precision == EMA:
        assert any(k.startswith("ema.") for k in whole_ckpt["state_dict"])
    if precision == ADA:  # p moved before the stop and after it
        assert float(stopped["state_dict"]["augment.p"]) not in (
            0.2,
            float(whole_ckpt["state_dict"]["augment.p"]),
        )
    if precision == FP16_CPU:
        scalers = whole_ckpt["PerUpdateScalerPrecision"]["scalers"]
        assert sorted(scalers) == ["D", "G"]
        assert scalers == resumed_ckpt["PerUpdateScalerPrecision"]["scalers"]
    # the schedules did move the rate (else this test could not see a scheduler off by one)
    lrs = [g["lr"] for g in whole_ckpt["optimizer_states"][0]["param_groups"]]
    assert lrs[0] < 2e-4 if model != "munit" else lrs[0] < 1e-4


def test_ckpt_path_auto(tmp_path, capsys):
    first, resumed = tmp_path / "runs" / "a", tmp_path / "runs" / "b"
    _run("cyclegan", "shapes", first, iters=4)
    # the same run directory (a requeued job): its own last.ckpt
    losses, ckpt = _run("cyclegan", "shapes", first, iters=6, ckpt="auto")
    assert sorted(losses) == [5, 6] and ckpt["state_dict"]["_iteration"].item() == 6
    # a new run directory beside it: the newest last.ckpt of the sibling runs
    losses, _ = _run("cyclegan", "shapes", resumed, iters=8, ckpt="auto")
    assert sorted(losses) == [7, 8]
    assert f"resuming from {first / 'checkpoints' / 'last.ckpt'}" in capsys.readouterr().out


# ---------------------------------------------------------------------- extending a finished run
def _extend_run(model, tmp_path, out, iters, extra=(), ckpt=None):
    overrides = [
        *SCHEDULES.get(model, []),
        "metrics=none",
        "callbacks.sample_grid=null",
        "task=fit",
        *extra,
        *([f"ckpt_path={ckpt}"] if ckpt else []),
    ]
    record = RecordLosses()
    train(
        compose_config(method_overrides(model, tmp_path, iters, overrides), output_dir=out),
        extra_callbacks=[record],
    )
    return record.losses, torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)


@pytest.mark.parametrize("model", METHODS)
def test_extend_a_finished_run(model, tmp_path):
    """How users extend a run: ``iters=N``, then ``iters=2N`` with ``ckpt_path=auto`` from the
    checkpoint written at the end of the first run (stopped by ``iters`` in mid-epoch, no
    cadence checkpoint): the same as one run of 2N iterations, bit for bit."""
    from tests.methods import test_pix2pixhd

    if model == "pix2pixhd" and not test_pix2pixhd.CITYSCAPES.is_dir():
        pytest.skip("../shared/data/cityscapes_sample missing")
    n = 2
    whole, whole_ckpt = _extend_run(model, tmp_path, tmp_path / "whole" / "run", 2 * n)
    _, half = _extend_run(model, tmp_path, tmp_path / "runs" / "half", n)
    assert half["epoch"] == 0 and half["state_dict"]["_iteration"].item() == n
    resumed, resumed_ckpt = _extend_run(model, tmp_path, tmp_path / "runs" / "extended", 2 * n, ckpt="auto")
    assert sorted(resumed) == list(range(n + 1, 2 * n + 1))
    assert_same_losses(resumed, whole)
    assert_same_state(whole_ckpt, resumed_ckpt)


@pytest.mark.parametrize(
    ("first", "second", "extra"),
    [
        (["iters=3"], ["iters=6"], ["task=fit+test"]),  # mid-epoch, with the test phase after fit
        (["iters=3"], ["iters=6"], ["data.train_size=3"]),  # stopped by iters at an epoch end
        (
            ["iters=null", "trainer.max_epochs=1"],
            ["iters=null", "trainer.max_epochs=2"],
            ["data.train_size=3"],
        ),
    ],
    ids=["fit+test", "iters-at-epoch-end", "epoch-limit"],
)
def test_every_end_of_run_checkpoint_extends_exactly(first, second, extra, tmp_path):
    whole, whole_ckpt = _extend_run("cyclegan", tmp_path, tmp_path / "whole", 6, [*extra, *second])
    _, _ = _extend_run("cyclegan", tmp_path, tmp_path / "half", 3, [*extra, *first])
    resumed, resumed_ckpt = _extend_run(
        "cyclegan",
        tmp_path,
        tmp_path / "ext",
        6,
        [*extra, *second],
        ckpt=tmp_path / "half" / "checkpoints" / "last.ckpt",
    )
    assert sorted(resumed) == [4, 5, 6]
    assert_same_losses(resumed, whole)
    assert_same_state(whole_ckpt, resumed_ckpt)


def test_rerunning_a_finished_run_trains_nothing_and_keeps_its_checkpoint(tmp_path):
    """A job resubmitted after it finished (or killed during its final test) with
    ``ckpt_path=auto``: no further iteration, last.ckpt left as it was, the test phase runs."""
    run = tmp_path / "run"
    _, first = _extend_run("cyclegan", tmp_path, run, 3)
    stamp = (run / "checkpoints" / "last.ckpt").stat().st_mtime_ns
    losses, again = _extend_run("cyclegan", tmp_path, run, 3, ["task=fit+test"], ckpt="auto")
    assert losses == {}
    assert (run / "checkpoints" / "last.ckpt").stat().st_mtime_ns == stamp
    assert again["state_dict"]["_iteration"].item() == 3
    assert json.loads((run / "metrics.json").read_text())["iteration"] == 3
