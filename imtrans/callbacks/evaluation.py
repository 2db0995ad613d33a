"""The ``metrics`` config group's callback: protocol scores during fit and at test, per direction.

Every ``every_n_iters`` iterations (on the validation split, keys ``val/<direction>/<score>``)
and at the end of testing (``test/<direction>/<score>``), :class:`Evaluation` translates the
protocol's inputs and computes the scores of :mod:`imtrans.metrics.evaluator` on every rank
(one process and many give the same numbers). The metric networks and states live here, not
in the LightningModule, so checkpoints carry none of them; this callback's own checkpoint state
is the best score so far.

Multi-domain methods (``domains`` in ``inference_spec()``, ``data=domains``) are scored per (source, target) task and
guidance mode instead (:func:`~imtrans.metrics.evaluator.evaluate_domain_tasks`): keys
``<stage>/<mode>/<source>2<target>/<score>`` and the means over tasks ``<stage>/<mode>/mean/<score>``.

``monitor`` (e.g. ``val/a2b/fid``) with ``mode`` keeps ``best_checkpoint`` (written atomically)
and publishes every score of the best evaluation as ``best/<key>`` (``best/val/a2b/fid``, ...) and
``best/iteration`` in ``trainer.callback_metrics``; ``imtrans.run`` writes them to ``metrics.json``
beside the last evaluation's ``val/...`` scores, with the record of the selection
(:meth:`Evaluation.selection_record`: the monitor, the mode, the split it was chosen on and the
iteration), and returns ``best/<monitor>`` to sweepers. A best chosen on the test split (a data
set without a val split, see :meth:`imtrans.data.TranslationDataModule.split_source`) is
optimistic as a test score: one line says so at the start of fit (``data.val_from_train=N``
selects on training items held out instead).

Evaluation goes through ``module.translate``, which uses the generator EMA when the run keeps
one (``callbacks=ema``: :class:`~imtrans.callbacks.GeneratorEMA`); ``use_ema=false`` evaluates
the raw weights instead.

Skipped scores cost nothing: a direction or task whose scores are all skipped (the metric weights
missing, and no weight-free score such as the shapes scores or paired PSNR/SSIM applies) is not
translated, and the others draw only the samples their scores read. An evaluation running longer
than a few seconds shows a progress bar on stderr (rank 0; ``progress=false``, e.g.
``metrics.progress=false``, or ``TQDM_DISABLE=1`` hide it).

A metric weight file that is not the published one (its SHA-256, see :mod:`imtrans.pretrained`)
stops the run at setup with :class:`~imtrans.pretrained.WeightsMismatchError`, before any
training: ``imtrans.run`` reports it in one line and exits 2.

Ctrl-C or SIGTERM (:data:`~imtrans.callbacks.checkpoint.STOP`) during an evaluation ends it after
the current block of inputs, all ranks together: the directions and tasks completed before keep
their scores (logged, and in ``metrics.json``); the one under way reports nothing. At test this
callback holds the signal handlers (over Lightning's, whose SIGTERM handling would end the test
without any score).
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import WandbLogger

from imtrans.callbacks.checkpoint import STOP, save_checkpoint_atomic, signal_label, stop_requested
from imtrans.methods.base import _plain
from imtrans.metrics.evaluator import (
    EvaluationStopped,
    Evaluator,
    evaluate_domain_tasks,
    evaluate_module_direction,
    module_domain_names,
)
from imtrans.metrics.protocols import get_protocol
from imtrans.metrics.weights import WEIGHTS as WEIGHT_FILES
from imtrans.metrics.weights import candidate_paths
from imtrans.pretrained import STAND_IN_ENV, is_stand_in

log = logging.getLogger("imtrans")


class Evaluation(L.Callback):
    """Protocol metrics during fit and at test (see the module docstring).

    Args:
        protocol: a name in :data:`imtrans.metrics.PROTOCOLS` (``quick``, ``munit``, ...).
        overrides: protocol fields to change (recorded next to the numbers).
        fid_impl: the FID lineage (``imtrans.metrics.lineages``) when not the protocol's own
            (recorded as an override).
        every_n_iters: evaluation cadence during fit, in iterations; 0 or None: only at test.
        directions: the directions to evaluate; None: all the method's.
        weights_dir: folder with ``weights-inception-2015-12-05-6726825d.pth`` (the
            ``stargan_v2`` protocol: ``inception_v3_google-0cc3c7bd.pth``) and
            ``alexnet-owt-7be5be79.pth`` (else the torch hub cache, else a download).
        download: allow a download of absent weights.
        batch_size: inputs translated and measured at once.
        fid, kid, lpips, paired, shapes: switch metric families off.
        fit_split: the split evaluated during fit (replaces ``test`` in the protocol).
        monitor, mode: the score that decides the best checkpoint (``min`` or ``max``).
        best_checkpoint: where the best checkpoint goes (None: not written, still tracked).
        use_ema: evaluate the generator EMA when one is available.
        test: evaluate at the end of testing.
        progress: a progress bar for evaluations longer than a few seconds (stderr, rank 0).
    """

    #: the first signal's message during the test
    TEST_DOING = "finishing this block of the evaluation; metrics.json keeps the scores computed so far"

    def __init__(
        self,
        protocol: str = "quick",
        overrides: Mapping[str, Any] | None = None,
        fid_impl: str | None = None,
        every_n_iters: int | None = 1000,
        directions: Sequence[str] | None = None,
        weights_dir: str | None = None,
        download: bool = True,
        batch_size: int = 16,
        fid: bool = True,
        kid: bool = True,
        lpips: bool = True,
        paired: bool = True,
        shapes: bool = True,
        fit_split: str = "val",
        monitor: str | None = None,
        mode: str = "min",
        best_checkpoint: str | None = None,
        use_ema: bool = True,
        test: bool = True,
        progress: bool = True,
    ):
        if mode not in ("min", "max"):
            raise ValueError(f"metrics.mode must be min or max, got {mode!r}")
        self.protocol = get_protocol(protocol, _plain(overrides), fid_impl)
        self.every_n_iters = every_n_iters
        self.directions = list(directions) if directions else None
        self.fit_split = fit_split
        self.monitor = monitor
        self.mode = mode
        self.best_checkpoint = Path(best_checkpoint) if best_checkpoint else None
        self.use_ema = use_ema
        self.test = test
        self.evaluator = Evaluator(
            self.protocol,
            weights_dir=weights_dir,
            download=download,
            batch_size=batch_size,
            fid=fid,
            kid=kid,
            lpips=lpips,
            paired=paired,
            shapes=shapes,
            progress=progress,
            should_stop=stop_requested,
        )
        self.best_score: float | None = None
        self.best_iteration: int | None = None
        #: every score of the best evaluation (``val/...`` keys)
        self.best_scores: dict[str, float] = {}
        self.last_scores: dict[str, float] = {}
        self._settled = False
        self._last_eval = -1
        self._monitor_seen = False
        self._handler_token = None
        #: whether the last evaluation was cut short by Ctrl-C / SIGTERM
        self.stopped = False

    @property
    def state_key(self) -> str:
        return self._generate_state_key(protocol=self.protocol.name, monitor=self.monitor)

    # ------------------------------------------------------------------ record
    def protocol_record(self) -> dict[str, Any]:
        """The protocol dict written next to the numbers, with the settings and weights used (and
        ``stand_in_weights`` when a test's stand-in file was used, see :mod:`imtrans.pretrained`)."""
        ev = self.evaluator
        weights = {}
        for key, needed in ev.needs.items():
            if not needed:
                continue
            path = ev.paths.get(key) if key in ev.paths else None
            if path is None and key not in ev.paths:
                path = next(
                    (p for p in candidate_paths(WEIGHT_FILES[key], ev.weights_dir) if p.is_file()), None
                )
            weights[key] = str(path) if path is not None else "missing: metrics skipped"
        record = {
            **self.protocol.record(),
            "evaluation": {
                "every_n_iters": self.every_n_iters,
                "fit_split": self.fit_split,
                "batch_size": ev.batch_size,
                "use_ema": self.use_ema,
                "enabled": {k: v for k, v in ev.want.items()},
            },
            "weights": weights,
        }
        # a test's random weights say so next to the numbers computed from them
        stand_ins = [k for k, path in ev.paths.items() if k in weights and path and is_stand_in(path)]
        if stand_ins:
            record["stand_in_weights"] = {
                k: f"not checked against the published SHA-256 ({STAND_IN_ENV}): not the published scores"
                for k in stand_ins
            }
        return record

    def selection_split(self, datamodule) -> str:
        """The split the best is chosen on, as :meth:`~imtrans.data.TranslationDataModule.split_source`
        names it (``val``, ``train_holdout``, ``test``, ``train``)."""
        source = getattr(datamodule, "split_source", None)
        return source(self.fit_split) if source is not None else self.fit_split

    def selection_record(self, scores: Mapping[str, Any], datamodule) -> dict[str, Any] | None:
        """The ``selection`` entry of ``metrics.json``: ``{"monitor", "mode", "split", "iteration",
        "value", "checkpoint"}``, from the fit's ``best/`` ``scores`` (``iteration`` and ``value``
        null when the monitor was never computed); None without a monitor.

        The scores are passed in rather than read from this object: under the fork and spawn
        launchers the fit ran in other processes, and only ``trainer.callback_metrics`` came back.
        """
        if not self.monitor:
            return None
        iteration = scores.get("best/iteration")
        found = iteration is not None
        return {
            "monitor": self.monitor,
            "mode": self.mode,
            "split": self.selection_split(datamodule),
            "iteration": int(iteration) if found else None,
            "value": scores.get(f"best/{self.monitor}"),
            "checkpoint": str(self.best_checkpoint)
            if found and self.best_checkpoint is not None and self.best_checkpoint.is_file()
            else None,
        }

    # ------------------------------------------------------------------ weights
    def _settle(self, trainer: L.Trainer) -> None:
        """Find the weights once; all ranks agree on what is available; rank 0 prints the notices."""
        if self._settled:
            return
        ev = self.evaluator
        if trainer.world_size > 1:
            if trainer.is_global_zero:
                ev.find_weights()  # the only rank that may download
            trainer.strategy.barrier("imtrans_metrics_weights")
            found = ev.find_weights(download=False)
            found = {
                k: bool(trainer.strategy.reduce_boolean_decision(v, all=True))
                for k, v in sorted(found.items())
            }
        else:
            found = ev.find_weights()
        ev.settle(found, notify=trainer.is_global_zero)
        self._settled = True

    def setup(self, trainer, pl_module, stage: str) -> None:
        self._settle(trainer)

    # ------------------------------------------------------------------ evaluation
    @contextlib.contextmanager
    def _generator_weights(self, module):
        """``translate`` uses the EMA copies when the run keeps them (``module.use_ema``, see
        :class:`~imtrans.callbacks.GeneratorEMA`); ``use_ema=false`` evaluates the raw weights."""
        previous = getattr(module, "use_ema", None)
        if previous is not None and not self.use_ema:
            module.use_ema = False
        try:
            yield
        finally:
            if previous is not None:
                module.use_ema = previous

    def evaluate(self, trainer: L.Trainer, module, stage: str) -> dict[str, float]:
        """Scores of every direction at ``stage`` (``val`` or ``test``); call on every rank.

        Stopped by Ctrl-C / SIGTERM, it returns the scores of the directions and tasks completed
        before (``stopped`` is then True)."""
        self._settle(trainer)
        self.stopped = False
        dm = trainer.datamodule
        if dm is None or not hasattr(dm, "dataset"):
            return {}
        split, ref_split = self.protocol.splits(stage, self.fit_split)
        inputs, reference = dm.dataset(split), dm.dataset(ref_split)
        ev = self.evaluator.to(module.device)
        directions = [d for d in (self.directions or module.directions) if d in module.directions]
        scores: dict[str, float] = {}
        domains = module_domain_names(module, dm, inputs)
        try:
            with self._generator_weights(module):
                if domains is not None:  # multi-domain: per (source, target) task and mode
                    result = evaluate_domain_tasks(
                        ev, module, inputs, reference, domains, ref_split, label=stage
                    )
                    scores.update({f"{stage}/{k}": v for k, v in result.items()})
                paired = bool(getattr(dm, "paired", False))
                for direction in directions:
                    result = evaluate_module_direction(
                        ev,
                        module,
                        direction,
                        inputs,
                        reference,
                        ref_split,
                        paired,
                        label=f"{stage} {direction}",
                    )
                    if result is not None:
                        scores.update({f"{stage}/{direction}/{k}": v for k, v in result.items()})
        except EvaluationStopped as stop:
            scores.update({f"{stage}/{k}": v for k, v in stop.scores.items()})
            self.stopped = True
            if trainer.is_global_zero:
                log.warning(
                    "imtrans: %s evaluation stopped by %s; %d scores of the directions/tasks completed before are kept",
                    stage,
                    signal_label(STOP.signum),
                    len(scores),
                )
        self.last_scores = scores
        return scores

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        it = pl_module.iteration
        if not self.every_n_iters or it % self.every_n_iters or it == self._last_eval:
            return
        self._last_eval = it
        scores = self.evaluate(trainer, pl_module, "val")
        trainer.callback_metrics.update({k: torch.tensor(v) for k, v in scores.items()})
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics({**scores, "iteration": it}, step=trainer.global_step)
        self._update_best(trainer, pl_module, scores)

    def _update_best(self, trainer, module, scores: Mapping[str, float]) -> None:
        if not self.monitor or self.monitor not in scores:
            return
        self._monitor_seen = True
        value = scores[self.monitor]
        if not math.isfinite(value):
            return
        if self.best_score is not None and (
            value >= self.best_score if self.mode == "min" else value <= self.best_score
        ):
            return
        self.best_score, self.best_iteration = value, module.iteration
        self.best_scores = dict(scores)
        self._publish_best(trainer)
        if self.best_checkpoint is not None:
            if trainer.is_global_zero:
                self.best_checkpoint.parent.mkdir(parents=True, exist_ok=True)
            save_checkpoint_atomic(trainer, self.best_checkpoint)

    def _publish_best(self, trainer) -> None:
        """``best/<key>`` of every score of the best evaluation, and ``best/iteration``."""
        if self.best_iteration is None:
            return
        best = {f"best/{k}": v for k, v in self.best_scores.items()}
        best["best/iteration"] = float(self.best_iteration)
        trainer.callback_metrics.update({k: torch.tensor(v) for k, v in best.items()})

    def on_train_start(self, trainer, pl_module) -> None:
        # a resumed run's best so far (restored from the checkpoint) is the best until beaten
        self._publish_best(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        if self.monitor and not self._monitor_seen and trainer.is_global_zero:
            log.warning(
                "imtrans: metrics.monitor=%s was never computed (evaluated: %s)",
                self.monitor,
                ", ".join(sorted(self.last_scores)) or "nothing",
            )

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        if not self.test:
            return
        for key, value in self.evaluate(trainer, pl_module, "test").items():
            pl_module.log(key, value, sync_dist=False)

    # Ctrl-C / SIGTERM during the test: installed in this (test) process after Lightning has set
    # its SIGTERM handler, which would end the test between batches with no score at all.
    def on_test_start(self, trainer, pl_module) -> None:
        if self.test:
            self._restore_handler()
            self._handler_token = STOP.install(self.TEST_DOING)

    def _restore_handler(self) -> None:
        token, self._handler_token = self._handler_token, None
        STOP.restore(token)

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._restore_handler()

    def on_fit_start(self, trainer, pl_module) -> None:
        self._write_wandb_summary(trainer)
        selecting = self.monitor and self.every_n_iters
        if selecting and trainer.is_global_zero and self.selection_split(trainer.datamodule) == "test":
            log.warning(
                "imtrans: metrics.monitor=%s: selected on the test split: the best test score is "
                "optimistic; use data.val_from_train=N",
                self.monitor,
            )

    def on_test_end(self, trainer, pl_module) -> None:
        self._restore_handler()
        self._write_wandb_summary(trainer)

    def _write_wandb_summary(self, trainer) -> None:
        if not trainer.is_global_zero:
            return
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                try:
                    logger.experiment.summary["metrics_protocol"] = self.protocol_record()
                except Exception as err:  # a disabled or broken W&B run must not stop training
                    log.warning("imtrans: could not write the protocol to the W&B summary: %s", err)

    # ------------------------------------------------------------------ checkpoint state
    def state_dict(self) -> dict[str, Any]:
        """Only the best scores: metric networks and states never enter a checkpoint."""
        return {
            "best_score": self.best_score,
            "best_iteration": self.best_iteration,
            "best_scores": dict(self.best_scores),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best_score = state_dict.get("best_score")
        self.best_iteration = state_dict.get("best_iteration")
        # checkpoints written before best_scores existed kept the monitored score only
        fallback = {self.monitor: self.best_score} if self.monitor and self.best_score is not None else {}
        self.best_scores = dict(state_dict.get("best_scores") or fallback)
