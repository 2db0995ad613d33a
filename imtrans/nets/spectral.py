"""Spectral normalisation that ``torch.compile`` can trace: :func:`spectral_norm`.

It is ``torch.nn.utils.spectral_norm`` (Miyato et al. 2018) with the same state: the module's
``weight`` parameter becomes ``weight_orig``, with the buffers ``weight_u`` (height) and
``weight_v`` (width) of the weight reshaped to a matrix (dim 0 first), the same state-dict
keys and version metadata, torch's own state-dict hooks (old-format files load as with torch),
the same random draws at construction, and ``torch.nn.utils.remove_spectral_norm`` removes it.
Every official U-GAT-IT and SPADE checkpoint loads into it as into torch's.

What differs is how the forward runs the power iteration. torch updates ``u`` and ``v`` in
place inside the forward, which a compiled graph cannot hold: a graph that saved ``u`` for its
backward fails autograd's version check when the network runs twice before one backward (a
discriminator sees real and fake images in one update), so networks with torch's hook stay
eager under ``trainer.compile`` (``imtrans.callbacks.speed``). Here the power iteration is one
opaque operator, ``imtrans::spectral_power_iteration``: it updates the buffers in place, under
no gradient, exactly as torch does (``mv``, ``normalize``, same order: same values bit for
bit), and returns copies of the new ``u`` and ``v`` for the differentiable part. Compile
treats it as a call it does not look into, and traces the rest (sigma = u . (W v), W / sigma
and the convolution) into the network's graph, where the division and the low-precision cast
of a large weight become one pass instead of several. Eager, the values are torch's; compiled,
only the float order of sigma and the division's backward changes.

Both the power iteration and sigma run in the buffers' precision (autocast off): on the CPU
torch's autocast leaves ``mv``/``dot`` in fp32 anyway, so nothing changes there; on CUDA it
keeps sigma of a half-precision run in fp32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.spectral_norm import SpectralNorm as _TorchSpectralNorm


@torch.library.custom_op("imtrans::spectral_power_iteration", mutates_args=("u", "v"))
def spectral_power_iteration(
    weight_mat: torch.Tensor, u: torch.Tensor, v: torch.Tensor, n_iterations: int, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_iterations`` power-iteration steps on ``weight_mat`` (h x w, not differentiated):
    ``v = normalize(W^T u)``, ``u = normalize(W v)``, written into ``u`` (h) and ``v`` (w) in
    place as torch's spectral norm does; returns copies of the new ``u`` and ``v``."""
    with torch.no_grad(), torch.autocast(u.device.type, enabled=False):
        for _ in range(n_iterations):
            F.normalize(torch.mv(weight_mat.t(), u), dim=0, eps=eps, out=v)
            F.normalize(torch.mv(weight_mat, v), dim=0, eps=eps, out=u)
    return u.clone(memory_format=torch.contiguous_format), v.clone(memory_format=torch.contiguous_format)


@spectral_power_iteration.register_fake
def _(weight_mat, u, v, n_iterations, eps):
    return torch.empty_like(u, memory_format=torch.contiguous_format), torch.empty_like(
        v, memory_format=torch.contiguous_format
    )


class SpectralNorm(_TorchSpectralNorm):
    """torch's ``SpectralNorm`` hook with the power iteration as one opaque operator (module
    docstring); ``isinstance`` of torch's class, so torch's helpers treat it as theirs."""

    def compute_weight(self, module: nn.Module, do_power_iteration: bool) -> torch.Tensor:
        weight = getattr(module, self.name + "_orig")
        u = getattr(module, self.name + "_u")
        v = getattr(module, self.name + "_v")
        weight_mat = self.reshape_weight_to_matrix(weight)
        if do_power_iteration and self.n_power_iterations > 0:
            # copies: the backward of this call must not see the next call's in-place update
            u, v = spectral_power_iteration(weight_mat.detach(), u, v, self.n_power_iterations, self.eps)
        with torch.autocast(weight.device.type, enabled=False):
            if torch.compiler.is_compiling():
                # a matrix product: inductor calls the BLAS kernel for it, where it would
                # generate a slower reduction loop for mv
                sigma = torch.dot(u, (weight_mat @ v.unsqueeze(1)).squeeze(1))
            else:
                sigma = torch.dot(u, torch.mv(weight_mat, v))
            return weight / sigma

    def release(self, module: nn.Module, _args, _output) -> None:
        """After a compiled forward, point ``module.<name>`` at the raw weight (detached)
        instead of keeping the normalised one: kept, it would be one more full-precision copy
        of the weight that the graph must write out at every call (the largest U-GAT-IT
        discriminator conv has 33.5M elements) only to be overwritten by the next call. Eager,
        it stays as torch keeps it."""
        if torch.compiler.is_compiling():
            setattr(module, self.name, getattr(module, self.name + "_orig").detach())

    def remove(self, module: nn.Module) -> None:
        """torch's removal (``torch.nn.utils.remove_spectral_norm`` calls it), and this class's
        forward hook with it."""
        super().remove(module)
        for key in [k for k, hook in module._forward_hooks.items() if hook == self.release]:
            del module._forward_hooks[key]


def spectral_norm(
    module: nn.Module,
    name: str = "weight",
    n_power_iterations: int = 1,
    eps: float = 1e-12,
    dim: int | None = None,
) -> nn.Module:
    """``torch.nn.utils.spectral_norm(module, ...)``, same arguments, state and values, with a
    forward that compiles (module docstring). Returns ``module``.

    torch's own function sets everything up (its checks, its random draws of ``u`` and ``v``,
    its state-dict hooks); its hook then becomes this module's :class:`SpectralNorm`, a
    subclass without state of its own, so that every hook torch registered refers to it."""
    nn.utils.spectral_norm(module, name, n_power_iterations, eps, dim)
    fn = next(
        h for h in module._forward_pre_hooks.values() if isinstance(h, _TorchSpectralNorm) and h.name == name
    )
    fn.__class__ = SpectralNorm
    module.register_forward_hook(fn.release)
    return module
