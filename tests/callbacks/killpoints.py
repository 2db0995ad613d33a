"""``KillPoint``: SIGKILL the training process at a chosen moment, as ``kill -9`` (an OOM
killer, a pre-empted node) would. Added to a run from the command line:
``+callbacks.kill._target_=tests.callbacks.killpoints.KillPoint +callbacks.kill.phase=...``.
For the kill tests only."""

from __future__ import annotations

import os
import signal
import threading

import lightning as L


def _kill_after(seconds: float) -> None:
    timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGKILL))
    timer.daemon = True
    timer.start()


class KillPoint(L.Callback):
    """Kill the process ``delay`` seconds after the moment ``phase`` starts at iteration ``at``:

    - ``iteration``: in the middle of iteration ``at``, between its optimizer steps;
    - ``checkpoint``: while ``last.ckpt`` of iteration ``at`` is being written (the timer starts
      when Lightning asks the callbacks for their state, before the file is written);
    - ``validation``: while the evaluation of iteration ``at`` runs (this callback comes before
      the metrics callback, which evaluates in the same ``on_train_batch_end``);
    - ``test``: during the final test.
    """

    def __init__(self, phase: str, at: int = 0, delay: float = 0.0):
        if phase not in ("iteration", "checkpoint", "validation", "test"):
            raise ValueError(f"phase {phase!r}")
        self.phase, self.at, self.delay = phase, at, delay

    def on_before_optimizer_step(self, trainer, module, optimizer):
        if self.phase == "iteration" and module.iteration == self.at:
            os.kill(os.getpid(), signal.SIGKILL)

    def on_save_checkpoint(self, trainer, module, checkpoint):
        if self.phase == "checkpoint" and module.iteration == self.at:
            _kill_after(self.delay)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if self.phase == "validation" and module.iteration == self.at:
            _kill_after(self.delay)

    def on_test_batch_start(self, trainer, module, batch, batch_idx, dataloader_idx=0):
        if self.phase == "test":
            _kill_after(self.delay)
