"""The progress bar's title gives the run length in iterations when ``iters`` sets it."""

from __future__ import annotations

import lightning as L

from imtrans.callbacks import IterationLimit, ProgressBar


def _description(callbacks, max_epochs):
    bar = ProgressBar()
    trainer = L.Trainer(accelerator="cpu", max_epochs=max_epochs, callbacks=[bar, *callbacks], logger=False)
    bar._trainer = trainer
    return bar._get_train_description(3).strip()


def test_title_with_and_without_an_iteration_limit():
    # Lightning's own title would be "Epoch 3/-2" for an epoch-unbounded run
    assert _description([IterationLimit(5000)], max_epochs=-1) == "Epoch 3 (run of 5000 iterations)"
    assert _description([], max_epochs=10) == "Epoch 3/9"


def test_losses_fit_on_the_bar_line(monkeypatch):
    """Short names, a few digits, no logger version: the metrics column stays one line."""
    import torch
    from lightning.pytorch.callbacks import RichProgressBar

    logged = {"train/G": torch.tensor(22.46612), "train/D": 3.85512, "it": 3.0, "v_num": "cpzk"}
    monkeypatch.setattr(RichProgressBar, "get_metrics", lambda self, trainer, module: dict(logged))
    assert ProgressBar().get_metrics(None, None) == {"G": "22.47", "D": "3.855", "it": "3"}
