"""Discriminators.

Inputs are images (or image/condition concatenations) N x C x H x W in [-1, 1]; outputs are
raw scores (no sigmoid): the adversarial loss decides how to read them.
"""

from __future__ import annotations

import torch
from torch import nn

from imtrans.nets.blocks import ConvBlock


class NLayerDiscriminator(nn.Module):
    """PatchGAN (``basic`` = 70x70 receptive field with ``n_layers=3``).

    4x4 convs: ndf (stride 2, no norm) -> 2ndf ... (stride 2) -> min(2**n_layers, 8)*ndf
    (stride 1) -> 1 (stride 1), LeakyReLU 0.2. Output N x 1 x h x w patch scores (30x30 at
    256 px). With 3 input channels and InstanceNorm: 2,764,737 parameters; with 6 input
    channels (conditional pix2pix D) and BatchNorm: 2,768,705.
    """

    def __init__(self, input_nc: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "instance"):
        super().__init__()
        layers: list[nn.Module] = [ConvBlock(input_nc, ndf, 4, 2, 1, norm="none", act="lrelu", bias=True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers.append(ConvBlock(ndf * prev, ndf * mult, 4, stride, 1, norm=norm, act="lrelu"))
        layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class MultiScalePatchGAN(nn.Module):
    """``num_D`` PatchGANs on the image and its 2x, 4x ... average-pooled copies (BicycleGAN's
    ``basic_256_multi``: n_layers 3; ``basic_128_multi``: n_layers 2).

    Scale i has ``round(ndf / 2**i)`` filters (official: the second scale has half). Pooling is
    AvgPool2d(3, 2, 1, count_include_pad=False). Returns a list of score maps, full
    resolution first. With 3 input channels, ndf 64, InstanceNorm, 2 scales: 3,458,978
    parameters (n_layers 3) and 830,626 (n_layers 2).
    """

    def __init__(
        self, input_nc: int = 3, ndf: int = 64, n_layers: int = 3, num_D: int = 2, norm: str = "instance"
    ):
        super().__init__()
        self.scales = nn.ModuleList(
            NLayerDiscriminator(input_nc, int(round(ndf / 2**i)), n_layers, norm) for i in range(num_D)
        )
        self.down = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for i, scale in enumerate(self.scales):
            if i:
                x = self.down(x)
            outs.append(scale(x))
        return outs
