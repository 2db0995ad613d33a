"""The run entry: compose the config, build data, model, trainer; fit, then test.

    python -m imtrans.run model=cyclegan data=horse2zebra data.root=/data/horse2zebra trainer=gpu
    python -m imtrans.run model=pix2pix data=shapes_paired trainer=cpu iters=200
    python -m imtrans.run --multirun model=cyclegan,pix2pix ...

Outputs (in the Hydra run directory, printed at the end): ``config.yaml`` (resolved),
``checkpoints/last.ckpt``, ``samples/*.png``, ``metrics.json`` and the logger's folder.

Ctrl-C or SIGTERM (``kill``, ``timeout``, a scheduler) stops a run at its next safe point
(:data:`imtrans.callbacks.checkpoint.STOP`): during fit the current iteration finishes and
``last.ckpt`` is written, no test follows; during the test the current block of the evaluation
finishes. Either way ``metrics.json`` holds what was computed (``stopped_by`` names the signal).
The exit code is 0 after Ctrl-C and 143 (128 + SIGTERM, as a shell reports a process ended by
it) after SIGTERM, so that a job script or scheduler sees a run that did not reach its end.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from omegaconf import DictConfig, OmegaConf, open_dict

from imtrans.callbacks import IterationLimit, LastCheckpoint, memory_switches, split_trainer_config
from imtrans.callbacks.checkpoint import STOP, signal_label
from imtrans.checks import check_values
from imtrans.loggers import LogConfig

log = logging.getLogger("imtrans")


def _instantiate_group(group: DictConfig | None) -> list:
    """Instantiate every entry with a ``_target_`` of a dict-like group (loggers, callbacks)."""
    if not group:
        return []
    return [hydra.utils.instantiate(entry) for entry in group.values() if entry and "_target_" in entry]


def _config_dict(cfg: DictConfig) -> dict:
    """The resolved run config without Hydra's own node, as plain Python."""
    cfg = cfg.copy()
    with open_dict(cfg):
        cfg.pop("hydra", None)
    return OmegaConf.to_container(cfg, resolve=True)


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _scalar_metrics(metrics: dict) -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        value = float(value.item() if hasattr(value, "item") else value)
        out[key] = value if math.isfinite(value) else str(value)
    return out


def _resync_csv_loggers(trainer: L.Trainer, loggers: list) -> None:
    """Let a CSVLogger append to the file its DDP workers wrote.

    With the fork/spawn launchers training runs in child processes; the parent's CSVLogger
    never learns the columns they wrote, and its first save after ``fit`` (the test
    metrics) fails rewriting the file. Seeding its column list from the file's header
    restores the normal append/extend behaviour.
    """
    from lightning.pytorch.loggers import CSVLogger

    if not trainer.is_global_zero:  # other ranks hold a dummy writer and never write
        return
    for logger in loggers:
        if isinstance(logger, CSVLogger):
            writer = logger.experiment
            path = Path(writer.metrics_file_path)
            if not writer.metrics_keys and path.is_file():
                with path.open() as f:
                    writer.metrics_keys = [k for k in f.readline().strip().split(",") if k]


def _metrics_callback(cfg: DictConfig, callbacks: list) -> L.Callback | None:
    """The ``metrics`` group's Evaluation callback (added to ``callbacks``), or one passed in."""
    from imtrans.callbacks import Evaluation

    for callback in callbacks:
        if isinstance(callback, Evaluation):
            return callback
    node = cfg.get("metrics")
    if not node or "_target_" not in node:
        return None
    callback = hydra.utils.instantiate(node)
    callbacks.append(callback)
    return callback


def resolve_ckpt_path(
    ckpt_path: str | None, out_dir: Path, config: dict | None = None, any_config: bool = False
) -> str | None:
    """``ckpt_path=auto``: this run directory's ``checkpoints/last.ckpt`` if it has one (a
    requeued SLURM job, a fixed ``hydra.run.dir``), else the newest ``last.ckpt`` among the
    sibling runs of the same name (``outputs/<name>/*``) that trained the same configuration,
    else None (a fresh start).

    The same configuration: ``config`` (this run's resolved config) and the sibling's
    ``config.yaml`` agree on every model, loss, data and augment setting
    (:func:`imtrans.checks.config_differences`). Where only siblings of another configuration
    have a checkpoint, a :class:`~imtrans.errors.ConfigError` lists what differs, unless
    ``any_config`` (``resume_any_config=true``) accepts the newest of them.
    """
    if ckpt_path != "auto":
        return ckpt_path
    from imtrans.checks import config_differences
    from imtrans.errors import ConfigError

    own = out_dir / "checkpoints" / "last.ckpt"
    if own.is_file():
        print(f"imtrans: ckpt_path=auto: resuming from {own}")
        return str(own)
    candidates = sorted(out_dir.parent.glob("*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        print(f"imtrans: ckpt_path=auto: no last.ckpt under {out_dir.parent}; starting afresh")
        return None
    differing: list[tuple[Path, list[str]]] = []
    for candidate in reversed(candidates):  # newest first
        saved = candidate.parent.parent / "config.yaml"
        theirs = OmegaConf.to_container(OmegaConf.load(saved)) if saved.is_file() else {}
        differs = config_differences(config, theirs) if config is not None and theirs else []
        if not differs or any_config:
            print(f"imtrans: ckpt_path=auto: resuming from {candidate}")
            return str(candidate)
        differing.append((candidate, differs))
    newest, differs = differing[0]
    shown = "; ".join(differs[:8]) + (f"; and {len(differs) - 8} more" if len(differs) > 8 else "")
    raise ConfigError(
        f"ckpt_path=auto: the runs under {out_dir.parent} trained another configuration (newest "
        f"{newest.parent.parent.name}: {shown}); resume it with its own settings, accept it with "
        "resume_any_config=true, or start a new run under another name=..."
    )


def check_resume_checkpoint(ckpt_path: str, cfg: DictConfig, model) -> None:
    """A ``ckpt_path`` that this run cannot continue from is one line before any work
    (:class:`~imtrans.errors.CheckpointError`): missing, empty, unreadable, not imtrans's,
    another method, or weights that do not fit the networks this config builds (first
    differences named)."""
    from imtrans.errors import CheckpointError
    from imtrans.load import read_checkpoint, state_dict_mismatch

    _, ckpt = read_checkpoint(ckpt_path, "ckpt_path")
    theirs = (ckpt["imtrans_config"].get("model") or {}).get("_target_")
    ours = cfg.model.get("_target_")
    if theirs and ours and theirs != ours:
        raise CheckpointError(f"ckpt_path={ckpt_path}: a checkpoint of {theirs}, this run builds {ours}")
    # the generator EMA copies are made when fit starts (the EMA callback), after this check
    ours_sd = {k: v for k, v in model.state_dict().items() if not k.startswith("ema.")}
    differs = state_dict_mismatch(
        ours_sd, {k: v for k, v in ckpt["state_dict"].items() if not k.startswith("ema.")}
    )
    if differs:
        raise CheckpointError(
            f"ckpt_path={ckpt_path}: its weights do not fit the networks of this config ({differs}); "
            "resume with the run's own model settings"
        )


def _choice(group: str) -> str | None:
    """The value chosen for a config group (``trainer=ddp`` -> ``ddp``), when Hydra knows it."""
    from hydra.core.hydra_config import HydraConfig

    try:
        return HydraConfig.get().runtime.choices.get(group)
    except ValueError:  # no Hydra context (a config built by hand)
        return None


def check_trainer(cfg: DictConfig) -> None:
    """A trainer that needs GPUs on a machine without one is a ConfigError naming the CPU presets
    (before Lightning fails deep inside with "No supported gpu backend found")."""
    import torch

    from imtrans.errors import ConfigError

    accelerator = str(cfg.trainer.get("accelerator", "auto"))
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        name = _choice("trainer")
        what = f"trainer={name}" if name else f"trainer.accelerator={accelerator}"
        raise ConfigError(
            f"{what} needs GPUs (trainer.accelerator={accelerator}) and torch finds none on this machine; "
            "use trainer=ddp_cpu (DDP over 2 CPU processes) or trainer=cpu"
        )


#: Lightning's messages that tell the user nothing to act on: hardware lines (the trainer preset
#: says it), an advertisement, and notes on settings imtrans makes on purpose.
_LIGHTNING_NOISE = (
    "💡 Tip", "GPU available:", "TPU available:", "HPU available:", "`Trainer(limit_",
    "`weights_only` was not set", "You are using a CUDA device",
)  # fmt: skip


class _DropKnownNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(_LIGHTNING_NOISE)


def quiet_third_parties() -> None:
    """One line per known condition: Lightning's tips and hardware lines, deprecation notes of
    the libraries' own calls (``_pytree``), and W&B's banners are not printed; what imtrans says
    of them (the run's folder, the W&B folder to sync) is in its end-of-run summary."""
    import warnings

    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropKnownNoise) for f in logger.filters):
            logger.addFilter(_DropKnownNoise())
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    # under DDP: the test scores are gathered over the ranks by imtrans's evaluation (the same
    # numbers as one process), not by Lightning's per-rank averages these two advise about
    warnings.filterwarnings("ignore", message=r".*Using `DistributedSampler` with the dataloaders")
    warnings.filterwarnings("ignore", message=r".*It is recommended to use `self.log\(.*sync_dist=True")
    os.environ.setdefault("WANDB_SILENT", "true")


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask: a SLURM or container limit)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def cap_workers(cfg: DictConfig) -> None:
    """``data.num_workers`` at most the CPUs available (said once): more loading processes than
    CPUs only compete with training for them, and torch warns at every DataLoader."""
    workers, cpus = cfg.data.get("num_workers"), available_cpus()
    if isinstance(workers, int) and workers > cpus:
        print(f"imtrans: data.num_workers={workers} lowered to {cpus}, the CPUs this process may use")
        with open_dict(cfg):
            cfg.data.num_workers = cpus


def check_writable(folder: Path, key: str) -> None:
    """Create ``folder`` and write a probe file in it: an OutputError in one line when the run's
    outputs could not be written there (before any training time is spent)."""
    from imtrans.errors import OutputError

    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".imtrans-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise OutputError(
            f"{folder}: the run's output folder cannot be written ({err.strerror or err}); "
            f"choose a writable one ({key}=...) or fix its permissions"
        ) from None


def _check_argv_output_dirs(argv: list[str]) -> None:
    """The run or sweep folder named on the command line, checked before Hydra creates it
    (Hydra would fail there with its own traceback)."""
    from imtrans.errors import OutputError

    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep and key.lstrip("+") in ("hydra.run.dir", "hydra.sweep.dir") and "${" not in value:
            try:
                check_writable(Path(value).expanduser(), key)
            except OutputError as err:
                print(f"imtrans: output error: {err}", file=sys.stderr)
                sys.exit(2)
    if not os.access(os.getcwd(), os.W_OK) and not any(a.startswith("hydra.run.dir=") for a in argv):
        print(
            f"imtrans: output error: {os.getcwd()}: the working directory cannot be written (runs go to "
            "./outputs by default); run from another directory or set hydra.run.dir=...",
            file=sys.stderr,
        )
        sys.exit(2)


class Terminated(SystemExit):
    """A run stopped by SIGTERM, raised by :func:`train` once ``last.ckpt`` and ``metrics.json``
    are written: the process exits with ``128 + SIGTERM`` (143), the shell's code for a process
    ended by SIGTERM, and a sweep in this process stops too (the signal asked the process to end)."""

    def __init__(self):
        super().__init__(128 + signal.SIGTERM)


def train(cfg: DictConfig, extra_callbacks: list[L.Callback] | None = None) -> float | None:
    """Run ``cfg.task`` (fit, test or fit+test) and return ``cfg.optimized_metric`` if set.

    ``extra_callbacks`` are added to those of the ``callbacks`` group (for programmatic use).
    Stopped by SIGTERM, it raises :class:`Terminated` after writing ``metrics.json``; stopped by
    Ctrl-C, it returns as usual.
    """
    wandb_dir = os.environ.get("WANDB_DIR")
    STOP.clear()  # a stop asked of an earlier run in this process (a sweep, a test) is not this one's
    from imtrans.load import trusted_checkpoints

    try:
        # trust=true: ckpt_path, model.init_from and model.load_pretrain may hold Python objects
        # (imtrans.load); without it they load with weights_only=True
        with trusted_checkpoints(bool(cfg.get("trust", False))):
            return _train(cfg, extra_callbacks)
    finally:  # the next run in this process (a sweep, a test) chooses its own
        STOP.clear()
        if wandb_dir is None:
            os.environ.pop("WANDB_DIR", None)


@contextlib.contextmanager
def _lightning_sigterm():
    """Lightning's own SIGTERM stop (``SIGTERMException``, raised between batches where no imtrans
    handler held the signal: no ``last_checkpoint`` callback, or a signal in the moment between
    Lightning's handler and ours) ends the stage as imtrans's does: recorded, not raised."""
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    try:
        yield
    except SIGTERMException:
        STOP.request(signal.SIGTERM)


def _train(cfg: DictConfig, extra_callbacks: list[L.Callback] | None) -> float | None:
    from imtrans.data import DataError  # noqa: F401  (import errors surface early)

    os.environ.setdefault("WANDB_MODE", "offline")
    quiet_third_parties()
    if cfg.task not in ("fit", "test", "fit+test"):
        raise ValueError(f"task must be fit, test or fit+test, got {cfg.task!r}")
    out_dir = Path(cfg.paths.output_dir)
    check_values(cfg)
    ckpt_path = resolve_ckpt_path(
        cfg.ckpt_path, out_dir, _config_dict(cfg), bool(cfg.get("resume_any_config", False))
    )
    if cfg.task == "test" and not ckpt_path:
        raise ValueError("task=test needs ckpt_path=<checkpoint>")
    check_writable(out_dir, "hydra.run.dir" if "hydra" in cfg else "paths.output_dir")
    L.seed_everything(cfg.seed, workers=True, verbose=False)

    check_trainer(cfg)
    cap_workers(cfg)
    datamodule = hydra.utils.instantiate(cfg.data)
    # Check the data now, in this process: bad input fails with one line before any
    # worker or DDP process starts.
    datamodule.setup("fit" if "fit" in cfg.task else "test")

    model = hydra.utils.instantiate(cfg.model)
    model.imtrans_config = _config_dict(cfg)
    model.check_data(datamodule)
    if ckpt_path:
        check_resume_checkpoint(ckpt_path, cfg, model)

    callbacks = _instantiate_group(cfg.get("callbacks")) + list(extra_callbacks or [])
    # the method's own callbacks (StarGAN v2's EMA) first, unless the config has one of the type
    callbacks = [
        cb for cb in model.recipe_callbacks() if not any(isinstance(c, type(cb)) for c in callbacks)
    ] + callbacks
    evaluation = _metrics_callback(cfg, callbacks)
    callbacks.append(LogConfig(model.imtrans_config))  # from the process that trains (forked or not)
    if cfg.get("iters"):
        callbacks.append(IterationLimit(int(cfg.iters)))
    # last.ckpt is written after every other callback's end-of-iteration work (EMA update)
    callbacks.sort(key=lambda cb: isinstance(cb, LastCheckpoint))
    loggers = _instantiate_group(cfg.get("logger"))
    _wandb_dir(loggers)
    trainer_overrides: dict[str, Any] = {"callbacks": callbacks, "logger": loggers or False}
    if cfg.get("iters"):
        trainer_overrides.update(max_epochs=-1, max_steps=-1)
    # the speed switches (compile, channels_last, optimizer_impl) are imtrans's, not Lightning's
    # and so is the memory switch (activation_checkpointing)
    trainer_args, memory = memory_switches(OmegaConf.to_container(cfg.trainer, resolve=True))
    trainer_args, speed = split_trainer_config(trainer_args)
    callbacks[:0] = memory
    if speed is not None:
        callbacks.insert(0, speed)  # first: the batch is channels_last before any other callback sees it
    trainer: L.Trainer = hydra.utils.instantiate(trainer_args, **trainer_overrides)

    if trainer.is_global_zero:
        OmegaConf.save(model.imtrans_config, out_dir / "config.yaml")

    start = time.time()
    if "fit" in cfg.task:
        last = next((cb for cb in callbacks if isinstance(cb, LastCheckpoint)), None)
        # Ctrl-C / SIGTERM are held only where LastCheckpoint can act on them (finish the
        # iteration, save, stop); without it they keep their usual effect (Lightning's).
        with last.catching_signals() if last is not None else contextlib.nullcontext(), _lightning_sigterm():
            trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=not cfg.get("trust"))
    fit_seconds = time.time() - start
    results: dict[str, Any] = {}
    if "fit" in cfg.task:
        # the scores of the evaluations during fit: the last one's (val/...) and the best one's
        # (best/val/..., best/iteration); trainer.test resets them
        fit_scores = _scalar_metrics(trainer.callback_metrics)
        results.update({k: v for k, v in fit_scores.items() if k.startswith(("val/", "best/"))})
        # what the best was chosen by, and on which split (test: optimistic as a test score)
        selection = evaluation.selection_record(fit_scores, datamodule) if evaluation is not None else None
        if selection is not None:
            results["selection"] = selection
    # From here to metrics.json a signal lets the test finish its current block of inputs (the
    # Evaluation callback polls it) and the scores computed so far are written.
    doing = "finishing this block of the test; metrics.json keeps the scores computed so far"
    with STOP.catching(doing):
        interrupted = STOP.requested or any(getattr(cb, "interrupted", False) for cb in callbacks)
        stopped_by = STOP.signum if STOP.requested else signal.SIGINT if interrupted else None
        if interrupted:
            print(
                f"imtrans: stopped by {signal_label(stopped_by)} at iteration {model.iteration}; "
                f"resume with ckpt_path={_last_ckpt(callbacks)}",
                flush=True,
            )
        elif "test" in cfg.task:
            _resync_csv_loggers(trainer, loggers)
            ckpt = ckpt_path if cfg.task == "test" else None
            with _lightning_sigterm():
                trainer.test(
                    model,
                    datamodule=datamodule,
                    ckpt_path=ckpt,
                    verbose=False,
                    weights_only=not cfg.get("trust"),
                )
            if STOP.requested:
                stopped_by = STOP.signum
                print(
                    f"imtrans: test stopped by {signal_label(stopped_by)}; metrics.json holds the scores "
                    "computed before it",
                    flush=True,
                )
        results.update(_scalar_metrics(trainer.callback_metrics))
        results.update(iteration=model.iteration, fit_seconds=round(fit_seconds, 2))
        if stopped_by is not None:
            results["stopped_by"] = signal_label(stopped_by)
        if evaluation is not None:
            results["metrics_protocol"] = evaluation.protocol_record()
            if any(k.endswith(("/fid", "/kid")) for k in results):
                # the network behind the FID/KID numbers, beside them (protocols differ: stargan_v2
                # uses torchvision's ImageNet Inception, the others torch-fidelity's)
                results["fid_features"] = results["metrics_protocol"].get("fid_features")

        if trainer.is_global_zero:
            _write_json(out_dir / "metrics.json", results)
            _wandb_summary(loggers, results)
            print(_summary(out_dir, results), flush=True)
        stopped_by = STOP.signum if STOP.requested else stopped_by  # a signal while writing counts too
    if stopped_by == signal.SIGTERM:
        raise Terminated()
    metric = cfg.get("optimized_metric")
    if metric:
        if f"best/{metric}" in results:  # the monitored score: its best value over the run
            return float(results[f"best/{metric}"])
        if metric not in results:
            raise KeyError(f"optimized_metric={metric!r} was not computed; computed: {sorted(results)}")
        return float(results[metric])
    return None


def _wandb_dir(loggers: list) -> None:
    """Point ``WANDB_DIR`` at the W&B logger's ``save_dir`` (when the user has not set it).

    Under the fork launcher the run's files (media panels among them) otherwise land in
    ``./wandb`` of the working directory, away from its record file in ``save_dir``: W&B
    0.31 resolves its root directory from the environment there, not from ``dir``.
    """
    from lightning.pytorch.loggers import WandbLogger

    for logger in loggers:
        if isinstance(logger, WandbLogger) and logger.save_dir and "WANDB_DIR" not in os.environ:
            os.environ["WANDB_DIR"] = str(Path(logger.save_dir).resolve())


def _wandb_summary(loggers: list, results: dict) -> None:
    """The final scores in the W&B run's summary (what its run table shows)."""
    from lightning.pytorch.loggers import WandbLogger

    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.summary.update(
                {k: v for k, v in results.items() if isinstance(v, (int, float))}
            )


def _last_ckpt(callbacks: list) -> str | None:
    from imtrans.callbacks import LastCheckpoint

    return next((str(cb.last_path) for cb in callbacks if isinstance(cb, LastCheckpoint)), None)


def _summary(out_dir: Path, results: dict) -> str:
    how = f"stopped by {results['stopped_by']}" if results.get("stopped_by") else "finished"
    lines = [
        f"imtrans: run {how} after {results['iteration']} iterations ({results['fit_seconds']} s of fit)"
    ]
    for name in ("config.yaml", "checkpoints/last.ckpt", "samples", "metrics.json"):
        if (out_dir / name).exists():
            lines.append(f"  {name:<22} {out_dir / name}")
    offline = sorted((out_dir / "wandb").glob("offline-run-*"))
    if offline:  # W&B's own banner saying so is silenced (imtrans.run.quiet_third_parties)
        lines.append(f"  {'wandb (offline)':<22} upload with: wandb sync {out_dir / 'wandb'}/offline-run-*")
    scores = {k: v for k, v in results.items() if k.startswith(("val/", "test/", "best/"))}
    for key, value in sorted(scores.items()):
        lines.append(f"  {key:<22} {value:.4f}" if isinstance(value, float) else f"  {key:<22} {value}")
    return "\n".join(lines)


#: what a run writes before its first iteration: Hydra's record, the resolved config, the log
_BEFORE_WORK = frozenset({".hydra", "config.yaml", "run.log"})


def _remove_unused_run_folder(out_dir: Path, name: str) -> None:
    """Remove the run folder of a run stopped by a mistake before any work (and its ``<name>``
    folder when nothing else is in it): it holds no result, and an empty run would be the newest
    of its name for ``ckpt_path=auto`` and for people looking for their last run."""
    import shutil

    try:
        if not out_dir.is_dir() or not {p.name for p in out_dir.iterdir()} <= _BEFORE_WORK:
            return
        logging.shutdown()  # Hydra's handler of run.log
        shutil.rmtree(out_dir)
        if out_dir.parent.name == name and not any(out_dir.parent.iterdir()):
            out_dir.parent.rmdir()
    except OSError:  # a folder that cannot be removed is only left behind
        pass


def _kept(cfg: DictConfig, what: str) -> str:
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    if not last.exists():
        return "no checkpoint was written yet"
    return f"{what} is {last} (resume with ckpt_path=auto or ckpt_path={last})"


def _dead_rank(err: BaseException | None) -> str | None:
    """What to say when ``err`` reports a DDP worker that died (the fork/spawn launchers raise
    ``ProcessExitedException`` in the launching process; a rank whose peer vanished gets a
    distributed error once the collective fails or times out)."""
    import torch.distributed as dist
    from torch.multiprocessing import ProcessExitedException, ProcessRaisedException

    from imtrans.errors import shorten

    lost = ("Connection reset by peer", "Connection closed by peer", "DistBackendError", "timed out")
    while err is not None:
        if isinstance(err, ProcessExitedException):
            how = f"signal {err.signal_name}" if err.signal_name else f"exit code {err.exit_code}"
            return (
                f"DDP rank {err.error_index} (pid {err.error_pid}) died ({how}); the other ranks were stopped"
            )
        if isinstance(err, ProcessRaisedException) and any(word in str(err) for word in lost):
            # the survivor's collective failed before the launcher saw its peer die
            return (
                f"DDP rank {err.error_index} lost the connection to another rank, which died or hung; "
                "the other ranks were stopped"
            )
        if isinstance(err, dist.DistError):
            rank = dist.get_rank() if dist.is_initialized() else "?"
            first = shorten(str(err).strip().splitlines()[0], 200) if str(err).strip() else type(err).__name__
            return f"a collective failed on rank {rank}: another rank died or hung ({first})"
        err = err.__cause__ or err.__context__
    return None


def _user_error(err: BaseException | None) -> tuple[str, BaseException] | None:
    """(label, cause) when ``err`` comes from the user's files (also when Hydra's
    ``instantiate`` wrapped it): bad data or missing pretrained weights, reported in one
    line without a traceback. A configuration that cannot work (``ConfigError``) likewise."""
    from imtrans.checks import resolver_error
    from imtrans.data import DataError
    from imtrans.errors import CheckpointError, ConfigError, OutputError
    from imtrans.losses.perceptual import MissingWeightsError
    from imtrans.pretrained import WeightsMismatchError

    while err is not None:
        resolved = resolver_error(err)  # a config value an interpolation cannot resolve
        if resolved is not None:
            return "config error", resolved
        if isinstance(err, CheckpointError):
            return "checkpoint error", err
        if isinstance(err, DataError):
            return "data error", err
        if isinstance(err, ConfigError):
            return "config error", err
        if isinstance(err, OutputError):
            return "output error", err
        if isinstance(err, WeightsMismatchError):
            return "weights mismatch", err
        if isinstance(err, MissingWeightsError):
            return "missing weights", err
        err = err.__cause__
    return None


def main() -> float | None:
    """``python -m imtrans.run`` / ``imtrans``: Hydra's entry, after the output folder check."""
    from imtrans.checks import check_command_line

    _check_argv_output_dirs(sys.argv[1:])
    mistake = check_command_line(sys.argv[1:])
    if mistake is not None:
        print(f"imtrans: config error: {mistake}", file=sys.stderr)
        sys.exit(2)
    return _main()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def _main(cfg: DictConfig) -> float | None:
    from imtrans.methods.base import NonFiniteLossError

    try:
        return train(cfg)
    except NonFiniteLossError as err:
        print(f"imtrans: training stopped: {err}; {_kept(cfg, 'the last good checkpoint')}", file=sys.stderr)
        sys.exit(3)
    except Exception as err:
        dead = _dead_rank(err)
        if dead is not None:  # a DDP worker died (killed, out of memory): the launcher stopped the rest
            print(f"imtrans: training stopped: {dead}; {_kept(cfg, 'the last checkpoint')}", file=sys.stderr)
            sys.exit(4)
        found = _user_error(err)
        if found is None:
            raise
        _remove_unused_run_folder(Path(cfg.paths.output_dir), str(cfg.get("name")))
        # The user's files are at fault, not the code: one line naming the file and the problem.
        print(f"imtrans: {found[0]}: {found[1]}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
