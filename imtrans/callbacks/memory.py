"""Memory switch of every method: ``trainer.activation_checkpointing=true``.

Training keeps the activations of every network's forward for its backward; at 512 px and
above they, not the weights, fill a GPU (pix2pixHD 1024p, full U-GAT-IT, SPADE). With the switch,
each network call made while gradients are recorded keeps only its inputs and outputs, and
its inner activations are recomputed during the backward (``torch.utils.checkpoint``,
non-reentrant): less memory for about one more forward per network.

What is checkpointed is found, not listed per method, as the compile switch finds what to
compile: every call of a submodule with parameters that no other such call encloses (the
generators, encoders, decoders, discriminators and loss networks such as VGG, whichever way a
method calls them: ``gen.encode`` calls the content and style encoders, CUT's generator is
walked layer by layer). The generator EMA copies and the discriminator augmentation are left
alone (they are never differentiated).

The recomputation is exact: the random state is restored for it (dropout draws the same
masks), and it runs (``torch.func.functional_call``) on the tensors the call itself used: the
parameters as they were (a method may swap in detached ones for one call, as BicycleGAN's
latent regression does) and copies of the buffers as the call started, so that the buffers a
forward changes (BatchNorm running statistics, spectral norm's power-iteration vectors ``u``/
``v``) give the same values again and move once per call, as without the switch. Losses,
gradients and buffers equal the plain run's (``tests/test_memory.py``). Not combined with
``trainer.compile`` yet (refused in one line).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import lightning as L
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from imtrans.callbacks.speed import always_eager_ids
from imtrans.errors import ConfigError

#: the ``trainer`` config key of this switch (imtrans's, not a ``lightning.Trainer`` argument)
KEY = "activation_checkpointing"


class _Depth:
    """How many wrapped calls enclose the current one (0: outermost)."""

    def __init__(self) -> None:
        self.value = 0


def _wrap(m: nn.Module, depth: _Depth) -> Callable[[], None]:
    """Replace ``m.forward`` (on the instance: state-dict keys and hooks unchanged) by a
    checkpointed call when it is the outermost wrapped call and gradients are recorded;
    returns the undo."""
    original = m.forward

    def inner(*args, **kwargs):
        depth.value += 1
        try:
            return original(*args, **kwargs)
        finally:
            depth.value -= 1

    def forward(*args, **kwargs):
        if depth.value > 0 or not torch.is_grad_enabled():
            return inner(*args, **kwargs)
        # what this call computes with: the parameters as they are now (a method may swap in
        # other tensors for one call, as BicycleGAN's torch.func.functional_call with a
        # detached encoder does) and a copy of the buffers as this call starts
        tensors = dict(m.named_parameters(remove_duplicate=False))
        tensors.update({n: b.clone() for n, b in m.named_buffers(remove_duplicate=False)})
        calls = [0]

        def run(*a, **k):
            calls[0] += 1
            if calls[0] == 1:  # the forward itself
                return inner(*a, **k)
            # the recomputation, during the backward: with those tensors, so that buffer
            # updates (BatchNorm statistics, spectral norm's u/v) land on the copies and the
            # module's own buffers move once per call, as without the switch
            depth.value += 1  # functional_call calls this very forward: run it as it is
            try:
                return torch.func.functional_call(
                    m, {n: t.clone() if n in buffer_names else t for n, t in tensors.items()}, a, k
                )
            finally:
                depth.value -= 1

        buffer_names = {n for n, _ in m.named_buffers(remove_duplicate=False)}
        return checkpoint(run, *args, use_reentrant=False, **kwargs)

    m.forward = forward

    def undo() -> None:
        if m.__dict__.get("forward") is forward:
            del m.forward

    return undo


def checkpoint_activations(module: nn.Module) -> Callable[[], None]:
    """Checkpoint every network call of ``module`` (module docstring); returns the undo.

    Every submodule with parameters is wrapped; at run time only the outermost wrapped call
    checkpoints, the calls inside it run as they are (they are recomputed with it)."""
    depth = _Depth()
    skip = always_eager_ids(module)
    undos = [
        _wrap(m, depth)
        for m in module.modules()
        if m is not module and id(m) not in skip and next(m.parameters(recurse=True), None) is not None
        and type(m).forward is not nn.Module.forward  # containers without a forward (ModuleList)
    ]  # fmt: skip

    def undo() -> None:
        for u in undos:
            u()

    return undo


class ActivationCheckpointing(L.Callback):
    """Applies ``trainer.activation_checkpointing`` for the fit (module docstring)."""

    def __init__(self) -> None:
        self._undo: Callable[[], None] | None = None

    @staticmethod
    def from_trainer_config(trainer_cfg: dict[str, Any]) -> ActivationCheckpointing | None:
        """Pop the switch from the ``trainer`` config (a dict of Lightning's arguments plus
        imtrans's keys); the callback when it is on, else None."""
        value = trainer_cfg.pop(KEY, False)
        if value not in (True, False, None):
            raise ConfigError(f"trainer.{KEY}={value!r}: expected true or false")
        if value and trainer_cfg.get("compile"):
            raise ConfigError(
                f"trainer.{KEY}=true with trainer.compile=true: the two are not combined yet; "
                "choose one (memory: activation_checkpointing, speed: compile)"
            )
        return ActivationCheckpointing() if value else None

    def setup(self, trainer, module, stage):
        if stage == "fit" and self._undo is None:
            self._undo = checkpoint_activations(module)

    def teardown(self, trainer, module, stage):
        if self._undo is not None:
            self._undo()
            self._undo = None


def memory_switches(trainer_cfg: Mapping[str, Any]) -> tuple[dict, list[L.Callback]]:
    """``(the rest of the trainer config, the memory callbacks)``."""
    args = dict(trainer_cfg)
    cb = ActivationCheckpointing.from_trainer_config(args)
    return args, [cb] if cb is not None else []
