"""Runs measured in iterations: the stop callback and a progress bar that says so."""

from __future__ import annotations

import sys

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar


class IterationLimit(L.Callback):
    """Stops training after ``iters`` iterations (batches), whatever the epoch length.

    Lightning's ``max_steps`` counts optimizer steps, which GAN methods take two or more
    of per batch, so it cannot express a run length in iterations.
    """

    def __init__(self, iters: int):
        self.iters = iters

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        # A run resumed from a checkpoint that already holds ``iters`` iterations (a rerun of a
        # finished job, or one killed during its final test): train no further batch.
        if module.iteration >= self.iters:
            trainer.should_stop = True
            module.skip_batches = True  # the module's on_train_batch_start then returns -1

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if module.iteration >= self.iters:
            trainer.should_stop = True


class ProgressBar(RichProgressBar):
    """Lightning's rich progress bar (batches of the epoch, it/s, the losses logged with
    ``prog_bar=True`` and the run's iteration ``it``), whose title gives the run's length in
    iterations when ``iters`` sets it: Lightning's would read "Epoch 3/-2" (no epoch limit).

    The losses fit on the bar's line: short names (``G`` for ``train/G``), no logger version
    (``v_num``), and a console as wide as the line when the output is a file or a pipe (rich
    takes 80 columns there and wraps the losses into a one-character column)."""

    def __init__(self, *args, console_kwargs: dict | None = None, **kwargs):
        console_kwargs = dict(console_kwargs or {})
        if not sys.stdout.isatty():
            console_kwargs.setdefault("width", 160)
        super().__init__(*args, console_kwargs=console_kwargs, **kwargs)

    def get_metrics(self, trainer, pl_module) -> dict:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        out = {}
        for key, value in items.items():
            if hasattr(value, "item") and getattr(value, "numel", lambda: 0)() == 1:  # a tensor
                value = float(value.item())
            if key == "it" and isinstance(value, float):
                value = str(int(value))
            elif isinstance(value, float):
                value = f"{value:.4g}"
            out[key.removeprefix("train/")] = value
        return out

    def _get_train_description(self, current_epoch: int) -> str:
        limit = next((cb.iters for cb in self.trainer.callbacks if isinstance(cb, IterationLimit)), None)
        if limit is None:
            return super()._get_train_description(current_epoch)
        description = f"Epoch {current_epoch} (run of {limit} iterations)"
        return f"{description:{len(self.validation_description)}}"
