"""Loggers that work the same under every launcher.

:class:`WandbLogger` is Lightning's with one W&B run per imtrans run, whichever processes write
to it: under ``trainer=ddp_cpu`` (the fork launcher) fit and test run in forked processes and the
final summary is written by the launching one. A W&B run started in a process before it forks
cannot be used in the children ("This operation is not valid in a forked process"), so each
process opens the run itself, under the id given at construction, and a forked process finishes
its part when Lightning finalizes the logger (its exit skips W&B's own exit hook).

:class:`LogConfig` logs the run's resolved config to every logger from the process that trains
(rank 0), not from the launching process before the fork.
"""

from __future__ import annotations

import os
import secrets
import string
from typing import Any

import lightning as L
from lightning.pytorch.loggers import WandbLogger as _LightningWandbLogger


class WandbLogger(_LightningWandbLogger):
    """Lightning's ``WandbLogger`` (same arguments) with a run id fixed at construction."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # Lightning always passes ``anonymous`` (None by default); W&B 0.31 warns of the key itself
        if self._wandb_init.get("anonymous") is None:
            self._wandb_init.pop("anonymous", None)
        if not self._wandb_init.get("id"):  # W&B's form: 8 lower-case letters and digits
            alphabet = string.ascii_lowercase + string.digits
            self._wandb_init["id"] = self._id = "".join(secrets.choice(alphabet) for _ in range(8))
        self._launching_pid = os.getpid()

    def finalize(self, status: str) -> None:
        super().finalize(status)
        if os.getpid() != self._launching_pid and self._experiment is not None:
            self._experiment.finish()  # a forked process: write its part of the run now
            self._experiment = None


class LogConfig(L.Callback):
    """The resolved run config as every logger's hyperparameters, logged once per process by
    rank 0 when fit or test starts."""

    def __init__(self, config: dict):
        self.config = config
        self._logged_in: int | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not trainer.is_global_zero or self._logged_in == os.getpid():
            return
        for logger in trainer.loggers:
            logger.log_hyperparams(self.config)
        self._logged_in = os.getpid()
