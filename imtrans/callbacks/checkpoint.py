"""``last.ckpt`` every N iterations, at the end of training and on Ctrl-C or SIGTERM, written
atomically; :data:`STOP`, the process's record of a stop asked by either signal."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
from pathlib import Path

import lightning as L
from lightning.pytorch.utilities import rank_zero_info

from imtrans.errors import OutputError

#: the signals that ask a run to stop at its next safe point (a terminal's Ctrl-C; ``kill``,
#: ``timeout``, a scheduler's pre-emption or time limit)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def signal_label(signum: int | None) -> str:
    """How the messages name a stop signal: ``Ctrl-C`` for SIGINT, else its name (``SIGTERM``)."""
    if signum is None:
        return "nothing"
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


class StopRequest:
    """Ctrl-C (SIGINT) or SIGTERM: finish the current unit of work, keep what it produced, stop.

    Signals belong to the process, so there is one instance, :data:`STOP`. Whoever can stop
    at a safe point installs its handler for the span it covers (:meth:`catching`, or
    :meth:`install` / :meth:`restore` across Lightning hooks): :class:`LastCheckpoint` during fit
    (the current iteration finishes, ``last.ckpt`` is written), the ``Evaluation`` callback and
    ``imtrans.run`` during the test (the current block of inputs finishes, the scores of the
    directions / tasks completed so far are kept). The handler only records the signal (a
    handler runs between two bytecodes of whatever is under way); that code polls :attr:`requested`
    where stopping is safe. A second signal raises ``KeyboardInterrupt``: abort at once.

    Installing over Lightning's own SIGTERM handler is deliberate: Lightning's raises
    ``SIGTERMException`` between batches, which would lose the test scores and ``metrics.json``.
    ``imtrans.run`` clears the record at the start of every run (a sweep runs many in one process).
    """

    def __init__(self):
        self.signum: int | None = None
        #: what the first signal's message says will happen, set by the innermost installer
        self.doing = "finishing the current step"

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def clear(self) -> None:
        self.signum = None

    def request(self, signum: int) -> None:
        """Record a stop without a handler (Lightning stopped the stage on its own SIGTERM)."""
        if self.signum is None:
            self.signum = signum

    def handle(self, signum, frame) -> None:
        if self.signum is not None:  # the second signal: abort now
            raise KeyboardInterrupt
        self.signum = signum
        again = "press it again" if signum == signal.SIGINT else "send it again"
        print(f"\nimtrans: {signal_label(signum)}: {self.doing} ({again} to abort)", flush=True)

    def install(self, doing: str | None = None):
        """Put :meth:`handle` on :data:`STOP_SIGNALS`; returns the token for :meth:`restore`.
        Outside the main thread (where Python cannot set handlers) it does nothing."""
        if threading.current_thread() is not threading.main_thread():
            return None
        token = (self.doing, {s: signal.signal(s, self.handle) for s in STOP_SIGNALS})
        if doing is not None:
            self.doing = doing
        return token

    def restore(self, token) -> None:
        if token is None:
            return
        self.doing, previous = token
        for signum, handler in previous.items():
            # None: a handler not set from Python; the default is the closest to it
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)

    @contextlib.contextmanager
    def catching(self, doing: str | None = None):
        """:meth:`install` for the span of a ``with`` block; the previous handlers come back after."""
        token = self.install(doing)
        try:
            yield self
        finally:
            self.restore(token)


STOP = StopRequest()


def stop_requested() -> bool:
    """Whether Ctrl-C or SIGTERM asked this process to stop (a module function: picklable)."""
    return STOP.requested


def save_checkpoint_atomic(trainer: L.Trainer, path: str | os.PathLike) -> None:
    """Write a checkpoint next to ``path`` and rename it into place.

    A rename is atomic on POSIX file systems, so a run killed during the write leaves the
    previous checkpoint intact. Must be called on every rank (Lightning synchronises).
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        trainer.save_checkpoint(tmp, weights_only=False)  # the whole state: a run resumes from it
        if trainer.is_global_zero:
            os.replace(tmp, path)
    except OSError as err:  # disk full, quota, a vanished mount: never leave a half file
        tmp.unlink(missing_ok=True)
        kept = f"{path} still holds the previous checkpoint" if path.exists() else "no checkpoint was kept"
        raise OutputError(f"{path}: writing the checkpoint failed ({err.strerror or err}); {kept}") from err


class LastCheckpoint(L.Callback):
    """Keeps ``<dirpath>/last.ckpt`` up to date: every ``every_n_iters``, at the end of
    training, and when the user presses Ctrl-C or the process gets SIGTERM.

    Put it after every other callback (``imtrans.run`` does): the file written at the end of
    an iteration must hold that iteration's EMA update and whatever else callbacks change then,
    or a resumed run would miss them. (Lightning's ``Checkpoint`` base class would order it
    so, but is refused with ``enable_checkpointing=False``, which keeps Lightning's own
    checkpoint callback out.)

    Ctrl-C or SIGTERM (:data:`STOP`) does not kill the run mid-update: the current iteration
    finishes, ``last.ckpt`` is written, and training stops (``interrupted`` is then True;
    ``imtrans.run`` skips testing and says how to resume). A second signal aborts at once.
    """

    #: the first signal's message during fit
    DOING = "finishing this iteration and saving last.ckpt"

    def __init__(self, dirpath: str, every_n_iters: int = 1000):
        self.dirpath = Path(dirpath)
        self.every_n_iters = every_n_iters
        self.interrupted = False
        self._saved_at = -1
        self._start: tuple[int | None, str | None] = (None, None)  # (iteration, ckpt_path) of fit
        self._handler_token = None

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

    # -- Ctrl-C / SIGTERM: finish the iteration, save, stop --------------------------------
    def on_train_start(self, trainer, module):
        self._start = (module.iteration, trainer.ckpt_path)
        # In this (training) process, over the SIGTERM handler Lightning has just set.
        self._restore_handler()
        self._handler_token = STOP.install(self.DOING)

    @contextlib.contextmanager
    def catching_signals(self):
        """Around ``trainer.fit`` in the launching process (``imtrans.run`` does this).

        With the fork or spawn launchers that process only waits for the DDP workers; a
        Ctrl-C in the terminal (or a SIGTERM to the process group: ``timeout``, SLURM) reaches
        every process of the group, so the workers finish the iteration and save while this
        one must not die (which would kill them). On exit ``interrupted`` says whether a stop
        was asked. A second signal aborts.
        """
        with STOP.catching(self.DOING):
            try:
                yield
            finally:
                self.interrupted = self.interrupted or STOP.requested

    def _restore_handler(self):
        token, self._handler_token = self._handler_token, None
        STOP.restore(token)

    @staticmethod
    def _run_ends_here(trainer, batch_idx: int) -> bool:
        """Whether training stops after this batch: ``iters`` reached (``IterationLimit``, which
        runs before this callback, set ``should_stop``), the last batch of the last epoch, or
        Lightning's ``max_steps``."""
        if trainer.should_stop:
            return True
        fit = trainer.fit_loop
        last_batch = batch_idx + 1 >= trainer.num_training_batches
        last_epoch = fit.max_epochs not in (None, -1) and trainer.current_epoch + 1 >= fit.max_epochs
        steps_done = fit.max_steps not in (None, -1) and trainer.global_step >= fit.max_steps
        return (last_batch and last_epoch) or steps_done

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        # Every rank must stop at the same iteration: agree on "anyone was interrupted".
        interrupted = trainer.strategy.reduce_boolean_decision(STOP.requested, all=False)
        # The end-of-run checkpoint is written here, at the last batch, not in on_train_end:
        # by then Lightning has closed the epoch (epoch + 1, the data module's position at the
        # old epoch's count), and a run extended from it would start a new epoch with another
        # data order where the uninterrupted run goes on with this one.
        ends = self._run_ends_here(trainer, batch_idx)
        if interrupted or ends:
            module.finish_training()  # its results belong in this final checkpoint
        if interrupted or ends or (self.every_n_iters and module.iteration % self.every_n_iters == 0):
            self._save(trainer, module.iteration)
        if interrupted:
            self.interrupted = True
            trainer.should_stop = True
            rank_zero_info(f"imtrans: interrupted after iteration {module.iteration}; saved {self.last_path}")

    def on_train_end(self, trainer, module):
        self._restore_handler()
        iteration, resumed_from = self._start
        if resumed_from and module.iteration == iteration:
            # Resumed from a complete run, no batch trained: that checkpoint is this run's last
            # one as it is. (Saved now, it would hold the epoch Lightning just closed.)
            self._copy_into_place(trainer, Path(resumed_from))
            return
        # normally written at the last batch already (see on_train_batch_end); this covers a
        # stop no callback announced before the batch ended
        self._save(trainer, module.iteration)

    def _copy_into_place(self, trainer, source: Path) -> None:
        if not trainer.is_global_zero or source.resolve() == self.last_path.resolve():
            return
        self.dirpath.mkdir(parents=True, exist_ok=True)
        tmp = self.last_path.with_name(self.last_path.name + ".tmp")
        shutil.copyfile(source, tmp)
        os.replace(tmp, self.last_path)

    def on_exception(self, trainer, module, exception):
        self._restore_handler()
