"""Image-to-image generators.

All generators map an image N x input_nc x H x W in [-1, 1] to N x output_nc x H x W in
[-1, 1] (tanh output).
"""

from __future__ import annotations

import torch
from torch import nn

from imtrans.nets.blocks import ConvBlock, ResBlock, UpConvBlock, activation, norm_layer, uses_bias


class ResnetGenerator(nn.Module):
    """CycleGAN's ``resnet_9blocks`` (``resnet_6blocks`` with ``n_blocks=6``).

    7x7 conv (reflect pad) -> ``n_down`` stride-2 3x3 convs (zero pad) -> ``n_blocks`` residual
    blocks (reflect pad) -> ``n_down`` stride-2 transposed convs -> 7x7 conv -> tanh.
    With ngf 64, 9 blocks, InstanceNorm and 3->3 channels: 11,378,179 parameters.
    H and W must be divisible by 2**n_down.
    """

    def __init__(
        self,
        input_nc: int = 3,
        output_nc: int = 3,
        ngf: int = 64,
        n_blocks: int = 9,
        n_down: int = 2,
        norm: str = "instance",
        dropout: float = 0.0,
        pad: str = "reflect",
    ):
        super().__init__()
        layers: list[nn.Module] = [ConvBlock(input_nc, ngf, 7, 1, 3, norm=norm, act="relu", pad=pad)]
        ch = ngf
        for _ in range(n_down):
            layers.append(ConvBlock(ch, ch * 2, 3, 2, 1, norm=norm, act="relu", pad="zero"))
            ch *= 2
        layers += [ResBlock(ch, norm=norm, pad=pad, dropout=dropout) for _ in range(n_blocks)]
        for _ in range(n_down):
            layers.append(UpConvBlock(ch, ch // 2, norm=norm, kernel=3))
            ch //= 2
        # The output conv always has a bias: no norm follows it.
        layers.append(ConvBlock(ch, output_nc, 7, 1, 3, norm="none", act="tanh", pad=pad, bias=True))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class _UnetLevel(nn.Module):
    """One level of the U-Net: down conv, the inner levels, up conv, then [skip, up] concat.

    ``outer_ch`` is the channel count entering this level (and returned by its up conv),
    ``inner_ch`` the count after its down conv. The innermost level has no inner module
    and no norm after its down conv; the outermost has no activation/norm before its down
    conv, its up conv has a bias and tanh, and it does not concatenate the skip.
    """

    def __init__(
        self,
        outer_ch: int,
        inner_ch: int,
        inner: nn.Module | None,
        *,
        norm: str,
        in_ch: int | None = None,
        out_ch: int | None = None,
        dropout: float = 0.0,
    ):
        super().__init__()
        outermost = in_ch is not None
        innermost = inner is None
        bias = uses_bias(norm)
        down: list[nn.Module] = [] if outermost else [activation("lrelu")]
        down.append(nn.Conv2d(in_ch if outermost else outer_ch, inner_ch, 4, 2, 1, bias=bias))
        if not (outermost or innermost):
            down.append(norm_layer(norm, inner_ch))
        up_in = inner_ch if innermost else inner_ch * 2
        up: list[nn.Module] = [activation("relu")]
        if outermost:
            up += [nn.ConvTranspose2d(up_in, out_ch, 4, 2, 1), nn.Tanh()]
        else:
            up += [nn.ConvTranspose2d(up_in, outer_ch, 4, 2, 1, bias=bias), norm_layer(norm, outer_ch)]
            if dropout > 0:
                up.append(nn.Dropout(dropout))
        self.outermost = outermost
        self.model = nn.Sequential(*down, *([inner] if inner is not None else []), *up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.model(x)
        return y if self.outermost else torch.cat([x, y], 1)


class UnetGenerator(nn.Module):
    """pix2pix's U-Net (``unet_256``: ``num_downs=8``; ``unet_128``: ``num_downs=7``).

    ``num_downs`` stride-2 4x4 convs with channels ngf, 2ngf, 4ngf, 8ngf, 8ngf, ... and mirrored
    transposed convs with skip connections; LeakyReLU 0.2 down, ReLU up, tanh out. The
    ``num_downs - 5`` innermost-but-one 8ngf levels carry dropout 0.5 when ``dropout`` is set.
    H and W must be divisible by 2**num_downs. With BatchNorm, 3->3 channels and ngf 64:
    unet_256 54,413,955 and unet_128 41,828,995 parameters.
    """

    def __init__(
        self,
        input_nc: int = 3,
        output_nc: int = 3,
        num_downs: int = 8,
        ngf: int = 64,
        norm: str = "batch",
        dropout: float = 0.5,
    ):
        super().__init__()
        if num_downs < 5:
            raise ValueError(f"UnetGenerator needs num_downs >= 5, got {num_downs}")
        level = _UnetLevel(ngf * 8, ngf * 8, None, norm=norm)
        for _ in range(num_downs - 5):
            level = _UnetLevel(ngf * 8, ngf * 8, level, norm=norm, dropout=dropout)
        for mult in (4, 2, 1):
            level = _UnetLevel(ngf * mult, ngf * mult * 2, level, norm=norm)
        self.model = _UnetLevel(output_nc, ngf, level, norm=norm, in_ch=input_nc, out_ch=output_nc)
        self.num_downs = num_downs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class _UnetZLevel(nn.Module):
    """One level of BicycleGAN's ``G_Unet_add_all``: the latent code z (N x nz), tiled over
    H x W, is concatenated to this level's input before its down conv. Returns
    [up-path output, skip] (the reverse of pix2pix's [skip, up-path]); the outermost level
    returns the tanh output alone. Every conv keeps its bias (InstanceNorm, as officially)."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        inner_ch: int,
        nz: int,
        inner: _UnetZLevel | None,
        *,
        norm: str,
        outermost: bool = False,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.outermost, self.inner = outermost, inner
        innermost = inner is None
        down: list[nn.Module] = [] if outermost else [activation("lrelu")]
        down.append(nn.Conv2d(in_ch + nz, inner_ch, 4, 2, 1))
        if not (outermost or innermost):
            down.append(norm_layer(norm, inner_ch))
        up: list[nn.Module] = [
            activation("relu"),
            nn.ConvTranspose2d(inner_ch if innermost else inner_ch * 2, out_ch, 4, 2, 1),
        ]
        if outermost:
            up.append(nn.Tanh())
        else:
            up.append(norm_layer(norm, out_ch))
            if dropout > 0:
                up.append(nn.Dropout(dropout))
        self.down, self.up = nn.Sequential(*down), nn.Sequential(*up)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        z_map = z[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
        y = self.down(torch.cat([x, z_map], 1))
        if self.inner is not None:
            y = self.inner(y, z)
        y = self.up(y)
        return y if self.outermost else torch.cat([y, x], 1)


class UnetZGenerator(nn.Module):
    """BicycleGAN's U-Net with z added at every down block (``unet_256`` / ``unet_128`` with
    ``where_add=all``, ``upsample=basic``).

    ``forward(x, z)``: x N x input_nc x H x W in [-1, 1], z N x nz -> N x output_nc x H x W in
    [-1, 1]. ``num_downs`` >= 6 levels; the ``num_downs - 5`` innermost-but-one 8ngf levels
    carry dropout. With input_nc 1, output_nc 3, nz 8, ngf 64, InstanceNorm: 54,792,579
    parameters at num_downs 8 (unet_256), 42,143,107 at 7 (unet_128).
    """

    def __init__(
        self,
        input_nc: int = 3,
        output_nc: int = 3,
        nz: int = 8,
        num_downs: int = 8,
        ngf: int = 64,
        norm: str = "instance",
        dropout: float = 0.5,
    ):
        super().__init__()
        if num_downs < 6:
            raise ValueError(f"UnetZGenerator needs num_downs >= 6, got {num_downs}")
        level = _UnetZLevel(ngf * 8, ngf * 8, ngf * 8, nz, None, norm=norm)
        for _ in range(num_downs - 5):
            level = _UnetZLevel(ngf * 8, ngf * 8, ngf * 8, nz, level, norm=norm, dropout=dropout)
        for mult in (4, 2, 1):
            level = _UnetZLevel(ngf * mult, ngf * mult, ngf * mult * 2, nz, level, norm=norm)
        self.model = _UnetZLevel(input_nc, output_nc, ngf, nz, level, norm=norm, outermost=True)
        self.nz = nz

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.model(x, z)
