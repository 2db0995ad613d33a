"""``TranslationModule``: the contract every method implements (README.md, "Adding a method").

A method subclasses it and provides:

- ``optimizer_groups()``: ``{name: parameters}`` in the order its optimizers are created;
- ``training_step(batch, batch_idx)``: the official update sequence, each update through
  ``self.optimize(name, loss_fn)``;
- ``generate(x, direction, style)``: one translation of a batch (used by ``translate``);
- ``generator_modules()``: the modules used at inference (EMA averages them, export saves them);
- ``inference_spec()``, where the base declaration does not fit: what inference takes and gives
  (:mod:`imtrans.methods.spec`), which every tool reads.

Everything else (optimizer and scheduler construction from config, the iteration counter,
loss weighting and logging, validation/test metrics, the inference API) lives here, so a
method file only holds the method.
"""

from __future__ import annotations

import contextlib
import copy
import random
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import nn

from imtrans.errors import ConfigError, shorten
from imtrans.losses import weighted_sum
from imtrans.methods.spec import (
    DIRECTIONS,
    InferenceSpec,
    Task,
    directional_tasks,
    generator_size_multiple,
)
from imtrans.precision import PerUpdateScalerPrecision, use_imtrans_precision


def _rng_devices() -> list[int]:
    return list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []


def _get_rng_states() -> dict:
    # numpy's state as tensors and numbers: checkpoints load with ``weights_only=True``.
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    numpy_state = (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached))
    states = {"torch": torch.get_rng_state(), "numpy": numpy_state, "python": random.getstate()}
    if torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


class _Unscaled:
    """``update_scope``'s object at precisions without a gradient scaler."""

    skipped = False

    @staticmethod
    def scale(loss: torch.Tensor) -> torch.Tensor:
        return loss

    @staticmethod
    def unscale_(optimizer) -> None:
        pass


_UNSCALED = _Unscaled()


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite; the message names the term and the iteration."""


def _plain(obj: Any) -> Any:
    """OmegaConf containers to plain Python (configs arrive as DictConfig from Hydra)."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(obj, (DictConfig, ListConfig)):
            return OmegaConf.to_container(obj, resolve=True)
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        pass
    return obj


#: Words of the errors torch raises for an input too small (or of a side not divisible) for a
#: network: kernels larger than the map, norms over one element, skips that do not line up.
_SIZE_ERROR_WORDS = (
    "spatial element", "value per channel", "Kernel size", "kernel size", "Padding size",
    "Output size is too small", "must match the size", "Sizes of tensors must match",
    "shapes cannot be multiplied", "input size", "too small",
)  # fmt: skip


def _size_error(call: Callable[[], Any]) -> str | None:
    """The message of a size error that ``call()`` raises (first line), None if it runs or fails
    otherwise."""
    try:
        call()
    except (RuntimeError, ValueError) as err:
        text = " ".join(str(err).split())
        if any(word in text for word in _SIZE_ERROR_WORDS):
            return shorten(text, 200)
    except Exception:  # noqa: BLE001 - not a size error: training reports it as it comes
        pass
    return None


def _training_image_size(datamodule) -> tuple[int, int] | None:
    """(height, width) of the first training item's images, or None when the data module has no
    training set to read (a test-only run)."""
    get = getattr(datamodule, "dataset", None)
    if get is None:
        return None
    try:
        item = get("train", augment=True)[0]
    except Exception:  # noqa: BLE001 - the data module reports its own errors when it loads
        return None
    values = (
        item.values() if isinstance(item, Mapping) else item if isinstance(item, list | tuple) else [item]
    )
    for value in values:
        if torch.is_tensor(value) and value.dim() >= 2 and value.is_floating_point():
            return int(value.shape[-2]), int(value.shape[-1])
    return None


#: The layout of the checkpoints this imtrans writes (the ``imtrans_*`` entries and what they
#: hold); raised when a change makes older readers misread them. Read by
#: :func:`imtrans.load.read_checkpoint`, which refuses a file of a higher number.
CHECKPOINT_FORMAT = 1


class TranslationModule(L.LightningModule):
    """Base class of every translation method (manual optimisation, one step helper).

    Args:
        loss: the ``loss`` config group: ``{"weights": {term: weight, ...}, ...}`` plus
            method-specific settings such as ``gan_mode``.
        optimizer: a factory ``params -> torch.optim.Optimizer`` (a Hydra ``_partial_``).
        optimizer_overrides: per-optimizer keyword overrides, ``{name: {lr: ...}}``.
        scheduler: a factory ``optimizer -> LRScheduler`` or None (constant rate).
        scheduler_interval: ``epoch`` or ``iteration``: when schedulers step.
        detect_nonfinite: stop on a NaN/Inf loss term (one device sync per update).
        directions: the directions this model translates, a subset of the method's (e.g. an
            imported CycleGAN generator of one direction); None: all of them.
        init_from: a run directory or checkpoint whose weights a new training run starts from
            (fine-tuning: iteration 0, fresh optimizers and schedulers); see ``setup``.
        augment: the ``augment`` config group (:mod:`imtrans.augment`): what every
            discriminator input passes through in ``discriminate``; None: nothing.
    """

    #: True for methods whose output depends on a sampled or encoded style code.
    is_multimodal: bool = False
    #: Translation directions the method supports, among ``a2b`` and ``b2a``.
    directions: tuple[str, ...] = ("a2b", "b2a")
    #: Networks (attribute names) that ``trainer.compile`` leaves eager: those the method
    #: differentiates twice (an R1 penalty's create_graph=True gradient), which torch.compile's
    #: AOT autograd cannot do.
    eager_modules: tuple[str, ...] = ()
    #: What ``translate`` takes: ``image`` (N x C x H x W in [-1, 1]) or ``labels`` (int64
    #: N x H x W class ids, or ``{"label", "inst"}`` with instance ids); read by the tools.
    input_kind: str = "image"

    def __init__(
        self,
        *,
        loss: Mapping[str, Any],
        optimizer: Callable[..., torch.optim.Optimizer],
        optimizer_overrides: Mapping[str, Mapping[str, Any]] | None = None,
        scheduler: Callable[..., Any] | None = None,
        scheduler_interval: str = "epoch",
        detect_nonfinite: bool = True,
        directions: Iterable[str] | None = None,
        init_from: str | None = None,
        augment: nn.Module | None = None,
    ):
        super().__init__()
        #: the augmentation of every discriminator input (``discriminate``); its state (ADA's
        #: p and statistics) is in the state dict under ``augment.``
        self.augment = augment
        if directions is not None:
            directions = tuple(directions)
            extra = [d for d in directions if d not in type(self).directions]
            if not directions or extra:
                raise ConfigError(
                    f"model.directions={list(directions)}: {type(self).__name__} translates {type(self).directions}"
                )
            # an instance attribute: the class's tuple stays the method's full set
            self.directions = directions
        self.init_from = init_from
        self._initialised_from: str | None = None
        self.detect_nonfinite = detect_nonfinite
        self.automatic_optimization = False
        loss = _plain(loss)
        self.loss_cfg = dict(loss)
        self.loss_weights: dict[str, float] = {k: float(v) for k, v in loss.get("weights", {}).items()}
        self._optimizer_factory = optimizer
        self._optimizer_overrides = _plain(optimizer_overrides) or {}
        self._scheduler_factory = scheduler
        if scheduler_interval not in ("epoch", "iteration"):
            raise ValueError(f"scheduler_interval must be 'epoch' or 'iteration', got {scheduler_interval!r}")
        self.scheduler_interval = scheduler_interval
        self._optimizer_names: list[str] = []
        # A buffer, so the counter is saved in checkpoints, restored on resume and carried
        # back from spawned/forked DDP workers together with the weights.
        self.register_buffer("_iteration", torch.zeros((), dtype=torch.long))
        #: generator EMA copies (``enable_ema``) and whether inference uses them.
        self.ema: nn.ModuleDict | None = None
        self.use_ema = True
        #: the resolved run config, set by ``imtrans.run`` and stored in checkpoints so
        #: ``imtrans.load_model`` can rebuild the module without the config files.
        self.imtrans_config: dict | None = None
        self._pending_rng: dict | None = None
        # Scheduler bookkeeping, saved in checkpoints (see ``_step_due_schedulers``): the
        # optimizers whose fp16 update was skipped in this iteration, and the epochs whose
        # end the epoch schedulers have stepped for.
        self._skipped: set[str] = set()
        self._epochs_scheduled = 0
        #: set by a callback that ends the run before the next batch (``IterationLimit``)
        self.skip_batches = False
        self._finished = False  # finish_training has run
        #: the training data's domain names (``setup``), kept in checkpoints (``domain_names``)
        self._domain_names: list[str] | None = None

    # ------------------------------------------------------------------ to implement
    def optimizer_groups(self) -> dict[str, Iterable[nn.Parameter]]:
        """``{name: parameters}``, one entry per optimizer, in creation order."""
        raise NotImplementedError

    def generator_modules(self) -> dict[str, nn.Module]:
        """The modules used at inference, by name."""
        raise NotImplementedError

    def generate(self, x: torch.Tensor, direction: str, style: torch.Tensor | None = None) -> torch.Tensor:
        """One translation: N x C x H x W in [-1, 1] -> N x C' x H x W in [-1, 1]."""
        raise NotImplementedError

    # ------------------------------------------------------------------ discriminators
    #: the score between "real" and "fake" of the method's discriminator outputs, for ADA's
    #: r_t = E[sign(D(real) - boundary)]; None: 0.5 when ``self.gan`` is an LSGAN (targets 0
    #: and 1), else 0 (logits: BCE, hinge). A method with other targets sets it.
    score_boundary: float | None = None

    def discriminate(
        self,
        D: Callable[..., Any],
        *parts: torch.Tensor,
        real: bool = False,
        maps: Iterable[int] = (),
        scores: Callable[[Any], Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """``D(cat(augment(parts), 1), **kwargs)``: every discriminator call of every method
        goes through here, real and fake, in the D step and in the G step.

        Args:
            D: the discriminator (or any callable on N x C x H x W).
            parts: the pieces of its input, each N x C_i x H x W (e.g. pix2pix's condition A
                and image B): augmented together (one random transform, the same geometry for
                all), then concatenated along channels in this order, as the method did.
            real: the parts are training images (a D-step call on reals): their scores feed
                ADA's r_t. Pass it once per real batch and discriminator.
            maps: indices of parts that are label maps (one-hot classes, boundaries): geometry
                only, nearest neighbours, no colour.
            scores: ``D's output -> score tensor(s)`` for r_t, where the output is not a tensor,
                a list of them, or a list of per-scale feature lists ending in the score.
            kwargs: passed to ``D`` (StarGAN v2's domain labels).

        Returns D's output, unchanged. A D input that must stay untouched (codes, not images)
        is passed to D directly, with a one-line comment at the call.
        """
        if self.augment is not None:
            parts = self.augment(*parts, maps=maps)
        out = D(parts[0] if len(parts) == 1 else torch.cat(parts, 1), **kwargs)
        if real and self.augment is not None and self.augment.observes_reals:
            from imtrans.augment import realness_scores

            self.augment.observe(
                realness_scores(out if scores is None else scores(out)), self._score_boundary()
            )
        return out

    def _score_boundary(self) -> float:
        if self.score_boundary is not None:
            return float(self.score_boundary)
        return 0.5 if getattr(getattr(self, "gan", None), "mode", None) == "lsgan" else 0.0

    def _step_augment(self, batch) -> None:
        """The iteration that has just ended, for the augmentation's schedule (ADA's p), at the
        start of the next batch (as the schedulers: a checkpoint written at the end of a batch
        holds the step pending, and the resumed run takes it where the uninterrupted run does)."""
        if self.augment is None or self.iteration == 0:
            return
        first = (
            next((v for v in batch.values() if torch.is_tensor(v)), None)
            if isinstance(batch, Mapping)
            else None
        )
        n = int(first.shape[0]) if first is not None else 0
        world = self.trainer.world_size if self._trainer is not None else 1
        values = self.augment.step(n * world)
        if values:
            self.log_dict(values, on_step=True, on_epoch=False)

    # ------------------------------------------------------------------ iteration counter
    @property
    def iteration(self) -> int:
        """Batches trained on so far (not Lightning's ``global_step``, which counts optimizer steps)."""
        return int(self._iteration.item())

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self):
        groups = self.optimizer_groups()
        self._optimizer_names = list(groups)
        optimizers = [
            self._optimizer_factory(list(params), **self._optimizer_overrides.get(name, {}))
            for name, params in groups.items()
        ]
        unknown = set(self._optimizer_overrides) - set(groups)
        if unknown:
            raise KeyError(
                f"model.optimizer_overrides names {sorted(unknown)}; optimizers are {list(groups)}"
            )
        if self._scheduler_factory is None:
            return optimizers
        return optimizers, [self._scheduler_factory(opt) for opt in optimizers]

    def opt(self, name: str) -> torch.optim.Optimizer:
        """The (Lightning-wrapped) optimizer called ``name`` in ``optimizer_groups``."""
        if not self._optimizer_names:
            self._optimizer_names = list(self.optimizer_groups())
        opts = self.optimizers()
        opts = opts if isinstance(opts, list) else [opts]
        return opts[self._optimizer_names.index(name)]

    @contextlib.contextmanager
    def toggled(self, *names: str):
        """Freeze every parameter that none of the optimizers ``names`` updates.

        Lightning's ``toggled_optimizer`` for one or several optimizers (BicycleGAN steps G
        and E together); ``requires_grad`` flags are restored on exit.
        """
        keep = {id(p) for n in names for group in self.opt(n).param_groups for p in group["params"]}
        frozen = [p for p in self.parameters() if p.requires_grad and id(p) not in keep]
        for p in frozen:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p in frozen:
                p.requires_grad_(True)

    @contextlib.contextmanager
    def update_scope(self, *names: str):
        """One update of the optimizers ``names`` (what ``optimize`` opens; custom update code
        such as DRIT's opens it itself).

        Under ``16-mixed`` (:class:`imtrans.precision.PerUpdateScalerPrecision`) the update has
        its own gradient scaler: ``manual_backward`` inside scales the loss with it, the steps
        unscale and skip on inf/NaN gradients, and the scaler is updated on exit. Yields an
        object with ``unscale_(opt)`` (call it before clipping) and ``scale(loss)`` (for a
        ``torch.autograd.grad`` made by hand); both do nothing at other precisions.
        A skipped update does not step its optimizers' iteration-interval schedulers.
        """
        plugin = self._trainer.precision_plugin if self._trainer is not None else None
        if not isinstance(plugin, PerUpdateScalerPrecision):
            yield _UNSCALED
            return
        update = plugin.open_update("+".join(names), [self.opt(n) for n in names])
        try:
            yield update
        except BaseException:
            plugin.abandon_update(update)
            raise
        plugin.close_update(update)
        if update.skipped:
            self._skipped.update(names)
        self.log(f"amp/scale_{update.key}", update.scale_after, on_step=True, on_epoch=False)

    def optimize(
        self,
        name: str | tuple[str, ...],
        loss_fn: Callable[[], torch.Tensor],
        *,
        clip_norm: float | None = None,
    ) -> torch.Tensor:
        """One update: toggle, forward, zero, backward, clip, step, untoggle.

        ``name`` is an optimizer name, or a tuple of names updated together from one loss.
        ``loss_fn`` computes the loss *after* the toggle, so parameters of the other
        optimizers (e.g. the discriminators during a generator update) are frozen while the
        graph is built and receive no gradients. Returns the detached loss.
        """
        names = (name,) if isinstance(name, str) else tuple(name)
        opts = [self.opt(n) for n in names]
        with self.toggled(*names), self.update_scope(*names) as update:
            loss = loss_fn()
            for opt in opts:
                opt.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            for opt in opts:
                if clip_norm is not None:
                    update.unscale_(opt)  # clip the true gradients, not the fp16-scaled ones
                    self.clip_gradients(opt, gradient_clip_val=clip_norm, gradient_clip_algorithm="norm")
                opt.step()
        return loss.detach()

    def weigh(self, terms: Mapping[str, torch.Tensor], prefix: str = "train") -> torch.Tensor:
        """Weighted total of named loss terms (weights from ``loss.weights``); logs each term.

        Terms are summed in float32 (under bf16/fp16 autocast too). A NaN or infinite term
        raises ``NonFiniteLossError`` before any backward, so the weights and the last
        checkpoint stay as they were.
        """
        terms = {k: v.float() for k, v in terms.items()}
        if (
            self.detect_nonfinite
            and not torch.isfinite(torch.stack([v.detach() for v in terms.values()])).all()
        ):
            name, value = next((k, v) for k, v in terms.items() if not torch.isfinite(v))
            raise NonFiniteLossError(f"loss term '{name}' is {value.item()} at iteration {self.iteration}")
        total = weighted_sum(terms, self.loss_weights)
        self.log_dict({f"{prefix}/{k}": v.detach() for k, v in terms.items()}, on_step=True, prog_bar=False)
        return total

    def on_fit_start(self) -> None:
        # Lightning's 16-mixed has one scaler for all optimizers: one per update instead; and
        # its autocast casts every weight again at every call: once per update instead.
        use_imtrans_precision(self.trainer)

    def on_train_batch_start(self, batch, batch_idx) -> int | None:
        if self.skip_batches:  # the run's length is reached already (IterationLimit)
            return -1  # Lightning: skip the rest of the epoch; should_stop ends the fit
        if self._pending_rng is not None:  # first iteration after a resume
            _set_rng_states(self._pending_rng)
            self._pending_rng = None
        self._step_due_schedulers()
        self._step_augment(batch)
        # Counted at the start, so that during training_step and in every callback's
        # on_train_batch_end ``iteration`` includes the batch being trained on.
        self._iteration += 1

    def finish_training(self) -> None:
        """Work at the end of training whose results the final checkpoint must hold (pix2pixHD
        clusters its features here). Called once, when the last batch of the run has trained
        (``iters`` reached, the last epoch, Ctrl-C), before ``last.ckpt`` is written
        (``imtrans.callbacks.LastCheckpoint``), or else at the end of fit."""
        self._finished = True

    def on_train_end(self) -> None:
        # without a LastCheckpoint callback; not for a resumed run that had nothing to train
        if not self._finished and not self.skip_batches:
            self.finish_training()

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        # the progress bar shows the run's iteration (the epoch's batch index restarts)
        self.log("it", float(self.iteration), prog_bar=True, logger=False, on_step=True, on_epoch=False)

    def _step_due_schedulers(self) -> None:
        """Step the schedulers for the iteration (or epoch) that has just ended.

        They step at the start of the next batch rather than at the end of this one because
        callbacks run before the module's ``on_train_batch_end``/``on_train_epoch_end``: a
        ``last.ckpt`` written there would miss the step, and a resumed run would be one step
        behind. Deferred, the step is pending in every checkpoint and taken by the resumed run
        exactly where the uninterrupted run takes it.

        Iteration schedulers skip the step of an optimizer whose update the fp16 scaler
        skipped (PyTorch's rule: no ``scheduler.step()`` for an ``optimizer.step()`` that did
        not happen). Epoch schedulers always step: an epoch is not one update.
        """
        scheds = self.lr_schedulers()
        scheds = [] if scheds is None else scheds if isinstance(scheds, list) else [scheds]
        names = self._optimizer_names or list(self.optimizer_groups())
        with warnings.catch_warnings():
            # The first batch of a resumed run takes the step pending from before the stop,
            # before this process has called optimizer.step(): PyTorch's order warning is moot.
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` before")
            if self.scheduler_interval == "iteration":
                if self.iteration > 0:
                    for name, sched in zip(names, scheds):
                        if name not in self._skipped:
                            sched.step()
            else:
                while self._epochs_scheduled < self.trainer.current_epoch:
                    for sched in scheds:
                        sched.step()
                    self._epochs_scheduled += 1
        self._skipped.clear()

    # ------------------------------------------------------------------ inference
    # ------------------------------------------------------------------ generator EMA
    def enable_ema(self) -> None:
        """Create ``self.ema``: frozen copies of ``generator_modules()`` that
        ``imtrans.callbacks.GeneratorEMA`` averages. They live in the module (state dict keys
        ``ema.<name>.*``), so checkpoints carry them and DDP ignores them (no gradients)."""
        if self.ema is None:
            self.ema = nn.ModuleDict(
                {name: copy.deepcopy(m).requires_grad_(False) for name, m in self.generator_modules().items()}
            )

    @contextlib.contextmanager
    def using_ema(self):
        """Within the block the EMA copies stand in for the generator modules (when
        ``self.ema`` exists and ``self.use_ema``). ``generator_modules()`` keys must be the
        attribute names of the modules, which is how the swap finds them."""
        if self.ema is None or not self.use_ema:
            yield
            return
        live = {name: getattr(self, name) for name in self.ema}
        try:
            for name, module in self.ema.items():
                setattr(self, name, module)
            yield
        finally:
            for name, module in live.items():
                setattr(self, name, module)

    # ------------------------------------------------------------------ inference contract
    def inference_spec(self) -> InferenceSpec:
        """What inference takes and gives (:mod:`imtrans.methods.spec`): every tool reads this.

        The base declaration: one task per direction of ``self.directions`` (channels from the
        stored data config), ``input_kind``, ``num_samples`` meaningful when ``is_multimodal``,
        sides a multiple of 2**(the generators' stride-2 down-samplings). A method whose
        inference takes more (a style code, references, target domains, attention maps, a fixed
        size) returns this with those fields replaced."""
        data = (self.imtrans_config or {}).get("data") or {}
        nc = {"A": int(data.get("input_nc", 3) or 3), "B": int(data.get("output_nc", 3) or 3)}
        return InferenceSpec(
            tasks=directional_tasks(self.directions, nc),
            input_kind=self.input_kind,
            samples=bool(self.is_multimodal),
            size_multiple=generator_size_multiple(self.generator_modules()),
            dataset=data.get("name") or None,
        )

    def sample_style(self, n: int, task: Task) -> torch.Tensor:
        """``n`` random codes for ``translate(style=...)`` of ``task`` (the spec's ``style``),
        drawn from N(0, I) with torch's global generator, on the module's device."""
        style = self.inference_spec().style
        if style is None or style.per_pixel:
            raise ValueError(f"{type(self).__name__} takes no style vector")
        return torch.randn(n, style.dim, device=self.device)

    def encode_reference(self, images: torch.Tensor, task: Task) -> torch.Tensor:
        """Codes (N x style dim) of ``images`` of ``task``'s target domain, in the space of
        ``translate(style=...)``; methods whose spec says ``Style(encodable=True)`` implement it."""
        raise NotImplementedError(f"{type(self).__name__} does not encode references into style codes")

    def style_clusters(self, task: Task) -> dict[int, torch.Tensor]:
        """``{class id: k x dim centres}`` among which each instance's code is chosen, for methods
        whose spec says ``Style(per_pixel=True, clusters=True)``: a tool fills every instance's
        pixels with the centre it chose for the instance (N x dim x H x W) and passes that map as
        ``translate(style=...)``; classes without centres are absent (their code is zeros)."""
        raise NotImplementedError(f"{type(self).__name__} declares no style clusters")

    def domain_names(self, n: int) -> tuple[str, ...]:
        """Names of the ``n`` domains of a multi-domain model, in index order: the training data's
        folder names (kept in the checkpoint), else ``data.domains`` of the stored config, else
        ``0 .. n-1``."""
        names = self._domain_names
        if not names or len(names) != n:
            names = ((self.imtrans_config or {}).get("data") or {}).get("domains") or []
        if not names or len(names) != n:
            names = [str(i) for i in range(n)]
        return tuple(str(x) for x in names)

    # ------------------------------------------------------------------ inference
    @contextlib.contextmanager
    def inference_mode(self):
        """EMA weights if any, generators in their inference mode, no gradients."""
        with self.using_ema(), torch.no_grad(), self.generators_in_inference_mode():
            yield

    @contextlib.contextmanager
    def generators_in_inference_mode(self):
        """Generators in eval mode; the previous train/eval flags are restored."""
        modules = list(self.generator_modules().values())
        flags = [m.training for m in modules]
        try:
            for m in modules:
                m.eval()
            yield
        finally:
            for m, flag in zip(modules, flags):
                m.train(flag)

    def translate(
        self,
        x: torch.Tensor,
        direction: str = "a2b",
        *,
        style: torch.Tensor | None = None,
        reference: torch.Tensor | None = None,
        num_samples: int = 1,
    ) -> torch.Tensor:
        """Translate a batch.

        Args:
            x: N x C x H x W in [-1, 1] (C = the source domain's channels).
            direction: ``a2b`` or ``b2a`` (one of ``self.directions``).
            style: N x style_dim codes (multimodal methods; ignored by deterministic ones).
            reference: N x C' x H x W images whose style is used (multimodal methods).
            num_samples: S outputs per input.

        Returns:
            N x C' x H x W in [-1, 1] when ``num_samples == 1``, else N x S x C' x H x W.
            Deterministic methods repeat their output S times (pix2pix's dropout noise,
            when kept at test time as in the paper, makes the samples differ).
        """
        self.check_direction(direction)
        if reference is not None and not self.is_multimodal:
            raise ValueError(f"{type(self).__name__} is deterministic: it takes no reference image")
        x = x.to(self.device)
        with self.inference_mode():
            outs = [self.generate(x, direction, style) for _ in range(num_samples)]
        return outs[0] if num_samples == 1 else torch.stack(outs, 1)

    def attention_maps(self, x: Any, direction: str) -> dict[str, torch.Tensor] | None:
        """Where the method looks, for the sample grids: ``{name: (map, over)}`` with maps
        N x 1 x h x w of any range and size (each is scaled to [0, 1] per image and upsampled
        where it is shown) and ``over`` ``"input"`` or ``"output"``: the image it is drawn over
        (a generator's attention on its input, a discriminator's on the translation). For ``x``
        as ``translate`` takes it; None (the default) for methods without attention."""
        return None

    def check_direction(self, direction: str) -> None:
        """A ValueError unless this model translates ``direction``."""
        if direction in self.directions:
            return
        if direction in type(self).directions:  # restricted by ``model.directions``
            raise ValueError(
                f"this {type(self).__name__} translates {', '.join(self.directions)} only (model.directions): "
                f"it holds no trained generator for {direction}"
            )
        raise ValueError(f"{type(self).__name__} translates {self.directions}, not {direction!r}")

    def grid_inputs(self, batch: Mapping[str, Any], direction: str) -> tuple[Any, torch.Tensor] | None:
        """(what ``translate`` takes, the N x C x H x W image in [-1, 1] a sample grid shows as
        the input) for ``direction`` in ``batch``, or None when the batch lacks its source.
        Methods whose input is not an image (pix2pixHD's label maps) override it."""
        src, _ = DIRECTIONS[direction]
        if src not in batch:
            return None
        return batch[src], batch[src]

    # ------------------------------------------------------------------ evaluation
    def evaluation_metrics(self, batch: Mapping[str, Any], direction: str, fake: torch.Tensor) -> dict:
        """Cheap per-batch scores logged under ``val/`` and ``test/``.

        Paired data: L1 (on the [-1, 1] scale) and PSNR (on [0, 1]) against the target.
        Methods add their own (CycleGAN: cycle reconstruction). The standard metrics (FID,
        KID, LPIPS) live in callbacks, not here.
        """
        src, tgt = DIRECTIONS[direction]
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if not getattr(datamodule, "paired", False) or tgt not in batch:
            return {}
        target = batch[tgt].to(fake.dtype)
        mse01 = ((fake - target) / 2).pow(2).flatten(1).mean(1).clamp_min(1e-10)
        return {"l1": (fake - target).abs().mean(), "psnr": (10 * torch.log10(1.0 / mse01)).mean()}

    def _evaluate(self, batch: Mapping[str, Any], stage: str) -> None:
        # A forked random stream: evaluation (dropout, sampled styles) never shifts training's.
        with torch.random.fork_rng(devices=_rng_devices()):
            self._evaluate_directions(batch, stage)

    def _evaluate_directions(self, batch: Mapping[str, Any], stage: str) -> None:
        for direction in self.directions:
            # what translate takes of this batch: the source images, or a label-map method's
            # {"label", "inst"} (``grid_inputs``)
            given = self.grid_inputs(batch, direction)
            if given is None:
                continue
            fake = self.translate(given[0], direction)
            scores = self.evaluation_metrics(batch, direction, fake)
            n = fake.shape[0]
            self.log_dict(
                {f"{stage}/{direction}/{k}": v for k, v in scores.items()},
                batch_size=n,
                sync_dist=True,
                on_epoch=True,
            )

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, "val")

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, "test")

    # ------------------------------------------------------------------ configuration
    def train_data_schedule(self) -> list[tuple[int, dict[str, Any]]]:
        """Changes of the training data's preprocessing over the run, which the data module
        applies: ``[(first_epoch, {setting: value}), ...]``, each from that epoch (0-based) on,
        the settings being those of :class:`imtrans.data.transforms.SpatialTransform`
        (``preprocess``, ``load_size``, ``crop_size``, ``flip``). CUT stops cropping in its decay
        epochs: ``[(200, {"load_size": 256})]``. Data without these settings (shapes) ignores
        them. None by default."""
        return []

    def recipe_callbacks(self) -> list:
        """Callbacks the method's recipe includes, added by ``imtrans.run`` unless the config
        already has one of the same type (StarGAN v2: its generator EMA from iteration 0).
        None by default."""
        return []

    @classmethod
    def run_name(cls, config: Mapping[str, Any], choice: str) -> str:
        """The method's part of a run's name (its output folder, its W&B name), from its
        ``model`` config: the group's choice (``cyclegan``) unless the method has variants that
        one config group trains (CUT's ``fastcut``), which must not share a folder."""
        return choice

    def check_data(self, datamodule) -> None:
        """Called by ``imtrans.run`` before training: raise :class:`imtrans.errors.ConfigError`
        (naming the key and the fix) for data settings the method cannot train on.

        Here: a multi-domain model's domain count against the data's domain folders, and the
        training images' size against the networks (:meth:`check_image_size`). A method adds its
        own (BicycleGAN: a batch it can split in two) and calls this."""
        self.check_domains(datamodule)
        # reading an item draws its random crop: the run's random streams stay as they were
        states = _get_rng_states()
        try:
            size = _training_image_size(datamodule)
        finally:
            _set_rng_states(states)
        if size is not None:
            # the key that sets the training images' size (the shapes data draws whole images)
            self.check_image_size(*size, key=getattr(datamodule, "size_key", "data.crop_size"))

    def check_domains(self, datamodule) -> None:
        """A multi-domain model (its spec's ``domains``) needs as many domain folders as it has
        domains, and at least two."""
        declared = self.inference_spec().domains
        found = getattr(datamodule, "domains", None)
        if not declared or found is None:
            return
        found = list(found)
        if len(found) != len(declared) or len(found) < 2:
            where = getattr(datamodule, "root", None) or "the data"
            fix = (
                f"set model.num_domains={len(found)}"
                if len(found) >= 2
                else "give data.root a folder with a subfolder per domain in train/ and test/"
            )
            raise ConfigError(
                f"model.num_domains={len(declared)}: the data has {len(found)} domain folder(s) "
                f"({', '.join(found)} in {where}); {type(self).__name__} learns from one folder per "
                f"domain, at least 2; {fix}"
            )

    #: Sides tried, smallest first, for the size to suggest when the training images are too
    #: small for the networks.
    _SIZES_TRIED = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)

    def check_image_size(self, height: int, width: int, key: str = "data.crop_size") -> None:
        """The networks on one input of the training size: a ConfigError naming ``key`` (the
        setting of the images' size) and the smallest size they take, when they fail on it.

        Every task's ``translate`` runs, then every other image network (discriminators,
        encoders: modules whose first layer is a convolution) on zeros of the image's size, in
        eval mode, without gradients. The modules' train/eval flags and the random generators are
        left as they were."""
        error = self._image_size_error(height, width)
        if error is None:
            return
        works = next(
            (s for s in self._SIZES_TRIED if s > min(height, width) and self._image_size_error(s, s) is None),
            None,
        )
        fix = f"use {key}={works} or more" if works else f"use larger images ({key})"
        raise ConfigError(
            f"{key}={height if height == width else f'{height}x{width}'}: "
            f"the networks of {type(self).__name__} cannot take {height} x {width} images ({error}); {fix}"
        )

    def _image_size_error(self, height: int, width: int) -> str | None:
        """What fails, in words, when the networks run on ``height x width`` inputs; None if
        nothing does. Only size errors count: another failure (an input a network takes with
        other arguments) is left to training to report."""
        spec = self.inference_spec()
        generators = {id(m) for m in self.generator_modules().values()}
        flags = [(m, m.training) for m in self.modules()]
        states = _get_rng_states()  # a style drawn for the probe must not shift the run's streams
        try:
            self.eval()
            with torch.no_grad():
                for task in spec.tasks:
                    if spec.input_kind == "labels":
                        x: Any = torch.zeros(1, height, width, dtype=torch.long, device=self.device)
                    else:
                        x = torch.zeros(1, task.in_channels, height, width, device=self.device)
                    error = _size_error(lambda x=x, task=task: self.translate(x, **task.call))
                    if error:
                        return f"generator of {task.name}: {error}"
                for name, net in self.named_children():
                    conv = next((m for m in net.modules() if isinstance(m, nn.Conv2d | nn.Linear)), None)
                    if id(net) in generators or not isinstance(conv, nn.Conv2d):
                        continue
                    z = torch.zeros(1, conv.in_channels, height, width, device=self.device)
                    error = _size_error(lambda net=net, z=z: net(z))
                    if error:
                        return f"{name}: {error}"
        finally:
            _set_rng_states(states)
            for m, flag in flags:
                m.training = flag
        return None

    # ------------------------------------------------------------------ fine-tuning
    def setup(self, stage: str) -> None:
        """``init_from``: a fit starts from that run's (or imported official) weights.

        Called before Lightning restores a ``ckpt_path``, so resuming a fine-tuning run takes the
        resumed weights, as it should. Everything but the weights starts afresh: iteration 0,
        new optimizers and schedulers, and EMA copies (when enabled) start from the loaded
        generators. Buffers that are weights (pix2pixHD's clusters) are loaded with them.

        Also records the data's domain names (``domain_names``), which checkpoints keep so that
        the tools name a multi-domain model's targets as its data folders did.
        """
        dm = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        if dm is not None and self._domain_names is None:
            try:
                names = getattr(dm, "domains", None)
            except (OSError, ValueError):  # a data root that is not there: the data module says so later
                names = None
            if names:
                self._domain_names = [str(n) for n in names]
        if stage != "fit" or not self.init_from or self._initialised_from == self.init_from:
            return
        self.load_weights_from(self.init_from)
        self._initialised_from = self.init_from

    def load_weights_from(self, path: str) -> None:
        """Load the weights of an imtrans run or checkpoint (``init_from``), strictly.

        The source's EMA copies and iteration counter are left out. A missing file, or a key or
        shape that differs, is a ConfigError naming it (the fine-tuning config must build the
        same networks: pass the architecture overrides an imported run's import.json lists).
        The file is read without running code (:func:`imtrans.load.read_checkpoint`) unless the
        run has ``trust=true``.
        """
        from imtrans.load import read_checkpoint

        file, ckpt = read_checkpoint(path, "model.init_from", imtrans=False)
        source = ckpt["state_dict"]
        skip = ("ema.", "_iteration", "augment.")  # ADA's p starts afresh too
        source = {k: v for k, v in source.items() if not k.startswith(skip)}
        ours = {k: v for k, v in self.state_dict().items() if not k.startswith(skip)}
        for key, value in source.items():
            if key not in ours:
                raise ConfigError(f"model.init_from={path}: key {key!r} of {file} is not in this model")
            if value.shape != ours[key].shape:
                raise ConfigError(
                    f"model.init_from={path}: {key!r} has shape {tuple(value.shape)} in {file}, "
                    f"{tuple(ours[key].shape)} here (build the same architecture)"
                )
        missing = [k for k in ours if k not in source]
        if missing:
            raise ConfigError(
                f"model.init_from={path}: {file} lacks {len(missing)} tensor(s), first {missing[0]!r}"
            )
        self.load_state_dict(source, strict=False)
        if self.ema is not None:  # the EMA callback made its copies before this load
            for name, averaged in self.ema.items():
                averaged.load_state_dict(getattr(self, name).state_dict())

    # ------------------------------------------------------------------ checkpoints
    def rank_state(self) -> dict:
        """What differs between DDP ranks and a resume needs, saved per rank (the checkpoint is
        written by rank 0 alone): the random streams as the next iteration will find them
        (sampling, validation and data loading draw from forked streams, so nothing else
        changes them before it). Methods add their own (CycleGAN: the image pools, which hold
        each rank's own fakes); ``load_rank_state`` takes it back."""
        return {"rng": _get_rng_states()}

    def load_rank_state(self, state: dict) -> None:
        self._pending_rng = state.get("rng")

    def _gather_ranks(self, state: dict) -> list[dict]:
        """``state`` of every rank, in rank order (every rank calls this, as Lightning builds the
        checkpoint on every rank); a one-element list outside a process group."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return [state]
        states: list = [None] * dist.get_world_size()
        dist.all_gather_object(states, state)
        return states

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        from imtrans import __version__

        # which imtrans wrote it: a file of a newer layout is refused by an older reader in one line
        checkpoint["imtrans_version"] = __version__
        checkpoint["imtrans_format"] = CHECKPOINT_FORMAT
        if self.imtrans_config is not None:
            checkpoint["imtrans_config"] = self.imtrans_config
        checkpoint["imtrans_ranks"] = self._gather_ranks(self.rank_state())
        checkpoint["imtrans_schedule"] = {"skipped": sorted(self._skipped), "epochs": self._epochs_scheduled}
        if self._domain_names:
            checkpoint["imtrans_domains"] = list(self._domain_names)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.imtrans_config = checkpoint.get("imtrans_config", self.imtrans_config)
        self._domain_names = checkpoint.get("imtrans_domains", self._domain_names)
        ranks = checkpoint.get("imtrans_ranks")
        if ranks:
            # A resume with another number of processes cannot continue exactly; each rank
            # then takes the state of rank (its rank modulo the saved ones).
            self.load_rank_state(ranks[self.global_rank % len(ranks)])
        else:  # checkpoints of imtrans <= 0.1 held rank 0's random streams only
            self.load_rank_state({"rng": checkpoint.get("rng_states")})
        schedule = checkpoint.get("imtrans_schedule", {})
        self._skipped = set(schedule.get("skipped", ()))
        # checkpoints older than this field: their epoch schedulers stepped at epoch ends
        self._epochs_scheduled = schedule.get("epochs", checkpoint.get("epoch", 0))
