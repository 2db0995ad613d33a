"""StarGAN v2 networks (Choi et al., CVPR 2020), as clovaai/stargan-v2 ``core/model.py`` builds them.

- :class:`StarGANv2Generator`: 3x3 conv from RGB, a down-sampling encoder of pre-activation
  residual blocks (affine InstanceNorm, LeakyReLU 0.2, average pooling, output divided by sqrt 2),
  two bottleneck blocks, the mirrored decoder of AdaIN residual blocks (AdaIN with ``1 + gamma``,
  nearest up-sampling), IN-LReLU-1x1 conv to RGB, no tanh. With ``w_hpf > 0`` (CelebA-HQ) the
  encoder has one level more, the decoder blocks drop their shortcut (their 1x1 shortcut conv is
  still built, as official) and, given FAN masks, a high-pass filtered encoder feature is added
  after the decoder blocks whose output is 32, 64 or 128 px.
- :class:`StarGANv2MappingNetwork`: latent z (16) -> shared 4 x Linear-ReLU (512) -> one head per
  domain (3 x Linear-ReLU + Linear to the style, 64); the head of domain y is returned.
- :class:`StarGANv2StyleEncoder` and :class:`StarGANv2Discriminator`: the same trunk (3x3 conv,
  down-sampling residual blocks without norm to 4 px, LReLU, 4x4 valid conv, LReLU), then a
  per-domain Linear to the style (E) or a 1x1 conv with one logit per domain (D).
- :class:`FAN`: the frozen face-landmark network (AdaptiveWingLoss, 98 landmarks) that gives the
  CelebA-HQ high-pass masks; see :mod:`imtrans.nets.stargan_v2_fan`.

Widths: the official code derives the first width from the image size (``2**14 // img_size``)
and caps it at 512 (``max_conv_dim``), with a hard-coded 512 in the mapping network;
``dim_in``, ``max_conv_dim`` and ``hidden_dim`` expose them (the tests build small networks).
State-dict keys are the official ones, so official files load without renaming.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from imtrans.nets.blocks import InstanceNorm2d

#: the encoder/decoder sizes (px) at which the high-pass path joins, as the official code fixes them
HPF_SIZES = (32, 64, 128)


def he_init(net: nn.Module) -> nn.Module:
    """The official ``he_init``: kaiming-normal (fan_in, ReLU gain) weights and zero biases for
    every Conv2d and Linear of ``net``; norms keep their (1, 0) affine. Returns ``net``."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return net


def pick_domain(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``out[i, y[i]]`` for per-domain outputs ``out`` (N x D [x ...]) and domain indices ``y``
    (N, or a scalar for the whole batch)."""
    y = torch.as_tensor(y, device=out.device).long().reshape(-1)
    if y.numel() == 1:
        y = y.expand(out.shape[0])
    if (y < 0).any() or (y >= out.shape[1]).any():
        raise ValueError(f"domain indices {y.tolist()} outside 0..{out.shape[1] - 1} (model.num_domains)")
    return out[torch.arange(out.shape[0], device=out.device), y]


class ResBlk(nn.Module):
    """Pre-activation residual block: ``(shortcut(x) + residual(x)) / sqrt 2``.

    residual: [IN] - LReLU 0.2 - conv3x3 (in -> in) - [avgpool 2] - [IN] - LReLU - conv3x3 (in -> out);
    shortcut: [1x1 conv without bias when in != out] - [avgpool 2]. ``normalize``: the affine
    InstanceNorms (generator encoder only). N x in x H x W -> N x out x H' x W'.
    """

    def __init__(self, dim_in: int, dim_out: int, normalize: bool = False, downsample: bool = False):
        super().__init__()
        self.normalize, self.downsample = normalize, downsample
        self.conv1 = nn.Conv2d(dim_in, dim_in, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        if normalize:
            self.norm1 = InstanceNorm2d(dim_in, affine=True)
            self.norm2 = InstanceNorm2d(dim_in, affine=True)
        self.conv1x1 = nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False) if dim_in != dim_out else None

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv1x1 is not None:
            x = self.conv1x1(x)
        return F.avg_pool2d(x, 2) if self.downsample else x

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalize:
            x = self.norm1(x)
        x = self.conv1(F.leaky_relu(x, 0.2))
        if self.downsample:
            x = F.avg_pool2d(x, 2)
        if self.normalize:
            x = self.norm2(x)
        return self.conv2(F.leaky_relu(x, 0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # sum of two unit-variance branches: divided by sqrt 2 to keep unit variance
        return (self._shortcut(x) + self._residual(x)) / math.sqrt(2)


class AdaIN(nn.Module):
    """``(1 + gamma) * IN(x) + beta`` with (gamma, beta) = Linear(style_dim -> 2C)(s).

    x: N x C x H x W; s: N x style_dim. The ``1 +`` makes a zero style an identity scale.
    """

    def __init__(self, style_dim: int, num_features: int):
        super().__init__()
        self.norm = InstanceNorm2d(num_features, affine=False)
        self.fc = nn.Linear(style_dim, num_features * 2)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.fc(s)[:, :, None, None].chunk(2, dim=1)
        return (1 + gamma) * self.norm(x) + beta


class AdainResBlk(nn.Module):
    """Decoder block: AdaIN - LReLU - [nearest x2] - conv3x3 (in -> out) - AdaIN - LReLU - conv3x3.

    ``skip`` (the official ``w_hpf == 0``): add the shortcut ([nearest x2] - [1x1 conv]) and divide
    by sqrt 2; without it the block returns the residual branch alone (the 1x1 conv is built but
    unused, as official). x: N x in x H x W, s: N x style_dim -> N x out x H' x W'.
    """

    def __init__(
        self, dim_in: int, dim_out: int, style_dim: int = 64, skip: bool = True, upsample: bool = False
    ):
        super().__init__()
        self.skip, self.upsample = skip, upsample
        self.conv1 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_out, dim_out, 3, 1, 1)
        self.norm1 = AdaIN(style_dim, dim_in)
        self.norm2 = AdaIN(style_dim, dim_out)
        self.conv1x1 = nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False) if dim_in != dim_out else None

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv1x1(x) if self.conv1x1 is not None else x

    def _residual(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.norm1(x, s), 0.2)
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = F.leaky_relu(self.norm2(self.conv1(x), s), 0.2)
        return self.conv2(x)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        out = self._residual(x, s)
        return (out + self._shortcut(x)) / math.sqrt(2) if self.skip else out


class HighPass(nn.Module):
    """Depthwise 3x3 Laplacian ``[[-1,-1,-1],[-1,8,-1],[-1,-1,-1]] / w_hpf``, padding 1.

    The kernel is a (saved) buffer ``filter``, as in official checkpoints. N x C x H x W kept.
    """

    def __init__(self, w_hpf: float):
        super().__init__()
        kernel = torch.full((3, 3), -1.0)
        kernel[1, 1] = 8.0
        self.register_buffer("filter", kernel / w_hpf)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.filter.to(x.dtype)[None, None].expand(x.shape[1], 1, 3, 3).contiguous()
        return F.conv2d(x, weight, padding=1, groups=x.shape[1])


class StarGANv2Generator(nn.Module):
    """G(x, s, masks): N x 3 x S x S in [-1, 1], style N x style_dim -> N x 3 x S x S (no tanh:
    unbounded, close to [-1, 1] once trained).

    Args:
        img_size: S, a power of two >= 32 (the encoder has ``log2 S - 4`` down-sampling levels,
            one more with ``w_hpf > 0``).
        style_dim: size of the style code (64).
        max_conv_dim: width cap (512).
        w_hpf: weight of the high-pass path (0: none, AFHQ; 1: CelebA-HQ); the HPF kernel is / w_hpf.
        dim_in: first width; None: the official ``2**14 // img_size``.
    """

    def __init__(
        self,
        img_size: int = 256,
        style_dim: int = 64,
        max_conv_dim: int = 512,
        w_hpf: float = 1,
        dim_in: int | None = None,
    ):
        super().__init__()
        dim_in = int(dim_in or 2**14 // img_size)
        self.img_size, self.w_hpf = img_size, w_hpf
        self.from_rgb = nn.Conv2d(3, dim_in, 3, 1, 1)
        self.encode = nn.ModuleList()
        self.decode = nn.ModuleList()
        self.to_rgb = nn.Sequential(
            InstanceNorm2d(dim_in, affine=True), nn.LeakyReLU(0.2), nn.Conv2d(dim_in, 3, 1, 1, 0)
        )
        levels = int(math.log2(img_size)) - 4 + (1 if w_hpf > 0 else 0)
        if levels < 1:
            raise ValueError(f"StarGANv2Generator: img_size {img_size} is too small (32 px at least)")
        skip = w_hpf == 0
        dim_out = dim_in
        for _ in range(levels):
            dim_out = min(dim_in * 2, max_conv_dim)
            self.encode.append(ResBlk(dim_in, dim_out, normalize=True, downsample=True))
            # the decoder mirrors the encoder: each new level goes first
            self.decode.insert(0, AdainResBlk(dim_out, dim_in, style_dim, skip=skip, upsample=True))
            dim_in = dim_out
        for _ in range(2):  # bottleneck
            self.encode.append(ResBlk(dim_out, dim_out, normalize=True))
            self.decode.insert(0, AdainResBlk(dim_out, dim_out, style_dim, skip=skip))
        self.hpf = HighPass(w_hpf) if w_hpf > 0 else None

    def forward(
        self, x: torch.Tensor, s: torch.Tensor, masks: tuple[torch.Tensor, torch.Tensor] | None = None
    ):
        """``masks``: the two FAN masks (N x 1 x h x w each, in [0, 1]; ``FAN.masks``) or None
        (no high-pass path: AFHQ, or CelebA-HQ run without FAN)."""
        x = self.from_rgb(x)
        use_masks = masks is not None and self.hpf is not None
        cache = {}
        for block in self.encode:
            if use_masks and x.shape[2] in HPF_SIZES:
                cache[x.shape[2]] = x  # the encoder feature at the block's input
            x = block(x)
        for block in self.decode:
            x = block(x, s)
            size = x.shape[2]
            if use_masks and size in HPF_SIZES:
                mask = masks[0] if size == HPF_SIZES[0] else masks[1]
                mask = F.interpolate(mask.to(x.dtype), size=size, mode="bilinear")
                x = x + self.hpf(mask * cache[size])
        return self.to_rgb(x)


class StarGANv2MappingNetwork(nn.Module):
    """F(z, y): latent N x latent_dim (N(0, I)) and domain indices N -> style N x style_dim.

    ``shared``: Linear(latent -> hidden)-ReLU + 3 x Linear(hidden)-ReLU; ``unshared[d]``:
    3 x Linear(hidden)-ReLU + Linear(hidden -> style_dim). ``hidden_dim`` 512 (hard-coded officially).
    """

    def __init__(
        self, latent_dim: int = 16, style_dim: int = 64, num_domains: int = 2, hidden_dim: int = 512
    ):
        super().__init__()
        layers = [nn.Linear(latent_dim, hidden_dim), nn.ReLU()]
        for _ in range(3):
            layers += [nn.Linear(hidden_dim, hidden_dim), nn.ReLU()]
        self.shared = nn.Sequential(*layers)
        self.unshared = nn.ModuleList(
            nn.Sequential(
                *[m for _ in range(3) for m in (nn.Linear(hidden_dim, hidden_dim), nn.ReLU())],
                nn.Linear(hidden_dim, style_dim),
            )
            for _ in range(num_domains)
        )
        self.latent_dim, self.style_dim = latent_dim, style_dim

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.shared(z)
        return pick_domain(torch.stack([head(h) for head in self.unshared], dim=1), y)


def _trunk(img_size: int, dim_in: int | None, max_conv_dim: int) -> tuple[list[nn.Module], int]:
    """The style encoder's and discriminator's shared layers: 3 x S x S -> dim x 1 x 1."""
    dim_in = int(dim_in or 2**14 // img_size)
    layers: list[nn.Module] = [nn.Conv2d(3, dim_in, 3, 1, 1)]
    dim_out = dim_in
    for _ in range(int(math.log2(img_size)) - 2):  # down to 4 x 4
        dim_out = min(dim_in * 2, max_conv_dim)
        layers.append(ResBlk(dim_in, dim_out, downsample=True))
        dim_in = dim_out
    layers += [nn.LeakyReLU(0.2), nn.Conv2d(dim_out, dim_out, 4, 1, 0), nn.LeakyReLU(0.2)]
    return layers, dim_out


class StarGANv2StyleEncoder(nn.Module):
    """E(x, y): images N x 3 x S x S in [-1, 1] and domain indices N -> style N x style_dim
    (the head of each image's domain ``y``)."""

    def __init__(
        self,
        img_size: int = 256,
        style_dim: int = 64,
        num_domains: int = 2,
        max_conv_dim: int = 512,
        dim_in: int | None = None,
    ):
        super().__init__()
        layers, dim_out = _trunk(img_size, dim_in, max_conv_dim)
        self.shared = nn.Sequential(*layers)
        self.unshared = nn.ModuleList(nn.Linear(dim_out, style_dim) for _ in range(num_domains))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.shared(x).flatten(1)
        return pick_domain(torch.stack([head(h) for head in self.unshared], dim=1), y)


class StarGANv2Discriminator(nn.Module):
    """D(x, y): images N x 3 x S x S in [-1, 1] and domain indices N -> N real/fake logits (the
    output of each image's domain ``y``; no sigmoid)."""

    def __init__(
        self, img_size: int = 256, num_domains: int = 2, max_conv_dim: int = 512, dim_in: int | None = None
    ):
        super().__init__()
        layers, dim_out = _trunk(img_size, dim_in, max_conv_dim)
        self.main = nn.Sequential(*layers, nn.Conv2d(dim_out, num_domains, 1, 1, 0))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return pick_domain(self.main(x).flatten(1), y)


# ----------------------------------------------------------------------------- FAN (wing.ckpt)
#: StarGAN v2's wing.ckpt (download.sh wing), the only source of the FAN weights; never downloaded
WING_FILE = "wing.ckpt"
WING_URL = "https://www.dropbox.com/s/tjxpypwpt38926e/wing.ckpt?dl=0"


class AddCoords(nn.Module):
    """Concatenate coordinate channels: x and y in [-1, 1] (rows, columns) and, with ``with_r``,
    the radius scaled to [0, 1]. N x C x h x w -> N x (C + 2 [+ 1]) x h x w. The grid is a
    non-persistent buffer (not in state dicts, as official)."""

    def __init__(self, height: int, width: int, with_r: bool):
        super().__init__()
        rows = torch.arange(height, dtype=torch.float32)[:, None].expand(height, width) / (height - 1) * 2 - 1
        cols = torch.arange(width, dtype=torch.float32)[None, :].expand(height, width) / (width - 1) * 2 - 1
        coords = [rows, cols]
        if with_r:
            r = torch.sqrt(rows**2 + cols**2)
            coords.append(r / r.max())
        self.register_buffer("coords", torch.stack(coords)[None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.coords.to(x.dtype).expand(x.shape[0], -1, -1, -1)], dim=1)


class CoordConv(nn.Module):
    """AddCoords then a conv (the official ``CoordConvTh`` as FAN uses it: no boundary channels)."""

    def __init__(self, height: int, width: int, in_channels: int, out_channels: int, **conv):
        super().__init__()
        self.addcoords = AddCoords(height, width, with_r=True)
        self.conv = nn.Conv2d(in_channels + 3, out_channels, **conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.addcoords(x))


class FanConvBlock(nn.Module):
    """FAN's hierarchical block: three BN-ReLU-conv3x3 steps (out/2, out/4, out/4 channels)
    concatenated, plus the input (BN-ReLU-1x1 conv when the width changes)."""

    def __init__(self, in_planes: int, out_planes: int):
        super().__init__()
        half, quarter = out_planes // 2, out_planes // 4
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, half, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(half)
        self.conv2 = nn.Conv2d(half, quarter, 3, 1, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(quarter)
        self.conv3 = nn.Conv2d(quarter, quarter, 3, 1, 1, bias=False)
        self.downsample = (
            nn.Sequential(
                nn.BatchNorm2d(in_planes), nn.ReLU(True), nn.Conv2d(in_planes, out_planes, 1, 1, bias=False)
            )
            if in_planes != out_planes
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out1 = self.conv1(F.relu(self.bn1(x)))
        out2 = self.conv2(F.relu(self.bn2(out1)))
        out3 = self.conv3(F.relu(self.bn3(out2)))
        residual = x if self.downsample is None else self.downsample(x)
        return torch.cat([out1, out2, out3], 1) + residual


class HourGlass(nn.Module):
    """FAN's hourglass of ``depth`` levels at 256 channels (after a 1x1 CoordConv): each level
    adds a full-resolution branch to the nearest-upsampled half-resolution one."""

    def __init__(self, depth: int = 4, features: int = 256):
        super().__init__()
        self.depth = depth
        self.coordconv = CoordConv(64, 64, features, features, kernel_size=1, stride=1, padding=0)
        self._build(depth, features)

    def _build(self, level: int, features: int) -> None:
        # registered in the official order (b1, b2, the inner levels, b2_plus at the bottom, b3)
        self.add_module(f"b1_{level}", FanConvBlock(features, features))
        self.add_module(f"b2_{level}", FanConvBlock(features, features))
        if level > 1:
            self._build(level - 1, features)
        else:
            self.add_module(f"b2_plus_{level}", FanConvBlock(features, features))
        self.add_module(f"b3_{level}", FanConvBlock(features, features))

    def _level(self, level: int, x: torch.Tensor) -> torch.Tensor:
        up = self._modules[f"b1_{level}"](x)
        low = self._modules[f"b2_{level}"](F.avg_pool2d(x, 2, stride=2))
        low = self._level(level - 1, low) if level > 1 else self._modules[f"b2_plus_{level}"](low)
        low = self._modules[f"b3_{level}"](low)
        return up + F.interpolate(low, scale_factor=2, mode="nearest")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._level(self.depth, self.coordconv(x))


#: landmark index ranges of the 98-point (WFLW) heatmaps, as the official mask code names them
PARTS = {
    "chin": (8, 25),
    "eyebrows": (33, 51),
    "eyebrowsedges": (33, 46),
    "nose": (51, 55),
    "nostrils": (55, 60),
    "eyes": (60, 76),
    "lipedges": (76, 82),
    "lipupper": (77, 82),
    "liplower": (83, 88),
    "lipinner": (88, 96),
}


def _shift(x: torch.Tensor, n: int) -> torch.Tensor:
    """The official ``shift``: heatmap rows moved up by n (down for n < 0), wrapping around."""
    return torch.roll(x, -n, dims=2)


def heatmap_masks(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The official ``preprocess`` of FAN heatmaps N x 98 x H x W into the two high-pass masks
    (each N x 1 x H x W in [0, 1]): the face parts (chin line, brows, nose, eyes, lips) thresholded
    at 0.1, min-max normalised, shifted and sharpened per part and summed; the second mask
    without the chin line, brows and mouth."""
    x = torch.where(x < 0.1, torch.zeros_like(x), x)
    n, c, h, w = x.shape
    flat = x.reshape(n * c, -1)
    low, high = flat.min(1, keepdim=True)[0], flat.max(1, keepdim=True)[0]
    x = ((flat - low) / (high - low + 1e-6)).reshape(n, c, h, w).clone()
    sw = h // 256
    # (shift, power) per part, applied in this order as official (lipupper overlaps lipedges)
    for part, (shift, power) in {
        "chin": (0, 3),
        "eyebrows": (-7 * sw, 2),
        "nostrils": (8 * sw, 4),
        "lipupper": (-8 * sw, 4),
        "liplower": (8 * sw, 4),
        "lipinner": (-2 * sw, 3),
    }.items():
        a, b = PARTS[part]
        x[:, a:b] = _shift(x[:, a:b], shift) ** power
    zero = [*range(0, PARTS["chin"][0]), *range(PARTS["chin"][1], 33)]
    zero += [PARTS["eyebrowsedges"][0], PARTS["eyebrowsedges"][1], PARTS["lipedges"][0], PARTS["lipedges"][1]]
    x[:, zero] = 0
    a, b = PARTS["nose"]
    x[:, a + 1 : b] = _shift(x[:, a + 1 : b], 4 * sw)
    a, b = PARTS["eyes"]
    eyes = x[:, a:b].clone()
    x[:, a:b] = _shift(eyes, -8) ** 3 + _shift(eyes, -24)
    x2 = x.clone()
    x2[:, slice(*PARTS["chin"])] = 0
    x2[:, PARTS["lipedges"][0] : PARTS["lipinner"][1]] = 0
    x2[:, slice(*PARTS["eyebrows"])] = 0
    x, x2 = x.sum(1, keepdim=True), x2.sum(1, keepdim=True)
    # NaNs of the first mask to 0 (official; its second mask is left as it is)
    x = torch.nan_to_num(x, nan=0.0, posinf=float("inf"), neginf=float("-inf"))
    return x.clamp(0, 1), x2.clamp(0, 1)


class FAN(nn.Module):
    """The face-alignment network of AdaptiveWingLoss (98 landmarks, one hourglass), frozen, that
    StarGAN v2 uses for its CelebA-HQ high-pass masks. 6,333,603 parameters.

    ``forward``: images N x 3 x 256 x 256 in [0, 1] -> N x 99 x 64 x 64 heatmaps (98 landmarks +
    boundary). ``masks``: images in [-1, 1] at any size -> the two masks at 256 px.
    """

    def __init__(self, num_landmarks: int = 98):
        super().__init__()
        self.conv1 = CoordConv(256, 256, 3, 64, kernel_size=7, stride=2, padding=3)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = FanConvBlock(64, 128)
        self.conv3 = FanConvBlock(128, 128)
        self.conv4 = FanConvBlock(128, 256)
        self.m0 = HourGlass(4, 256)
        self.top_m_0 = FanConvBlock(256, 256)
        self.conv_last0 = nn.Conv2d(256, 256, 1, 1, 0)
        self.bn_end0 = nn.BatchNorm2d(256)
        self.l0 = nn.Conv2d(256, num_landmarks + 1, 1, 1, 0)
        self.train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.conv4(self.conv3(F.avg_pool2d(self.conv2(x), 2, stride=2)))
        x = self.top_m_0(self.m0(x))
        return self.l0(F.relu(self.bn_end0(self.conv_last0(x))))

    def train(self, mode: bool = True) -> FAN:
        # always in eval mode: a recursive .train() (Lightning) must not switch its BatchNorm
        return super().train(False)

    @torch.no_grad()
    def masks(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The official ``get_heatmap``: x (N x 3 x H x W in [-1, 1]) resized to 256, heatmaps of
        the 98 landmarks upsampled x4 (bilinear, corners aligned), then :func:`heatmap_masks`."""
        x = F.interpolate(x, size=256, mode="bilinear")
        heatmaps = self(x * 0.5 + 0.5)[:, :-1]
        heatmaps = F.interpolate(
            heatmaps, scale_factor=x.shape[2] // heatmaps.shape[2], mode="bilinear", align_corners=True
        )
        return heatmap_masks(heatmaps)


def wing_path(path: str | None = None):
    """``path`` if given, else ``$TORCH_HOME/hub/checkpoints/wing.ckpt``."""
    from pathlib import Path

    if path is not None:
        return Path(path).expanduser()
    return Path(torch.hub.get_dir()) / "checkpoints" / WING_FILE


def load_fan(path: str | None = None) -> FAN:
    """The pretrained, frozen FAN from StarGAN v2's ``wing.ckpt`` (``{"state_dict": ...}``), in eval
    mode. Looked for at ``path`` or in the torch hub cache; a missing file is one line naming the
    file to place (:class:`~imtrans.losses.perceptual.MissingWeightsError`); nothing is downloaded.

    No SHA-256 of ``wing.ckpt`` is published (the official download.sh fetches it without a
    checksum), so the file cannot be verified: it is used with a one-line warning
    (:func:`imtrans.pretrained.check_weights`), and only its keys are checked below."""
    from imtrans.pretrained import MissingWeightsError, check_weights

    file = wing_path(path)
    if not file.is_file():
        raise MissingWeightsError(
            f"FAN weights not found: place StarGAN v2's {WING_FILE} at {file} "
            f"(download.sh wing: {WING_URL}) or set model.fan.path"
        )
    check_weights(file, WING_FILE, WING_URL)
    state = torch.load(file, map_location="cpu", weights_only=True)
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    fan = FAN()
    ours = fan.state_dict()
    missing = [k for k in ours if k not in state]
    if missing:
        raise ValueError(f"{file}: not a FAN (wing) checkpoint (no {missing[0]!r})")
    # the official loader takes the entries the network has and ignores the rest
    fan.load_state_dict({k: state[k] for k in ours})
    return fan.eval().requires_grad_(False)
