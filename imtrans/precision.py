"""Mixed precision: fp16 with one gradient scaler per update, and autocast's weight-cast cache
for bf16 and fp16 (:class:`CachedCastPrecision`).

Lightning's ``16-mixed`` keeps a single ``GradScaler`` for all optimizers and, with manual
optimisation, lets ``clip_gradients`` see *scaled* gradients. A GAN step is several updates
(D, then G, ...) whose gradients differ by orders of magnitude: an overflow in the
discriminator's backward should lower the discriminator's scale, not the generator's, and skip
the discriminator's step only. :class:`PerUpdateScalerPrecision` therefore keeps one scaler per
update, keyed by the optimizer names of the update (``"G"``, ``"D"``, ``"G+E"`` for BicycleGAN's
joint encoder-generator step). Each optimizer is stepped by exactly one update in every method
but DRIT (whose second ``enc_c+gen`` step has its own scaler), so this is one scaler per
optimizer.

A method never touches the plugin: ``TranslationModule.optimize`` (or, for custom update code,
``TranslationModule.update_scope``) opens a :class:`ScaledUpdate`; inside it
``manual_backward`` scales the loss with the update's scaler, gradients are unscaled before
clipping and stepping, and on exit the scaler is updated and records whether the step was
skipped (an inf/NaN gradient). ``TranslationModule`` does not step an iteration-interval
scheduler for a skipped update.

``TranslationModule.on_fit_start`` swaps Lightning's single-scaler plugin for this one, so
``trainer.precision=16-mixed`` is enough on a GPU (and Lightning's ``bf16-mixed`` plugin for
:class:`CachedCastPrecision`, see ``use_imtrans_precision``). Lightning turns ``16-mixed`` into
``bf16-mixed`` on the CPU; to run fp16 on the CPU anyway (tests do, to exercise the scalers)
pass the plugin itself::

    trainer.precision=null '+trainer.plugins=[{_target_:imtrans.precision.PerUpdateScalerPrecision,device:cpu}]'
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from lightning.pytorch.plugins.precision import MixedPrecision
from lightning.pytorch.utilities import rank_zero_info


class ScaledUpdate:
    """One update under :class:`PerUpdateScalerPrecision`: its key, scaler and optimizers.

    ``skipped`` is set on exit of the scope: True when the scaler found an inf/NaN gradient
    and did not step (it then lowers its scale).
    """

    def __init__(self, key: str, scaler: torch.amp.GradScaler, optimizers: Iterable[torch.optim.Optimizer]):
        self.key = key
        self.scaler = scaler
        self.optimizers = {id(o) for o in optimizers}
        self._unscaled: set[int] = set()
        self.skipped = False
        self.scale_before = self.scale_after = 1.0

    def scale(self, loss: torch.Tensor) -> torch.Tensor:
        """The loss multiplied by the update's scale, for backward passes made outside
        ``manual_backward`` (``torch.autograd.grad``)."""
        return self.scaler.scale(loss)

    def unscale_(self, optimizer: torch.optim.Optimizer) -> None:
        """Divide ``optimizer``'s gradients by the scale (once per update; before clipping)."""
        optimizer = getattr(optimizer, "optimizer", optimizer)  # a LightningOptimizer wraps it
        if id(optimizer) not in self._unscaled:
            self.scaler.unscale_(optimizer)
            self._unscaled.add(id(optimizer))


class CachedCastPrecision(MixedPrecision):
    """Lightning's ``MixedPrecision`` (bf16 or fp16 autocast) with autocast's weight-cast cache
    on, made safe for GAN steps.

    Lightning (2.6) turns the cache off, so every call of a network casts all its weights to
    the low precision again, and its backward casts their gradients back once per call. A GAN
    update calls its trainable networks several times (CycleGAN's G_A makes the fake, the
    reconstruction and the identity image; each D scores reals and fakes). With the cache, a
    trainable weight is cast once and every call shares the cast (about 8 % of a CycleGAN
    generator's three calls, forward and backward, in bf16 on the CPU).

    PyTorch drops the cache only when the outermost autocast region exits, and Lightning's
    region is the whole ``training_step``, across optimizer steps that change the weights in
    place; the cache does not notice. So it is cleared after every optimizer step: a network
    updated twice in one iteration (StarGAN v2's D, DRIT's encoder and generator) sees its new
    weights. Frozen parameters are never cached (autocast caches only tensors that require
    grad), nor are casts made under ``no_grad`` (torch 2.14).
    """

    def autocast_context_manager(self) -> torch.autocast:
        dtype = torch.bfloat16 if self.precision == "bf16-mixed" else torch.half
        return torch.autocast(self.device, dtype=dtype, cache_enabled=True)

    def optimizer_step(self, optimizer: Any, model: Any, closure: Callable[[], Any], **kwargs: Any) -> Any:
        try:
            return super().optimizer_step(optimizer, model, closure, **kwargs)
        finally:
            torch.clear_autocast_cache()  # the weights have changed in place


class PerUpdateScalerPrecision(CachedCastPrecision):
    """``16-mixed`` with one ``torch.amp.GradScaler`` per update (see the module docstring).

    Args:
        device: ``cuda`` (or ``cpu``, where fp16 autocast works but is slow).
        init_scale, growth_factor, backoff_factor, growth_interval: ``GradScaler`` settings,
            the same for every update's scaler (PyTorch's defaults).
    """

    def __init__(
        self,
        device: str = "cuda",
        init_scale: float = 2.0**16,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 2000,
    ):
        super().__init__("16-mixed", device, scaler=torch.amp.GradScaler(device, enabled=False))
        # ``self.scaler`` is what Lightning's own code paths would use: there are none left
        # (every one is overridden below), so it stays None to make a stray use fail loudly.
        self.scaler = None
        self.scaler_kwargs = dict(
            init_scale=init_scale,
            growth_factor=growth_factor,
            backoff_factor=backoff_factor,
            growth_interval=growth_interval,
        )
        self.scalers: dict[str, torch.amp.GradScaler] = {}
        self._stack: list[ScaledUpdate] = []
        # Each scaler's scale after its last update: the next update's "before" without
        # reading it back from the device again (one sync per update, in close_update).
        self._scales: dict[str, float] = {}

    def _scaler(self, key: str) -> torch.amp.GradScaler:
        if key not in self.scalers:
            self.scalers[key] = torch.amp.GradScaler(self.device, **self.scaler_kwargs)
        return self.scalers[key]

    def open_update(self, key: str, optimizers: Iterable[torch.optim.Optimizer]) -> ScaledUpdate:
        """Start the update ``key`` (scopes may nest: the innermost one scales backward passes,
        and each optimizer steps with the innermost update that owns it)."""
        optimizers = [getattr(o, "optimizer", o) for o in optimizers]
        update = ScaledUpdate(key, self._scaler(key), optimizers)
        update.scale_before = self._scales.get(key) or update.scaler.get_scale()
        self._stack.append(update)
        return update

    def close_update(self, update: ScaledUpdate) -> None:
        """Update the scaler of ``update`` (after all its optimizers stepped) and record
        whether the step was skipped: ``GradScaler.update`` lowers the scale exactly when it
        found an inf/NaN gradient."""
        if not self._stack or self._stack[-1] is not update:
            raise RuntimeError(f"mixed-precision update '{update.key}' closed out of order")
        self._stack.pop()
        update.scaler.update()
        update.scale_after = self._scales[update.key] = update.scaler.get_scale()
        update.skipped = update.scale_after < update.scale_before

    def abandon_update(self, update: ScaledUpdate) -> None:
        """Leave an update without touching its scaler (an exception inside the scope)."""
        if update in self._stack:
            self._stack.remove(update)

    # -- Lightning's precision hooks -------------------------------------------------------
    def _current(self, what: str) -> ScaledUpdate:
        if not self._stack:
            raise RuntimeError(
                f"16-mixed: {what} outside an update. Make every backward and optimizer step "
                "inside TranslationModule.optimize() or `with self.update_scope(*names):`, so "
                "that each update uses its own gradient scaler."
            )
        return self._stack[-1]

    def pre_backward(self, tensor: torch.Tensor, module: Any) -> torch.Tensor:
        tensor = self._current("backward").scaler.scale(tensor)
        return super(MixedPrecision, self).pre_backward(tensor, module)

    def optimizer_step(self, optimizer: Any, model: Any, closure: Callable[[], Any], **kwargs: Any) -> Any:
        update = next((u for u in reversed(self._stack) if id(optimizer) in u.optimizers), None)
        if update is None:
            self._current("optimizer step")
            raise RuntimeError(
                f"16-mixed: {type(optimizer).__name__} stepped inside update "
                f"'{self._stack[-1].key}', which does not own it"
            )
        closure()  # manual optimisation: a no-op closure; the backward already ran
        update.unscale_(optimizer)
        self._after_closure(model, optimizer)
        try:
            return update.scaler.step(optimizer, **kwargs)  # skips the step on inf/NaN gradients
        finally:
            torch.clear_autocast_cache()  # see CachedCastPrecision

    def state_dict(self) -> dict[str, Any]:
        return {"scalers": {key: s.state_dict() for key, s in self.scalers.items()}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        scalers = state_dict.get("scalers")
        if scalers is None:  # a checkpoint of Lightning's single-scaler plugin
            rank_zero_info(
                "imtrans: the checkpoint has one gradient scaler; each update starts from its scale"
            )
            scalers = {}
            self.scaler_kwargs["init_scale"] = state_dict.get("scale", self.scaler_kwargs["init_scale"])
        self._scales.clear()
        for key, state in scalers.items():
            self._scaler(key).load_state_dict(state)


def use_imtrans_precision(trainer: Any) -> bool:
    """Replace Lightning's own mixed-precision plugin on ``trainer``: fp16 (one scaler) by
    :class:`PerUpdateScalerPrecision` (same device and scaler settings), bf16 by
    :class:`CachedCastPrecision`. Any other plugin (one the user chose) stays. Returns True
    when it replaced one."""
    plugin = trainer.strategy.precision_plugin
    if type(plugin) is not MixedPrecision:
        return False
    if plugin.scaler is None:
        trainer.strategy.precision_plugin = CachedCastPrecision(plugin.precision, plugin.device)
        return True
    s = plugin.scaler
    trainer.strategy.precision_plugin = PerUpdateScalerPrecision(
        plugin.device,
        init_scale=s.get_scale() if s.is_enabled() else 2.0**16,
        growth_factor=s.get_growth_factor(),
        backoff_factor=s.get_backoff_factor(),
        growth_interval=s.get_growth_interval(),
    )
    rank_zero_info("imtrans: 16-mixed with one gradient scaler per update (imtrans.precision)")
    return True
