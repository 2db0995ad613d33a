"""``last.ckpt`` every N iterations and at the end of training, written atomically."""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L


def save_checkpoint_atomic(trainer: L.Trainer, path: str | os.PathLike) -> None:
    """Write a checkpoint next to ``path`` and rename it into place.

    A rename is atomic on POSIX file systems, so a run killed during the write leaves the
    previous checkpoint intact. Must be called on every rank (Lightning synchronises).
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    trainer.save_checkpoint(tmp)
    if trainer.is_global_zero:
        os.replace(tmp, path)


class LastCheckpoint(L.Callback):
    """Keeps ``<dirpath>/last.ckpt`` up to date (every ``every_n_iters`` and at train end)."""

    def __init__(self, dirpath: str, every_n_iters: int = 1000):
        self.dirpath = Path(dirpath)
        self.every_n_iters = every_n_iters
        self._saved_at = -1

    @property
    def last_path(self) -> Path:
        return self.dirpath / "last.ckpt"

    def _save(self, trainer, iteration: int):
        if iteration == self._saved_at:
            return
        self._saved_at = iteration
        if trainer.is_global_zero:
            self.dirpath.mkdir(parents=True, exist_ok=True)
        save_checkpoint_atomic(trainer, self.last_path)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if self.every_n_iters and module.iteration % self.every_n_iters == 0:
            self._save(trainer, module.iteration)

    def on_train_end(self, trainer, module):
        self._save(trainer, module.iteration)
