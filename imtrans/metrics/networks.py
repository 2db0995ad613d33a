"""The two standard metric networks, loaded from local weight files only.

- :class:`InceptionFeatures`: torch-fidelity's ``inception-v3-compat`` feature extractor (the
  TF-Inception port FID and KID are defined with), pool3 2048-d features. It takes uint8 images
  and resizes them to 299 x 299 with its TF1-compatible bilinear filter.
- :class:`AlexLPIPS`: LPIPS v0.1 with the AlexNet trunk (torchvision's ImageNet weights) and the
  linear heads calibrated on human judgements (shipped inside torchmetrics and lpips, 6 KB).
  Same computation as ``lpips.LPIPS(net="alex", version="0.1")``.

Both hold no trainable parameters and are meant to live in a callback, never in a
LightningModule (they would add ~96 MB / ~10 MB to every checkpoint).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn


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


class InceptionFeatures(nn.Module):
    """Pool3 features (N x 2048, float32) of uint8 RGB images N x 3 x H x W, as torch-fidelity computes them."""

    num_features = 2048

    def __init__(self, weights_path: str | os.PathLike):
        super().__init__()
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        self.net = FeatureExtractorInceptionV3(
            "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(weights_path)
        )
        self.requires_grad_(False).eval()

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8:
            raise TypeError("InceptionFeatures takes uint8 images (use imtrans.metrics.networks.to_uint8)")
        return self.net(rgb(images))[0]

    def train(self, mode: bool = True):  # always in eval mode (BatchNorm statistics are fixed)
        return super().train(False)


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


class AlexLPIPS(nn.Module):
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
        state = torch.load(backbone_path, map_location="cpu", weights_only=True)
        features.load_state_dict(
            {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
        )
        self.scaling = _ScalingLayer()
        self.stages = nn.ModuleList(nn.Sequential(*features[a:b]) for a, b in self.STAGES)
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in self.CHANNELS)
        heads = torch.load(heads_path or default_lpips_heads(), map_location="cpu", weights_only=True)
        for i, lin in enumerate(self.lins):
            lin.weight.data.copy_(heads[f"lin{i}.model.1.weight"])
        self.requires_grad_(False).eval()

    def train(self, mode: bool = True):
        return super().train(False)

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
