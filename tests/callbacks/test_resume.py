"""A run stopped after iteration k and resumed from last.ckpt continues exactly as the
uninterrupted run: the same losses at every later iteration, the same final weights."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from imtrans.run import train
from tests.helpers import compose_config, tiny_run_overrides


class RecordLosses(L.Callback):
    def __init__(self):
        self.losses: dict[int, dict[str, float]] = {}

    def on_train_batch_end(self, trainer, module, *_):
        metrics = trainer.callback_metrics
        self.losses[module.iteration] = {k: float(v) for k, v in metrics.items() if k.startswith("train/")}


def _run(model, data, out, iters, ckpt=None):
    extra = [
        "task=fit",
        "metrics=none",
        "data.train_size=6",  # epochs of 6 iterations: the resumed run crosses an epoch end
        "callbacks.last_checkpoint.every_n_iters=4",
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
    ("model", "data"),
    [("cyclegan", "shapes"), ("pix2pix", "shapes_paired"), ("munit", "shapes")],
)
def test_resume_is_bit_exact(model, data, tmp_path):
    whole, whole_ckpt = _run(model, data, tmp_path / "whole", iters=10)
    _, stopped = _run(model, data, tmp_path / "first", iters=4)
    assert stopped["state_dict"]["_iteration"].item() == 4
    resumed, resumed_ckpt = _run(
        model, data, tmp_path / "resumed", iters=10, ckpt=tmp_path / "first" / "checkpoints" / "last.ckpt"
    )
    assert sorted(resumed) == list(range(5, 11))
    for it in range(5, 11):
        assert resumed[it] == whole[it], f"iteration {it}: {resumed[it]} != {whole[it]}"
    a, b = whole_ckpt["state_dict"], resumed_ckpt["state_dict"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    for opt_a, opt_b in zip(whole_ckpt["optimizer_states"], resumed_ckpt["optimizer_states"]):
        for sa, sb in zip(opt_a["state"].values(), opt_b["state"].values()):
            assert all(torch.equal(sa[k], sb[k]) for k in sa if torch.is_tensor(sa[k]))


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
