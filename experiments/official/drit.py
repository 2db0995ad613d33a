"""The official DRIT++ (two domains) training iteration: HsinYingLee/DRIT ``src/`` (checked
against f19f50a, 2020-07-07).

``DRIT(opts)`` of ``src/model.py`` with the defaults of ``src/options.py``'s ``TrainOptions``
(concat 1, dis_scale 3, dis_norm None, no spectral norm, mode seeking on, crop 216, d_iter 3) =
imtrans's ``model=drit`` / ``loss=drit`` preset; ``initialize()`` (N(0, 0.02) conv weights), on
the GPU ``setgpu``; ``set_scheduler`` is not needed (lr updates are outside the iteration).

The step mirrors the body of ``src/train.py``'s loop (lines 43-53) for a **full-update**
iteration, the one with ``(it + 1) % d_iter == 0`` (or among the epoch's last 2):
``model.update_D(images_a, images_b)`` (forward; disA, disA2, disB, disB2, disContent steps)
then ``model.update_EG()`` (the two-step E/G update). The other two of every three loader steps
run only ``model.update_D_content(images_a, images_b)``: ``build(..., kind="content")`` times
that one instead.

Input: the official batch is 2 (``half_size = 1``: sample 0 is translated, samples 1.. are the
real images of disA2/disB2). imtrans's batch of 1 is fed as that image twice, which is what
imtrans does with batch 1 (the image serves both halves); a batch of 2 or more is fed as is.

Shims: ``.cuda()`` calls are no-ops on the CPU (see ``_nvlabs``). The two-step ``update_EG``
backpropagates a second loss through the graph of the forward after ``enc_c``, ``enc_a`` and
``gen`` have been stepped; on PyTorch 0.4.0 (the README's version) Adam updated ``p.data``,
invisible to autograd, whereas current PyTorch's in-place step bumps the parameters' version
counters and the second backward raises. The adapter restores the version counters of those
three optimizers' parameters after each of their steps (``era_optimizer_steps``), which
reproduces the 0.4.0 behaviour exactly (the second backward reads the stepped weights, as it
did then) with the same compute; nothing else is changed.
"""

from __future__ import annotations

from pathlib import Path

import torch

from experiments.official import OfficialStep, official_import


def era_optimizer_steps(*optimizers) -> None:
    """Make each optimizer's ``step`` invisible to autograd's version check, as ``p.data``
    updates were on PyTorch < 1.5 (the official two-step E/G update relies on it)."""
    set_versions = getattr(torch._C._autograd, "_unsafe_set_version_counter", None)
    if set_versions is None:
        raise RuntimeError(
            "this PyTorch has no _unsafe_set_version_counter: cannot run the official two-step update"
        )
    for opt in optimizers:
        params = tuple(p for group in opt.param_groups for p in group["params"])
        step = opt.step

        def era_step(*args, _step=step, _params=params, **kwargs):
            versions = tuple(p._version for p in _params)
            out = _step(*args, **kwargs)
            set_versions(_params, versions)
            return out

        opt.step = era_step


def pair(x: torch.Tensor) -> torch.Tensor:
    """A batch of 1 as the official batch of 2 (the image in both halves); else unchanged."""
    return torch.cat([x, x]) if x.shape[0] == 1 else x


def placed(model, device: str):
    """A DRIT-style model (DRIT's ``DRIT``, MDMM's ``MD_multi``) on ``device``, initialised as
    train.py does (``setgpu`` on CUDA), with its optimizer steps made PyTorch-0.4-like
    (``era_optimizer_steps``)."""
    from experiments.official._nvlabs import cuda_calls_on_cpu

    dev = torch.device(device)
    with cuda_calls_on_cpu(device):
        if dev.type == "cuda":
            model.setgpu(dev.index if dev.index is not None else torch.cuda.current_device())
        else:
            model.to(dev)
            model.gpu = None  # .cuda(None) calls are no-ops under the shim
        model.initialize()
    era_optimizer_steps(model.enc_c_opt, model.enc_a_opt, model.gen_opt)
    return model


def build(checkout: Path, batch: dict, *, size: int, device: str, kind: str = "full") -> OfficialStep:
    official_import(checkout, "src")
    from model import DRIT  # src/model.py
    from options import TrainOptions  # src/options.py

    from experiments.official._nvlabs import cuda_calls_on_cpu

    if kind not in ("full", "content"):
        raise ValueError(f"kind: full or content, not {kind!r}")
    opts = TrainOptions().parser.parse_args(["--dataroot", "unused", "--crop_size", str(size)])
    opts.batch_size = pair(batch["A"]).shape[0]  # train.py skips batches of another size
    with cuda_calls_on_cpu(device):  # the constructor calls .cuda() too
        model = DRIT(opts)
    model = placed(model, device)
    dev = torch.device(device)
    sync = dev.type == "cuda"

    def step(batch: dict) -> None:
        a, b = pair(batch["A"]).detach(), pair(batch["B"]).detach()  # train.py:44-45
        with cuda_calls_on_cpu(device):
            if kind == "content":  # train.py:48-50
                model.update_D_content(a, b)
            else:  # train.py:51-53
                model.update_D(a, b)
                model.update_EG()
        if sync:
            torch.cuda.synchronize()

    notes = [
        f"DRIT(TrainOptions defaults: concat {opts.concat}, no_ms {opts.no_ms}, dis_scale {opts.dis_scale}, "
        f"d_iter {opts.d_iter}); official batch {opts.batch_size}"
        + (" (imtrans's batch 1 twice)" if batch["A"].shape[0] == 1 else ""),
        "step: full update (update_D + update_EG), 1 of every d_iter loader steps"
        if kind == "full"
        else "step: content-only update (update_D_content), d_iter - 1 of every d_iter loader steps",
        "enc_c/enc_a/gen optimizer steps keep the parameters' autograd versions (PyTorch 0.4 p.data "
        "semantics) so that update_EG's second backward runs",
    ]
    if dev.type == "cpu":
        notes.append("CPU: Tensor.cuda / Module.cuda are no-ops while official code runs")
    networks = {
        n: getattr(model, n)
        for n in ("enc_c", "enc_a", "gen", "disA", "disB", "disA2", "disB2", "disContent")
    }
    return OfficialStep(step=step, networks=networks, notes="; ".join(notes))
