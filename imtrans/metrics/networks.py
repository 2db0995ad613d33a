"""The standard metric networks, loaded from local weight files only.

- :class:`InceptionFeatures`: torch-fidelity's ``inception-v3-compat`` feature extractor (the
  TF-Inception port FID and KID are defined with), pool3 2048-d features. It takes uint8 images
  and resizes them to 299 x 299 with its TF1-compatible bilinear filter.
- :class:`TorchvisionInceptionFeatures`: torchvision's ImageNet Inception-v3 (``inception_v3``,
  ``IMAGENET1K_V1``), its 2048-d average-pool features, the network StarGAN v2's FID is defined
  with (``fid_impl: stargan_v2``). It takes uint8 images, resizes them to 299 x 299 with PIL's
  bilinear filter and normalises with the ImageNet mean and std.
- :class:`AlexLPIPS`: LPIPS v0.1 with the AlexNet trunk (torchvision's ImageNet weights) and the
  linear heads calibrated on human judgements (shipped inside torchmetrics and lpips, 6 KB).
  Same computation as ``lpips.LPIPS(net="alex", version="0.1")``.

Each checks its files against their published SHA-256 before reading them
(:func:`imtrans.metrics.weights.verify`; cached per file, so a second network costs nothing):
another file under a standard name raises :class:`~imtrans.pretrained.WeightsMismatchError`.

pytorch-fid's and clean-fid's networks are in :mod:`imtrans.metrics.lineages`, with the table of
FID lineages (``metrics.fid_impl``). All hold no trainable parameters and are meant to live in a callback, never in a
LightningModule (they would add ~96 MB / ~10 MB to every checkpoint).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from imtrans.metrics.weights import ALEXNET, INCEPTION, LPIPS_ALEX_HEADS, TORCHVISION_INCEPTION, verify


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float -> uint8, rounded exactly as an image file is written (see ``callbacks.images``)."""
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def rgb(images: torch.Tensor) -> torch.Tensor:
    """N x C x H x W with C in {1, 3} -> N x 3 x H x W (grayscale repeated)."""
    if images.shape[1] == 1:
        return images.expand(-1, 3, -1, -1)
    if images.shape[1] != 3:
        raise ValueError(f"metrics take RGB or grayscale images, got {images.shape[1]} channels")
    return images


class FrozenNetwork(nn.Module):
    """A metric's network: pretrained weights that never change, so no gradients, and always in
    eval mode (its BatchNorm statistics are fixed), whatever ``.train()`` a parent module calls.
    Subclasses call :meth:`freeze` at the end of ``__init__``; the feature networks take the
    uint8 images that decoding a PNG or JPEG gives (:meth:`uint8`)."""

    def freeze(self) -> None:
        self.requires_grad_(False).eval()

    def train(self, mode: bool = True):
        return super().train(False)

    def uint8(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` if they are uint8, else a TypeError naming the network."""
        if images.dtype != torch.uint8:
            raise TypeError(
                f"{type(self).__name__} takes uint8 images (use imtrans.metrics.networks.to_uint8)"
            )
        return images


class InceptionFeatures(FrozenNetwork):
    """Pool3 features (N x 2048, float32) of uint8 RGB images N x 3 x H x W, as torch-fidelity computes them."""

    num_features = 2048

    def __init__(self, weights_path: str | os.PathLike):
        super().__init__()
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        verify(INCEPTION, weights_path)
        self.net = FeatureExtractorInceptionV3(
            "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(weights_path)
        )
        self.freeze()

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(rgb(self.uint8(images)))[0]


def pil_resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 N x C x H x W -> uint8 N x C x size x size, each image resized by PIL's BILINEAR filter.

    This is ``torchvision.transforms.Resize([size, size])`` on a PIL image (antialiased when
    shrinking, 8-bit fixed-point arithmetic, rounded): torch's own bilinear resize differs from
    it by one level in up to a fifth of the pixels, so the protocols that define their numbers
    through PIL resize through PIL. Images already at the size are returned unchanged, as PIL does.
    """
    if images.dtype != torch.uint8:
        raise TypeError("pil_resize takes uint8 images")
    if tuple(images.shape[-2:]) == (size, size):
        return images
    from PIL import Image

    host = images.detach().cpu().permute(0, 2, 3, 1).numpy()
    out = [
        np.asarray(
            Image.fromarray(im[..., 0] if im.shape[-1] == 1 else im).resize((size, size), Image.BILINEAR)
        )
        for im in host
    ]
    out = torch.from_numpy(np.stack(out)).reshape(len(out), size, size, -1)
    return out.permute(0, 3, 1, 2).contiguous().to(images.device)


#: Inception-v3's trunk in forward order, as torchvision names its modules: (modules, then a 3x3
#: stride-2 max pool?). StarGAN v2's FID network (torchvision's weights) and pytorch-fid's run these.
INCEPTION_STAGES = (
    (("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3"), True),
    (("Conv2d_3b_1x1", "Conv2d_4a_3x3"), True),
    (("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"), False),
    (("Mixed_7a", "Mixed_7b", "Mixed_7c"), False),
)


def inception_pool_features(trunk: nn.ModuleDict, x: torch.Tensor) -> torch.Tensor:
    """The 2048-d features of a normalised 299 x 299 batch: the :data:`INCEPTION_STAGES` of
    ``trunk`` (modules by name), then the average over space (the final average pool)."""
    with full_float32(x.device):
        for stage, pool in INCEPTION_STAGES:
            for name in stage:
                x = trunk[name](x)
            if pool:
                x = F.max_pool2d(x, kernel_size=3, stride=2)
    return x.mean((2, 3))


@contextlib.contextmanager
def full_float32(device: torch.device):
    """float32 convolutions as defined: no autocast, and on CUDA no TF32 (cuDNN allows it by
    default, which moves features by ~1e-3 relative), restored afterwards."""
    with torch.autocast(device.type, enabled=False):
        if device.type != "cuda":
            yield
            return
        previous = torch.backends.cudnn.allow_tf32
        torch.backends.cudnn.allow_tf32 = False
        try:
            yield
        finally:
            torch.backends.cudnn.allow_tf32 = previous


class TorchvisionInceptionFeatures(FrozenNetwork):
    """2048-d average-pool features (N x 2048, float32) of uint8 RGB images N x 3 x H x W, from
    torchvision's ImageNet Inception-v3, as StarGAN v2 defines its FID.

    Each image is resized to 299 x 299 by PIL's bilinear filter (:func:`pil_resize`), scaled to
    [0, 1] (``/ 255``), normalised with the ImageNet mean (0.485, 0.456, 0.406) and std (0.229,
    0.224, 0.225), and run through the trunk ``Conv2d_1a_3x3`` ... ``Mixed_7c`` (the max pools
    after ``Conv2d_2b_3x3`` and ``Conv2d_4a_3x3`` included), then averaged over space. torchvision's
    ``transform_input`` re-normalisation is not applied: the official code calls the trunk's
    modules itself, which skips it. ``fc`` and ``AuxLogits`` are not used (and need not be in
    the file).

    Args:
        weights_path: torchvision's state dict (``inception_v3_google-0cc3c7bd.pth``).
    """

    num_features = 2048
    input_size = 299
    MEAN = (0.485, 0.456, 0.406)
    STD = (0.229, 0.224, 0.225)
    STAGES = INCEPTION_STAGES

    def __init__(self, weights_path: str | os.PathLike):
        super().__init__()
        from torchvision.models import inception_v3

        net = inception_v3(weights=None, aux_logits=False, init_weights=False, transform_input=False)
        names = [n for stage, _ in self.STAGES for n in stage]
        self.trunk = nn.ModuleDict({n: getattr(net, n) for n in names})
        verify(TORCHVISION_INCEPTION, weights_path)
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        # strict on the trunk: a file that lacks one of its tensors fails here, not silently
        self.trunk.load_state_dict({k: v for k, v in state.items() if k.split(".")[0] in self.trunk})
        self.register_buffer("mean", torch.tensor(self.MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(self.STD).view(1, 3, 1, 1), persistent=False)
        self.freeze()

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = pil_resize(rgb(self.uint8(images)), self.input_size).to(self.mean.device).float() / 255
        return inception_pool_features(self.trunk, (x - self.mean) / self.std)


def default_lpips_heads() -> Path:
    """The LPIPS v0.1 AlexNet linear heads shipped inside torchmetrics (identical to lpips' own)."""
    import torchmetrics.functional.image.lpips as tm_lpips

    return Path(tm_lpips.__file__).parent / "lpips_models" / "alex.pth"


class _ScalingLayer(nn.Module):
    """LPIPS v0.1 input normalisation of [-1, 1] images."""

    def __init__(self):
        super().__init__()
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))

    def forward(self, x):
        return (x - self.shift) / self.scale


class AlexLPIPS(FrozenNetwork):
    """LPIPS distance (v0.1, AlexNet) between two batches in [-1, 1]: returns N distances.

    Args:
        backbone_path: torchvision's AlexNet state dict (``alexnet-owt-7be5be79.pth``).
        heads_path: the linear heads (``lin{0..4}.model.1.weight``); default: torchmetrics' copy.
    """

    # AlexNet ``features`` indices that end each of the 5 tapped stages (after each ReLU).
    STAGES = ((0, 2), (2, 5), (5, 8), (8, 10), (10, 12))
    CHANNELS = (64, 192, 384, 256, 256)

    def __init__(self, backbone_path: str | os.PathLike, heads_path: str | os.PathLike | None = None):
        super().__init__()
        from torchvision.models import alexnet

        features = alexnet(weights=None).features
        verify(ALEXNET, backbone_path)
        state = torch.load(backbone_path, map_location="cpu", weights_only=True)
        features.load_state_dict(
            {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
        )
        self.scaling = _ScalingLayer()
        self.stages = nn.ModuleList(nn.Sequential(*features[a:b]) for a, b in self.STAGES)
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in self.CHANNELS)
        heads_path = heads_path or default_lpips_heads()
        verify(LPIPS_ALEX_HEADS, heads_path)
        heads = torch.load(heads_path, map_location="cpu", weights_only=True)
        for i, lin in enumerate(self.lins):
            lin.weight.data.copy_(heads[f"lin{i}.model.1.weight"])
        self.freeze()

    @staticmethod
    def _unit(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
        return x / (x.pow(2).sum(1, keepdim=True).sqrt() + eps)

    @torch.no_grad()
    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        h0, h1 = self.scaling(rgb(x0).float()), self.scaling(rgb(x1).float())
        total = torch.zeros(x0.shape[0], device=x0.device)
        for stage, lin in zip(self.stages, self.lins):
            h0, h1 = stage(h0), stage(h1)
            total = total + lin((self._unit(h0) - self._unit(h1)).pow(2)).mean((1, 2, 3))
        return total
