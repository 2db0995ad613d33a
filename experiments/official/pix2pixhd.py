"""The official pix2pixHD training iteration: NVIDIA/pix2pixHD (checked against 14b3b3c,
2024-09-30).

``create_model(opt)`` of ``models/models.py`` (``Pix2PixHDModel``, wrapped in ``DataParallel``
on a GPU as there) with the defaults of ``options/train_options.py`` = ``scripts/train_512p.sh``
(label_nc 35, instance maps on, no encoded features, global G ngf 64 / 4 downsamplings / 9
blocks, 2-scale D n_layers 3, lsgan, feature matching and VGG19 losses with lambda_feat 10,
pool_size 0, Adam 2e-4 (0.5, 0.999)) = imtrans's ``model=pix2pixhd`` preset. The options come from
the official parser with no arguments (``TrainOptions.parse`` is not called: it reads
``sys.argv`` and writes ``opt.txt``); its gpu_ids handling is reproduced (``[]`` on the CPU).

The step mirrors the body of ``train.py``'s loop (lines 70-96) for an iteration that saves no
images (``infer=False``; ``save_fake`` is true once every display_freq 100 steps): the model's
forward returns the losses, ``loss_D = (D_fake + D_real) * 0.5``, ``loss_G = G_GAN + G_GAN_Feat
+ G_VGG``; G backward + step, then D backward + step. Printing, display, saving and the epoch
lr decay are outside the iteration.

Input: ``label`` = imtrans's ``label`` (N x H x W int64 ids) as N x 1 x H x W float ids (as the
official loader's ``ToTensor() * 255``), ``inst`` = N x 1 x H x W int32 instance ids (ToTensor of
the 16/32-bit instance PNG), ``image`` = imtrans's ``B`` (in [-1, 1]), ``feat`` = the loader's 0
placeholder. The size is the batch's (the 512p script trains at 1024 x 512).

Shims: the VGG19 of the official ``VGGLoss`` would be downloaded
(``torchvision.models.vgg19(pretrained=True)``): while the model is built, ``vgg19`` builds the
same network with random weights (same compute, so the same speed; the loss values differ).
On the CPU, ``.cuda()`` calls are no-ops and ``torch.cuda.FloatTensor`` / ``ByteTensor``
(``encode_input``, ``get_edges``) the CPU constructors (see ``_nvlabs``); ``print(netG)`` and
``print(netD)`` output is suppressed.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import torch

from experiments.official import OfficialStep, official_import


@contextlib.contextmanager
def random_vgg19():
    """``torchvision.models.vgg19(pretrained=True)`` builds VGG19 with random weights."""
    import torchvision.models as tvm

    original = tvm.vgg19

    def vgg19(*args, pretrained=False, weights=None, **kwargs):
        return original(*args, weights=None, **kwargs)

    tvm.vgg19 = vgg19
    try:
        yield
    finally:
        tvm.vgg19 = original


def official_input(batch: dict) -> tuple[torch.Tensor, ...]:
    """(label, inst, image, feat) as the official aligned dataset + DataLoader give them."""
    label = batch["label"].unsqueeze(1).float()
    inst = batch["inst"].unsqueeze(1).to(torch.int32)
    image = batch["B"]
    feat = torch.zeros(image.shape[0], dtype=torch.int64, device=image.device)
    return label, inst, image, feat


def build(checkout: Path, batch: dict, *, size: int, device: str) -> OfficialStep:
    official_import(checkout)
    from models.models import create_model  # models/models.py
    from options.train_options import TrainOptions  # options/train_options.py

    from experiments.official._nvlabs import cuda_calls_on_cpu

    parser = TrainOptions()
    parser.initialize()
    opt = parser.parser.parse_args([])
    opt.isTrain = parser.isTrain
    dev = torch.device(device)
    # BaseOptions.parse: gpu_ids '0' -> [0] and torch.cuda.set_device; here the chosen device
    if dev.type == "cuda":
        opt.gpu_ids = [dev.index if dev.index is not None else torch.cuda.current_device()]
        torch.cuda.set_device(opt.gpu_ids[0])
    else:
        opt.gpu_ids = []
    opt.loadSize = batch["B"].shape[-1]  # scale_width target of the loader (informational)
    with cuda_calls_on_cpu(device), random_vgg19(), contextlib.redirect_stdout(io.StringIO()):
        model = create_model(opt)
    inner = model.module if isinstance(model, torch.nn.DataParallel) else model
    inner.to(dev)
    optimizer_G, optimizer_D = inner.optimizer_G, inner.optimizer_D
    sync = dev.type == "cuda"

    def step(batch: dict) -> None:
        label, inst, image, feat = official_input(batch)
        with cuda_calls_on_cpu(device):
            # train.py:70-96 (infer=False: no image is collected this iteration)
            losses, _ = model(label, inst, image, feat, infer=False)
            losses = [torch.mean(x) if not isinstance(x, int) else x for x in losses]
            loss_dict = dict(zip(inner.loss_names, losses))
            loss_D = (loss_dict["D_fake"] + loss_dict["D_real"]) * 0.5
            loss_G = loss_dict["G_GAN"] + loss_dict.get("G_GAN_Feat", 0) + loss_dict.get("G_VGG", 0)
            optimizer_G.zero_grad()
            loss_G.backward()
            optimizer_G.step()
            optimizer_D.zero_grad()
            loss_D.backward()
            optimizer_D.step()
        if sync:
            torch.cuda.synchronize()

    vgg = sum(p.numel() for p in inner.criterionVGG.parameters())
    notes = [
        f"Pix2PixHDModel (train_options defaults: label_nc {opt.label_nc}, no_instance {opt.no_instance}, "
        f"instance_feat {opt.instance_feat}, netG {opt.netG}, num_D {opt.num_D}, VGG loss on)",
        f"VGG19 of VGGLoss ({vgg:,} frozen parameters) with random weights instead of the ImageNet download",
        "step: forward with losses, G backward + step, D backward + step (train.py:70-96, infer=False)",
    ]
    if dev.type == "cpu":
        notes.append("CPU: .cuda() no-ops, torch.cuda.FloatTensor/ByteTensor -> CPU constructors")
    return OfficialStep(step=step, networks={"G": inner.netG, "D": inner.netD}, notes="; ".join(notes))
