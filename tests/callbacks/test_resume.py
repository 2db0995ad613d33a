"""A run stopped after iteration k and resumed from last.ckpt continues exactly as the
uninterrupted run: the same losses at every later iteration, the same final weights."""

from __future__ import annotations

from functools import partial

import lightning as L
import pytest
import torch

from imtrans.run import train
from tests.helpers import FP16_CPU, compose_config, tiny_run_overrides


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
}


EMA = ["callbacks=ema", "callbacks.ema.start_iter=2", "callbacks.ema.decay=0.9"]


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


@pytest.mark.parametrize(
    ("model", "data", "stop", "precision"),
    [
        ("cyclegan", "shapes", 4, ()),
        ("cyclegan", "shapes", 6, ()),  # at an epoch end: the epoch scheduler's step is pending
        ("pix2pix", "shapes_paired", 4, ()),
        ("munit", "shapes", 4, ()),  # iteration scheduler: the step for iteration 4 is pending
        ("munit", "shapes", 4, FP16_CPU),  # and the gradient scalers
        ("munit", "shapes", 4, EMA),  # and the generator EMA (compared in the state dict)
    ],
    ids=["cyclegan", "cyclegan-epoch-end", "pix2pix", "munit", "munit-fp16", "munit-ema"],
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
    a, b = whole_ckpt["state_dict"], resumed_ckpt["state_dict"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    for opt_a, opt_b in zip(whole_ckpt["optimizer_states"], resumed_ckpt["optimizer_states"]):
        for sa, sb in zip(opt_a["state"].values(), opt_b["state"].values()):
            assert all(torch.equal(sa[k], sb[k]) for k in sa if torch.is_tensor(sa[k]))
        assert [g["lr"] for g in opt_a["param_groups"]] == [g["lr"] for g in opt_b["param_groups"]]
    assert whole_ckpt["lr_schedulers"] == resumed_ckpt["lr_schedulers"]
    if precision == EMA:
        assert any(k.startswith("ema.") for k in a)
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
