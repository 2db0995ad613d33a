"""The official multi-domain DRIT++ training iteration: HsinYingLee/MDMM (checked against
18360fe, 2019-02-24, the newest commit; REFERENCE.md cites the older 013b81d of 2018-12-28, whose
options still had ``--iswgan``).

``MD_multi(opts)`` of ``model.py`` with the defaults of ``options.py``'s ``TrainOptions``
(num_domains 3, concat 1, crop 216, dis_norm None, no spectral norm, lambda_rec 10, lambda_cls 1,
lambda_cls_G 5, ``--isDcontent`` off) = imtrans's ``model=drit_multi`` / ``loss=drit_multi``
preset; ``initialize()`` (N(0, 0.02) conv weights), on the GPU ``setgpu``. ``MD_multi`` always
builds ``disContent`` and its Adam, but without ``--isDcontent`` neither is used (nor moved to
the GPU by ``setgpu``): it is not among the trained networks.

The step mirrors the body of ``train.py``'s loop (lines 41-56) without the content
discriminator, where every loader step is the same: ``model.update_D(images, c_org)`` (forward;
dis1, dis2 steps) then ``model.update_EG()`` (the two-step E/G update).

Input: imtrans's ``{"image", "domain"}`` -> ``images`` and ``c_org`` = one-hot float domain labels
(as ``datasets.py``'s ``dataset_multi`` returns them). The official batch is 2, split in halves
"A" and "B" (``forward`` stops at an odd batch): imtrans's batch of 1 is fed as that image (and
label) twice, which is what imtrans does with batch 1 (the image serves both halves); an odd
batch > 1 loses its last sample, as imtrans's split does.

Shims (as :mod:`experiments.official.drit`): ``.cuda()`` calls are no-ops on the CPU; the
``enc_c``/``enc_a``/``gen`` optimizer steps keep the parameters' autograd version counters
(PyTorch 0.4.0's ``p.data`` update semantics) so that ``update_EG``'s second backward runs.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from experiments.official import OfficialStep, official_import


def official_input(batch: dict, num_domains: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(images, one-hot c_org) of an even batch (see the module docstring)."""
    x, d = batch["image"], batch["domain"].reshape(-1).long()
    if (d < 0).any() or (d >= num_domains).any():
        raise ValueError(f"domain indices {d.tolist()} outside 0..{num_domains - 1}")
    c = F.one_hot(d, num_domains).to(x.dtype)
    if x.shape[0] == 1:
        return torch.cat([x, x]), torch.cat([c, c])
    n = x.shape[0] // 2 * 2
    return x[:n], c[:n]


def build(checkout: Path, batch: dict, *, size: int, device: str) -> OfficialStep:
    official_import(checkout)
    from model import MD_multi  # model.py
    from options import TrainOptions  # options.py

    from experiments.official._nvlabs import cuda_calls_on_cpu
    from experiments.official.drit import placed

    opts = TrainOptions().parser.parse_args(["--dataroot", "unused", "--crop_size", str(size)])
    images, _ = official_input(batch, opts.num_domains)
    opts.batch_size = images.shape[0]  # train.py skips batches of another size
    with cuda_calls_on_cpu(device):  # the constructor calls .cuda() too
        model = MD_multi(opts)
    model = placed(model, device)
    dev = torch.device(device)
    sync = dev.type == "cuda"

    def step(batch: dict) -> None:
        images, c_org = official_input(batch, opts.num_domains)
        images, c_org = images.detach(), c_org.detach()  # train.py:44-45
        with cuda_calls_on_cpu(device):
            model.update_D(images, c_org)  # train.py:54-56 (no --isDcontent)
            model.update_EG()
        if sync:
            torch.cuda.synchronize()

    notes = [
        f"MD_multi(TrainOptions defaults: num_domains {opts.num_domains}, concat {opts.concat}, "
        f"crop {opts.crop_size}, isDcontent {opts.isDcontent}); official batch {opts.batch_size}"
        + (" (imtrans's batch 1 twice)" if batch["image"].shape[0] == 1 else ""),
        "step: update_D + update_EG (every loader step without --isDcontent)",
        f"disContent ({sum(p.numel() for p in model.disContent.parameters()):,} parameters) is built "
        "by MD_multi but unused without --isDcontent",
        "enc_c/enc_a/gen optimizer steps keep the parameters' autograd versions (PyTorch 0.4 p.data "
        "semantics) so that update_EG's second backward runs",
    ]
    if dev.type == "cpu":
        notes.append("CPU: Tensor.cuda / Module.cuda are no-ops while official code runs")
    networks = {n: getattr(model, n) for n in ("enc_c", "enc_a", "gen", "dis1", "dis2")}
    return OfficialStep(step=step, networks=networks, notes="; ".join(notes))
