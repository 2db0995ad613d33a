"""Speed switches of every method: ``trainer.compile``, ``trainer.channels_last``,
``trainer.optimizer_impl``.

They change how the same computation runs, never what is computed: every method's losses stay
equal to the plain run within float tolerance (``tests/test_speed.py``), and the state dict and
checkpoints have the same keys, shapes and dtypes as without them.

* **compile** (``torch.compile`` through ``nn.Module.compile``, in place): the module objects
  and their parameter names stay as they are, so no ``_orig_mod.`` prefix reaches any state
  dict or checkpoint, and a compiled run's checkpoint loads into an uncompiled module. What is
  compiled is found, not listed per method: during training every ``__call__`` of a
  submodule with parameters that no other submodule's forward encloses is recorded (the
  generators, encoders, decoders, discriminators and loss networks such as VGG, whichever way
  a method calls them: MUNIT's ``gen.encode`` calls the content and style encoders, DRIT's
  ``enc_c.forward_a`` its branch convs); each is compiled at the end of the iteration that
  first called it, which runs it eagerly. The generator EMA copies and the
  discriminator augmentation are left eager (the copies are used at evaluation only; ADA's
  random ops would break the graph), and so are the networks a method names in
  ``eager_modules`` (those it differentiates twice: AOT autograd has no double backward) and
  networks with torch's own spectral-norm hook (see ``_has_spectral_norm``; imtrans's
  networks use :mod:`imtrans.nets.spectral`, which compiles).
* **channels_last**: parameters, buffers and every 4-D floating-point tensor of each training
  batch in ``torch.channels_last`` memory format (what cuDNN's and oneDNN's fastest
  convolutions read). Values do not change, only strides. (Every instance norm of imtrans's
  networks takes its gradient contiguous: ``imtrans.nets.blocks.InstanceNorm2d``.)
* **optimizer_impl**: ``foreach`` or ``fused`` Adam/AdamW (one multi-tensor or one fused kernel
  per parameter group instead of a loop over tensors). Set on the optimizers after a resumed
  run's optimizer states are restored (``load_state_dict`` brings back the saved flags), so a
  run may be resumed with another implementation. ``auto`` (the default of
  ``conf/trainer/default.yaml``) is ``fused`` for every optimizer that has a fused kernel for its
  parameters' device and dtype, except under ``16-mixed`` (Lightning refuses gradient clipping
  for an optimizer that unscales its own gradients, as a fused one does with a scaler); torch's
  default elsewhere. Why the default: torch's default on the CPU is a loop over the tensors,
  which costs pix2pix 35 % and pix2pixHD 25 % of an iteration (their 57M and 188M parameters);
  the fused step computes the same update in another float order (``tests/test_speed.py``: the
  losses of 3 iterations equal within 1e-4 relative).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import lightning as L
import torch
from torch import nn
from torch.nn.utils.spectral_norm import SpectralNorm

from imtrans.errors import ConfigError
from imtrans.nets.spectral import SpectralNorm as CompilableSpectralNorm
from imtrans.precision import PerUpdateScalerPrecision

#: the ``trainer`` config keys that are imtrans's, not ``lightning.Trainer`` arguments
TRAINER_KEYS = (
    "compile",
    "compile_backend",
    "compile_mode",
    "compile_dynamic",
    "compile_options",
    "channels_last",
    "optimizer_impl",
)
_IMPLS = (None, "auto", "foreach", "fused")


def split_trainer_config(trainer_cfg: Mapping[str, Any]) -> tuple[dict, SpeedSwitches | None]:
    """``(Lightning Trainer arguments, SpeedSwitches or None)`` from the ``trainer`` config."""
    args = dict(trainer_cfg)
    switches = {k: args.pop(k) for k in TRAINER_KEYS if k in args}
    cb = SpeedSwitches(**switches)
    return args, (cb if cb.active else None)


class SpeedSwitches(L.Callback):
    """Applies the speed switches of the ``trainer`` config group (see the module docstring).

    Args:
        compile: compile the networks with ``torch.compile``.
        compile_backend: ``torch.compile``'s ``backend`` (``inductor``; ``aot_eager`` traces
            without generating code, which the tests use).
        compile_mode: ``torch.compile``'s ``mode`` (``default``, ``reduce-overhead``,
            ``max-autotune``, ...); None: torch's default.
        compile_dynamic: ``torch.compile``'s ``dynamic``; None: torch's automatic choice.
        compile_options: ``torch.compile``'s ``options`` (backend settings), or None.
        channels_last: channels-last memory format for the networks and the image batches.
        optimizer_impl: None (torch's default), ``auto`` (``fused`` where it exists, see the module
            docstring), ``foreach`` or ``fused``.
    """

    def __init__(
        self,
        compile: bool = False,
        compile_backend: str = "inductor",
        compile_mode: str | None = None,
        compile_dynamic: bool | None = None,
        compile_options: Mapping[str, Any] | None = None,
        channels_last: bool = False,
        optimizer_impl: str | None = None,
    ):
        if optimizer_impl not in _IMPLS:
            raise ConfigError(f"trainer.optimizer_impl={optimizer_impl!r}: use auto, null, foreach or fused")
        self.compile = bool(compile)
        self.compile_kwargs: dict[str, Any] = {"backend": compile_backend, "dynamic": compile_dynamic}
        if compile_mode is not None:  # torch.compile takes a mode only for inductor
            self.compile_kwargs["mode"] = compile_mode
        if compile_options:
            self.compile_kwargs["options"] = dict(compile_options)
        self.channels_last = bool(channels_last)
        self.optimizer_impl = optimizer_impl
        self._hooks: dict[str, list] = {}  # module name -> its two hook handles
        self._hooked = False
        self._roots: dict[str, nn.Module] = {}
        #: names of the modules compiled (after the iteration that first called them), and of those left eager
        #: (the method's ``eager_modules``; torch's spectral norm, see ``_has_spectral_norm``)
        self.compiled: list[str] = []
        self.eager: list[str] = []

    @property
    def active(self) -> bool:
        return self.compile or self.channels_last or self.optimizer_impl is not None

    # ------------------------------------------------------------------ channels_last
    def setup(self, trainer, module, stage):
        if self.channels_last:
            module.to(memory_format=torch.channels_last)

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if self.channels_last:
            # in place: Lightning hands this very object to training_step
            _to_channels_last(batch)
        if self.compile and not self._hooked:
            self._record_roots(module)

    # ------------------------------------------------------------------ optimizer
    def on_train_start(self, trainer, module):
        if self.optimizer_impl is None:
            return
        scaled = getattr(trainer.precision_plugin, "scaler", None) is not None or isinstance(
            trainer.precision_plugin, PerUpdateScalerPrecision
        )
        for opt in trainer.optimizers:
            impl = self.optimizer_impl
            if impl == "auto":
                impl = "fused" if not scaled and _has_fused_kernel(opt) else None
                if impl is None:
                    continue
            accepted = inspect.signature(type(opt).__init__).parameters
            if impl not in accepted:
                raise ConfigError(
                    f"trainer.optimizer_impl={impl}: {type(opt).__name__} has no {impl} implementation; use null"
                )
            for group in opt.param_groups:
                group["foreach"] = impl == "foreach"
                group["fused"] = impl == "fused"
            if impl == "fused":
                # restored 'step' counters live on the CPU; the fused kernel wants them beside
                # the parameters, as a fused optimizer creates them
                for p, state in opt.state.items():
                    if "step" in state and torch.is_tensor(state["step"]):
                        state["step"] = state["step"].to(device=p.device, dtype=torch.float32)

    # ------------------------------------------------------------------ compile
    def _record_roots(self, module: nn.Module) -> None:
        depth = [0]
        skip = always_eager_ids(module)

        def pre(name, m):
            def hook(_m, _args):
                if depth[0] == 0 and name not in self._roots and next(m.parameters(), None) is not None:
                    self._roots[name] = m
                depth[0] += 1

            return hook

        def post(_m, _args, _out):
            depth[0] -= 1

        for name, m in module.named_modules():
            if m is module or id(m) in skip:
                continue
            self._hooks[name] = [
                m.register_forward_pre_hook(pre(name, m)),
                m.register_forward_hook(post, always_call=True),
            ]
        self._hooked = True

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        """Compile the networks first called in this iteration. The hooks stay on the modules
        not handled yet: a method may call some networks only in later iterations (DRIT's
        first iterations update the content discriminator alone)."""
        if not self._roots:
            return
        for name in self._roots:  # each root's subtree is handled: its hooks go
            for sub in [n for n in self._hooks if n == name or n.startswith(name + ".")]:
                for h in self._hooks.pop(sub):
                    h.remove()
        # AOT autograd reuses ("donates") a compiled backward's buffers, which a backward with
        # retain_graph=True forbids: DRIT's encoder/generator update backpropagates through
        # one graph twice, as the official update_EG does
        torch._functorch.config.donated_buffer = False
        keep_eager = set(getattr(module, "eager_modules", ()))
        for name, m in self._roots.items():
            if name.split(".")[0] in keep_eager or _has_spectral_norm(m):
                self.eager.append(name)
                continue
            m.compile(**self.compile_kwargs)
            self.compiled.append(name)
        self._roots = {}


def _has_fused_kernel(opt: torch.optim.Optimizer) -> bool:
    """Whether ``opt``'s class takes ``fused=True`` for all its parameters: floating point, on a
    device type with torch's fused optimizer kernels."""
    if "fused" not in inspect.signature(type(opt).__init__).parameters:
        return False
    from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

    devices = _get_fused_kernels_supported_devices()
    params = [p for group in opt.param_groups for p in group["params"]]
    return bool(params) and all(p.is_floating_point() and p.device.type in devices for p in params)


def _has_spectral_norm(module: nn.Module) -> bool:
    """Whether a module of ``module``'s tree has ``torch.nn.utils.spectral_norm``'s own hook.

    Those stay eager: torch's hook updates its power-iteration vector ``u`` in place at every
    forward, and a compiled graph that saved ``u`` for its backward then fails autograd's
    version check when the network runs twice before one backward (a discriminator that sees
    real and fake images in one update). imtrans's networks use
    :func:`imtrans.nets.spectral.spectral_norm` (same state, power iteration as one opaque
    operator), which compiles; this guard is for networks built with torch's.
    """
    return any(
        isinstance(h, SpectralNorm) and not isinstance(h, CompilableSpectralNorm)
        for m in module.modules()
        for h in m._forward_pre_hooks.values()
    )


def always_eager_ids(module: nn.Module) -> set[int]:
    """``id``s of the submodules of ``module`` that compile leaves eager whatever the method:
    its generator EMA copies (``ema``) and its discriminator augmentation (``augment``)."""
    return {
        id(m)
        for name in ("ema", "augment")
        if (sub := getattr(module, name, None)) is not None
        for m in sub.modules()
    }


def _to_channels_last(obj) -> None:
    """Every 4-D floating tensor in the (nested) dict/list ``obj`` to channels_last, in place."""
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for k, v in items:
        if torch.is_tensor(v) and v.dim() == 4 and v.is_floating_point():
            obj[k] = v.contiguous(memory_format=torch.channels_last)
        elif isinstance(v, (dict, list)):
            _to_channels_last(v)
