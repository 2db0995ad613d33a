"""``trainer.activation_checkpointing=true`` keeps every method's losses, gradients and buffers:
one training step of each method with and without it, from the same weights, batch and random
state, gives the same loss terms and gradients and leaves the same buffers (BatchNorm running
statistics, spectral norm's u/v: the recomputation must not move them a second time)."""

from __future__ import annotations

from unittest import mock

import hydra
import pytest
import torch

from imtrans.callbacks.memory import ActivationCheckpointing, checkpoint_activations, memory_switches
from imtrans.errors import ConfigError
from tests.helpers import METHODS, compose_config, method_overrides, module_and_batch, train_one_step


def _step(method: str, tmp_path, checkpointed: bool):
    module, batch = module_and_batch(method, tmp_path)
    undo = checkpoint_activations(module) if checkpointed else None
    logged: dict[str, float] = {}
    torch.manual_seed(1)
    with mock.patch.object(torch.optim.Adam, "step"):  # every update sees the same weights
        train_one_step(module, batch, logged)
    if undo is not None:
        undo()
        assert not any("forward" in m.__dict__ for m in module.modules())  # the undo leaves nothing
    grads = {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}
    buffers = {n: b.clone() for n, b in module.named_buffers()}
    return logged, grads, buffers


@pytest.mark.parametrize("method", METHODS)
def test_checkpointing_keeps_losses_gradients_and_buffers(method, tmp_path):
    plain_losses, plain_grads, plain_buffers = _step(method, tmp_path / "plain", False)
    losses, grads, buffers = _step(method, tmp_path / "ckpt", True)
    assert plain_losses and losses == plain_losses  # the forward is the same computation
    assert plain_grads and plain_grads.keys() == grads.keys()
    # the same operations on the same values; only the order in which autograd adds a
    # parameter's gradient contributions may differ (float32 reordering)
    scale = max(g.abs().max().item() for g in plain_grads.values())
    for name, g in plain_grads.items():
        assert (grads[name] - g).abs().max().item() <= 1e-5 * scale, name
    assert plain_buffers.keys() == buffers.keys()
    for name, b in plain_buffers.items():  # BatchNorm statistics and u/v moved once per call
        assert torch.allclose(buffers[name].float(), b.float(), rtol=1e-5, atol=1e-7), name


def test_it_checkpoints_the_outermost_network_calls(tmp_path):
    """CycleGAN: every generator and discriminator call is one checkpoint (the recomputation
    runs the network again in the backward); the networks inside them are not checkpointed
    again; without gradients nothing is."""
    cfg = compose_config(method_overrides("cyclegan", tmp_path, 1, ["metrics=none"]))
    module = hydra.utils.instantiate(cfg.model)
    undo = checkpoint_activations(module)
    calls = []
    original = torch.utils.checkpoint.checkpoint

    def counting(fn, *args, **kwargs):
        calls.append(fn)
        return original(fn, *args, **kwargs)

    x = torch.randn(1, 3, 32, 32, requires_grad=True)
    with mock.patch("imtrans.callbacks.memory.checkpoint", counting):
        y = module.G_A(x)
        assert len(calls) == 1
        module.D_A(y).mean().backward()
        assert len(calls) == 2
        with torch.no_grad():
            module.G_A(x)
        assert len(calls) == 2
    undo()


def test_switch_from_the_trainer_config():
    args, callbacks = memory_switches({"accelerator": "cpu", "activation_checkpointing": True})
    assert args == {"accelerator": "cpu"} and isinstance(callbacks[0], ActivationCheckpointing)
    assert memory_switches({"activation_checkpointing": False}) == ({}, [])
    with pytest.raises(ConfigError, match="not combined yet"):
        memory_switches({"activation_checkpointing": True, "compile": True})
    with pytest.raises(ConfigError, match="expected true or false"):
        memory_switches({"activation_checkpointing": "yes"})
