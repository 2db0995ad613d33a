"""Image encoders to a latent code."""

from __future__ import annotations

import torch
from torch import nn

from imtrans.nets.blocks import activation, norm_layer


class _DownResBlock(nn.Module):
    """BicycleGAN's ``BasicBlock``: norm-act-conv3x3 (in->in), norm-act-conv3x3 (in->out) + 2x2
    average pool, plus a shortcut 2x2 average pool + 1x1 conv. Halves H and W."""

    def __init__(self, in_ch: int, out_ch: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(
            norm_layer(norm, in_ch),
            activation("lrelu"),
            nn.Conv2d(in_ch, in_ch, 3, 1, 1),
            norm_layer(norm, in_ch),
            activation("lrelu"),
            nn.Conv2d(in_ch, out_ch, 3, 1, 1),
            nn.AvgPool2d(2, 2),
        )
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(in_ch, out_ch, 1))

    def forward(self, x):
        return self.body(x) + self.shortcut(x)


class ResnetEncoder(nn.Module):
    """BicycleGAN's ``E_ResNet`` with VAE heads (``resnet_256``: 4 blocks, ``resnet_128``: 3).

    4x4 stride-2 conv to ndf, ``n_blocks`` down-sampling residual blocks with channels
    ndf x (2, 3, 4, 4, ...), LeakyReLU 0.2, the official fixed AvgPool2d(8), then linear heads
    ``mu`` and ``logvar``. Input N x input_nc x H x W in [-1, 1] with H = W = 8 x 2**(n_blocks+1)
    (256 for 4 blocks); returns (mu, logvar), each N x nz. With 3 input channels, ndf 64,
    nz 8: 2,590,032 parameters (4 blocks) and 1,344,080 (3 blocks).
    """

    def __init__(
        self, input_nc: int = 3, nz: int = 8, ndf: int = 64, n_blocks: int = 4, norm: str = "instance"
    ):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(input_nc, ndf, 4, 2, 1)]
        ch = ndf
        for n in range(1, n_blocks + 1):
            out = ndf * min(4, n + 1)
            layers.append(_DownResBlock(ch, out, norm))
            ch = out
        layers += [activation("lrelu"), nn.AvgPool2d(8)]
        self.conv = nn.Sequential(*layers)
        self.mu = nn.Linear(ch, nz)
        self.logvar = nn.Linear(ch, nz)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.conv(x).flatten(1)
        if h.shape[1] != self.mu.in_features:
            raise ValueError(
                f"ResnetEncoder with {len(self.conv) - 3} blocks needs {8 * 2 ** (len(self.conv) - 2)} px inputs, "
                f"got {tuple(x.shape[-2:])}"
            )
        return self.mu(h), self.logvar(h)
