"""DRIT / DRIT++ networks (HsinYingLee/DRIT ``src/networks.py``; multi-domain: HsinYingLee/MDMM).

Written from the official definitions; parameter counts at the defaults (``dim=64``,
``dis_dim=64``, 3 channels) equal the official ones exactly:

=======================================  ===========  ===========
network                                  concat=1     concat=0
=======================================  ===========  ===========
``ContentEncoder`` (E_content)           9,018,112    9,018,112
``AttrEncoderConcat`` / ``AttrEncoder``  2,688,160    5,529,872
``GeneratorConcat`` / ``GeneratorMis``   9,564,710    17,146,374
``MultiScaleDis`` (each of 4)            8,271,171    8,271,171
``ContentDis``                           10,683,649   10,683,649
=======================================  ===========  ===========

Official quirks kept because they define the model:

- ``LeakyReLUConv2d`` never normalises (the official test ``'norm' == 'Instance'`` compares
  two literals), so the image and content discriminators have no norm; its slope is
  PyTorch's default 0.01.
- The attribute encoder (concat=1) uses LeakyReLU 0.2, no norm, average-pool residual blocks.
- The "INS" up-sampling blocks of the generators use a LayerNorm over (C, H, W) with
  per-channel affine parameters, not instance norm.
- Content codes get additive N(0, 1) noise in training mode only.
- Initialisation (:func:`drit_init`): N(0, 0.02) on the weights of ``Conv*`` layers only;
  biases and ``Linear`` layers keep PyTorch's defaults.

The content discriminator's kernels only fit content maps of 53-60 px (crops of 209-240 px).
``ContentDis(fit=...)`` keeps that exact form where it fits and, for other sizes, resizes the
content map to 54 x 54 first (``auto``; parameter-free, so the count is unchanged);
``exact`` refuses other sizes as the official code does, ``resize`` always resizes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from imtrans.nets.blocks import InstanceNorm2d, ReflectionPad2d


def drit_init(net: nn.Module, std: float = 0.02) -> nn.Module:
    """The official ``gaussian_weights_init``: N(0, std) on the weights of modules whose
    class name starts with ``Conv`` (Conv2d, ConvTranspose2d); nothing else is touched."""
    for m in net.modules():
        if type(m).__name__.startswith("Conv"):
            nn.init.normal_(m.weight, 0.0, std)
    return net


# ---------------------------------------------------------------------------- blocks
def leaky_conv(n_in: int, n_out: int, k: int, s: int, p: int = 0) -> nn.Sequential:
    """``LeakyReLUConv2d``: reflection pad, conv, LeakyReLU(0.01); never a norm."""
    return nn.Sequential(ReflectionPad2d(p), nn.Conv2d(n_in, n_out, k, s), nn.LeakyReLU(0.01, inplace=True))


def relu_ins_conv(n_in: int, n_out: int, k: int, s: int, p: int = 0) -> nn.Sequential:
    """``ReLUINSConv2d``: reflection pad, conv, InstanceNorm (no affine), ReLU."""
    return nn.Sequential(
        ReflectionPad2d(p), nn.Conv2d(n_in, n_out, k, s), InstanceNorm2d(n_out), nn.ReLU(inplace=True)
    )


class INSResBlock(nn.Module):
    """Residual block: 2 x (reflect pad, 3x3 conv, InstanceNorm), ReLU between."""

    def __init__(self, dim: int):
        super().__init__()
        self.model = nn.Sequential(
            ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3),
            InstanceNorm2d(dim),
            nn.ReLU(inplace=True),
            ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3),
            InstanceNorm2d(dim),
        )

    def forward(self, x):
        return self.model(x) + x


class DritLayerNorm(nn.Module):
    """``F.layer_norm`` over (C, H, W) with per-channel weight and bias (the official LayerNorm)."""

    def __init__(self, n_out: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(n_out, 1, 1))
        self.bias = nn.Parameter(torch.zeros(n_out, 1, 1))

    def forward(self, x):
        shape = x.shape[1:]
        return F.layer_norm(x, shape, self.weight.expand(shape), self.bias.expand(shape), self.eps)


def relu_ln_deconv(n_in: int, n_out: int) -> nn.Sequential:
    """``ReLUINSConvTranspose2d``: 3x3 stride-2 transposed conv (x2), LayerNorm, ReLU."""
    return nn.Sequential(
        nn.ConvTranspose2d(n_in, n_out, 3, 2, 1, output_padding=1),
        DritLayerNorm(n_out),
        nn.ReLU(inplace=True),
    )


class GaussianNoise(nn.Module):
    """Adds N(0, 1) noise in training mode; identity in eval mode."""

    def forward(self, x):
        return x + torch.randn_like(x) if self.training else x


def _tile(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.view(v.shape[0], v.shape[1], 1, 1).expand(v.shape[0], v.shape[1], like.shape[2], like.shape[3])


# ---------------------------------------------------------------------------- encoders
def content_branch(input_dim: int, dim: int = 64) -> nn.Sequential:
    """Per-domain part of E_content: 7x7 conv + LeakyReLU, 2 down-sampling IN convs, 3 IN res blocks."""
    layers = [leaky_conv(input_dim, dim, 7, 1, 3)]
    tch = dim
    for _ in range(2):
        layers.append(relu_ins_conv(tch, tch * 2, 3, 2, 1))
        tch *= 2
    layers += [INSResBlock(tch) for _ in range(3)]
    return nn.Sequential(*layers)


class ContentEncoder(nn.Module):
    """E_content: per-domain branches ``conv_a``/``conv_b`` and a shared IN res block + noise.
    Output: N x 4*dim x H/4 x W/4."""

    def __init__(self, input_dim_a: int = 3, input_dim_b: int = 3, dim: int = 64):
        super().__init__()
        self.out_dim = 4 * dim
        self.conv_a = content_branch(input_dim_a, dim)
        self.conv_b = content_branch(input_dim_b, dim)
        self.conv_share = nn.Sequential(INSResBlock(4 * dim), GaussianNoise())

    def forward_a(self, x):
        return self.conv_share(self.conv_a(x))

    def forward_b(self, x):
        return self.conv_share(self.conv_b(x))

    def forward(self, xa, xb):
        return self.forward_a(xa), self.forward_b(xb)


class MultiContentEncoder(nn.Module):
    """MDMM's ``MD_E_content``: one branch for all domains (the shared block appended)."""

    def __init__(self, input_dim: int = 3, dim: int = 64):
        super().__init__()
        self.out_dim = 4 * dim
        self.conv = nn.Sequential(*content_branch(input_dim, dim), INSResBlock(4 * dim), GaussianNoise())

    def forward(self, x):
        return self.conv(x)


class _BasicBlock(nn.Module):
    """Residual block with average-pool down-sampling (no norm): lrelu, conv3x3, lrelu,
    conv3x3 + avgpool; shortcut avgpool + 1x1 conv."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.conv = nn.Sequential(
            nn.LeakyReLU(0.2),
            ReflectionPad2d(1),
            nn.Conv2d(n_in, n_in, 3),
            nn.LeakyReLU(0.2),
            nn.Sequential(ReflectionPad2d(1), nn.Conv2d(n_in, n_out, 3), nn.AvgPool2d(2, 2)),
        )
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(n_in, n_out, 1))

    def forward(self, x):
        return self.conv(x) + self.shortcut(x)


class AttrBranchConcat(nn.Module):
    """One domain's attribute encoder for concat=1: 4x4 s2 conv, 3 ``_BasicBlock`` (x1, x2,
    x3, x4 of ``dim`` channels), LeakyReLU 0.2, global average pool, linear mu and logvar heads."""

    def __init__(self, input_dim: int, nz: int = 8, dim: int = 64):
        super().__init__()
        layers: list[nn.Module] = [ReflectionPad2d(1), nn.Conv2d(input_dim, dim, 4, 2)]
        for n in range(1, 4):
            layers.append(_BasicBlock(dim * min(4, n), dim * min(4, n + 1)))
        layers += [nn.LeakyReLU(0.2), nn.AdaptiveAvgPool2d(1)]
        self.conv = nn.Sequential(*layers)
        self.fc = nn.Linear(dim * 4, nz)
        self.fc_var = nn.Linear(dim * 4, nz)

    def forward(self, x):
        h = self.conv(x).flatten(1)
        return self.fc(h), self.fc_var(h)


class AttrBranch(nn.Module):
    """One domain's deterministic attribute encoder for concat=0: conv stack 64-128-256-256-256
    with ReLU, global pool, 1x1 conv to nz."""

    def __init__(self, input_dim: int, nz: int = 8, dim: int = 64):
        super().__init__()
        layers: list[nn.Module] = [
            ReflectionPad2d(3),
            nn.Conv2d(input_dim, dim, 7, 1),
            nn.ReLU(inplace=True),
        ]
        for n_in, n_out in ((dim, dim * 2), (dim * 2, dim * 4), (dim * 4, dim * 4), (dim * 4, dim * 4)):
            layers += [ReflectionPad2d(1), nn.Conv2d(n_in, n_out, 4, 2), nn.ReLU(inplace=True)]
        layers += [nn.AdaptiveAvgPool2d(1), nn.Conv2d(dim * 4, nz, 1, 1, 0)]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x).flatten(1)


class _TwoDomain(nn.Module):
    """``branch_a``/``branch_b`` with ``forward_a``, ``forward_b`` and ``forward(xa, xb)``."""

    def forward_a(self, x, *args):
        return self.branch_a(x, *args)

    def forward_b(self, x, *args):
        return self.branch_b(x, *args)


class AttrEncoderConcat(_TwoDomain):
    """E_attr_concat: per domain ``(mu, logvar)``, each N x nz."""

    stochastic = True

    def __init__(self, input_dim_a: int = 3, input_dim_b: int = 3, nz: int = 8, dim: int = 64):
        super().__init__()
        self.branch_a = AttrBranchConcat(input_dim_a, nz, dim)
        self.branch_b = AttrBranchConcat(input_dim_b, nz, dim)


class AttrEncoder(_TwoDomain):
    """E_attr (concat=0): per domain a deterministic code N x nz."""

    stochastic = False

    def __init__(self, input_dim_a: int = 3, input_dim_b: int = 3, nz: int = 8, dim: int = 64):
        super().__init__()
        self.branch_a = AttrBranch(input_dim_a, nz, dim)
        self.branch_b = AttrBranch(input_dim_b, nz, dim)


class _CondInput(nn.Module):
    """Concatenates a code tiled over the image to the input channels (MDMM's attribute encoders)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x, c):
        return self.net(torch.cat([x, _tile(c.to(x.dtype), x)], 1))


class MultiAttrEncoder(nn.Module):
    """MDMM's ``MD_E_attr_concat`` (concat=1: ``(mu, logvar)``) or ``MD_E_attr`` (concat=0):
    one encoder for all domains, the one-hot domain code tiled and concatenated to the image."""

    def __init__(self, input_dim: int = 3, nz: int = 8, c_dim: int = 3, dim: int = 64, concat: bool = True):
        super().__init__()
        self.stochastic = bool(concat)
        branch = AttrBranchConcat if concat else AttrBranch
        self.model = _CondInput(branch(input_dim + c_dim, nz, dim))

    def forward(self, x, c):
        return self.model(x, c)


# ---------------------------------------------------------------------------- generators
class ConcatDecoder(nn.Module):
    """One domain's decoder of G_concat: 3 IN res blocks on content+extra+z, two LayerNorm
    transposed convs and a 1x1 transposed conv + tanh, with z re-concatenated before each."""

    def __init__(self, output_dim: int, nz: int = 8, content_dim: int = 256, extra: int = 0):
        super().__init__()
        tch = content_dim + nz + extra
        self.dec1 = nn.Sequential(*[INSResBlock(tch) for _ in range(3)])
        tch += nz
        self.dec2 = relu_ln_deconv(tch, tch // 2)
        tch = tch // 2 + nz
        self.dec3 = relu_ln_deconv(tch, tch // 2)
        tch = tch // 2 + nz
        self.dec4 = nn.Sequential(nn.ConvTranspose2d(tch, output_dim, 1, 1, 0), nn.Tanh())

    def forward(self, h, z, c=None):
        first = [h, z] if c is None else [h, c, z]  # MDMM's order: content, domain code, z
        out = self.dec1(torch.cat([t if t.dim() == 4 else _tile(t.to(h.dtype), h) for t in first], 1))
        out = self.dec2(torch.cat([out, _tile(z, out)], 1))
        out = self.dec3(torch.cat([out, _tile(z, out)], 1))
        return self.dec4(torch.cat([out, _tile(z, out)], 1))


class GeneratorConcat(_TwoDomain):
    """G_concat: a shared IN res block, then per-domain :class:`ConcatDecoder`."""

    def __init__(self, output_dim_a: int = 3, output_dim_b: int = 3, nz: int = 8, dim: int = 64):
        super().__init__()
        self.dec_share = INSResBlock(4 * dim)
        self.dec_a = ConcatDecoder(output_dim_a, nz, 4 * dim)
        self.dec_b = ConcatDecoder(output_dim_b, nz, 4 * dim)

    def forward_a(self, x, z):
        return self.dec_a(self.dec_share(x), z)

    def forward_b(self, x, z):
        return self.dec_b(self.dec_share(x), z)


class MisINSResBlock(nn.Module):
    """Residual block whose two 3x3 IN convs are each followed by two 1x1 convs (+ReLU) on the
    features concatenated with a per-block code."""

    def __init__(self, dim: int, dim_extra: int):
        super().__init__()

        def conv3():
            return nn.Sequential(
                nn.Sequential(ReflectionPad2d(1), nn.Conv2d(dim, dim, 3)), InstanceNorm2d(dim)
            )

        def mix():
            return nn.Sequential(
                nn.Conv2d(dim + dim_extra, dim + dim_extra, 1),
                nn.ReLU(),
                nn.Conv2d(dim + dim_extra, dim, 1),
                nn.ReLU(),
            )

        self.conv1, self.conv2, self.blk1, self.blk2 = conv3(), conv3(), mix(), mix()

    def forward(self, x, z):
        zt = _tile(z, x)
        o = self.blk1(torch.cat([self.conv1(x), zt], 1))
        return self.blk2(torch.cat([self.conv2(o), zt], 1)) + x


class MisDecoder(nn.Module):
    """One domain's decoder of G (concat=0): MLP nz(+c)-mlp-mlp-4*C, four ``MisINSResBlock``
    fed one chunk each, two LayerNorm transposed convs, 1x1 transposed conv, tanh."""

    def __init__(
        self, output_dim: int, nz: int = 8, content_dim: int = 256, mlp_dim: int = 256, extra: int = 0
    ):
        super().__init__()
        self.content_dim = content_dim
        self.mlp = nn.Sequential(
            nn.Linear(nz + extra, mlp_dim),
            nn.ReLU(inplace=True),
            nn.Linear(mlp_dim, mlp_dim),
            nn.ReLU(inplace=True),
            nn.Linear(mlp_dim, content_dim * 4),
        )
        self.blocks = nn.ModuleList([MisINSResBlock(content_dim, content_dim) for _ in range(4)])
        tch = content_dim
        self.up = nn.Sequential(
            relu_ln_deconv(tch, tch // 2),
            relu_ln_deconv(tch // 2, tch // 4),
            nn.ConvTranspose2d(tch // 4, output_dim, 1, 1, 0),
            nn.Tanh(),
        )

    def forward(self, h, z, c=None):
        zc = z if c is None else torch.cat([c.to(z.dtype), z], 1)  # MDMM: [c, z]
        for blk, chunk in zip(self.blocks, self.mlp(zc).split(self.content_dim, 1)):
            h = blk(h, chunk.contiguous())
        return self.up(h)


class GeneratorMis(_TwoDomain):
    """G (concat=0): per-domain :class:`MisDecoder` (no shared block)."""

    def __init__(
        self, output_dim_a: int = 3, output_dim_b: int = 3, nz: int = 8, dim: int = 64, mlp_dim: int = 256
    ):
        super().__init__()
        self.branch_a = MisDecoder(output_dim_a, nz, 4 * dim, mlp_dim)
        self.branch_b = MisDecoder(output_dim_b, nz, 4 * dim, mlp_dim)


class MultiGenerator(nn.Module):
    """MDMM's ``MD_G_multi_concat`` (shared block + one :class:`ConcatDecoder` with the domain
    code concatenated once) or ``MD_G_multi`` (one :class:`MisDecoder`, code into the MLP)."""

    def __init__(
        self,
        output_dim: int = 3,
        nz: int = 8,
        c_dim: int = 3,
        dim: int = 64,
        concat: bool = True,
        mlp_dim: int = 256,
    ):
        super().__init__()
        self.concat = bool(concat)
        if self.concat:
            self.dec_share = INSResBlock(4 * dim)
            self.dec = ConcatDecoder(output_dim, nz, 4 * dim, extra=c_dim)
        else:
            self.dec = MisDecoder(output_dim, nz, 4 * dim, mlp_dim, extra=c_dim)

    def forward(self, x, z, c):
        if self.concat:
            x = self.dec_share(x)
        return self.dec(x, z, c)


# ---------------------------------------------------------------------------- discriminators
class MultiScaleDis(nn.Module):
    """``MultiScaleDis``: per scale n_layer x (reflect pad 1, 4x4 s2 conv, LeakyReLU 0.01) and
    a 1x1 conv; AvgPool(3, 2, 1, count_include_pad=False) between scales. List of logit maps."""

    def __init__(self, input_dim: int = 3, n_scale: int = 3, n_layer: int = 4, dim: int = 64):
        super().__init__()
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.diss = nn.ModuleList()
        for _ in range(n_scale):
            layers = [leaky_conv(input_dim, dim, 4, 2, 1)]
            tch = dim
            for _ in range(1, n_layer):
                layers.append(leaky_conv(tch, tch * 2, 4, 2, 1))
                tch *= 2
            layers.append(nn.Conv2d(tch, 1, 1, 1, 0))
            self.diss.append(nn.Sequential(*layers))

    def forward(self, x):
        outs = []
        for i, d in enumerate(self.diss):
            if i:
                x = self.downsample(x)
            outs.append(d(x))
        return outs


class ContentDis(nn.Module):
    """``Dis_content``: 3 x (7x7 s2 conv, pad 1, LeakyReLU), 4x4 conv + LeakyReLU, 1x1 conv to
    ``out_dim`` (1: one logit per image; MDMM: one per domain).

    ``fit``: ``exact`` (official: content maps of 53-60 px only), ``resize`` (always resize
    the map to ``size`` x ``size`` first, bilinear, antialiased when shrinking), ``auto``
    (resize only maps outside 53-60 px). Returns N (out_dim 1) or N x out_dim logits.
    """

    FITS = range(53, 61)

    def __init__(self, dim: int = 256, out_dim: int = 1, fit: str = "auto", size: int = 54):
        super().__init__()
        if fit not in ("exact", "resize", "auto"):
            raise ValueError(f"ContentDis fit must be exact, resize or auto, got {fit!r}")
        self.fit, self.size, self.out_dim = fit, int(size), int(out_dim)
        self.model = nn.Sequential(
            leaky_conv(dim, dim, 7, 2, 1),
            leaky_conv(dim, dim, 7, 2, 1),
            leaky_conv(dim, dim, 7, 2, 1),
            leaky_conv(dim, dim, 4, 1, 0),
            nn.Conv2d(dim, out_dim, 1, 1, 0),
        )

    def forward(self, x):
        h, w = x.shape[-2:]
        # comparisons, not `in range`: torch.compile cannot test a symbolic size for membership
        fits = all(self.FITS.start <= n < self.FITS.stop for n in (h, w))
        if self.fit == "resize" or (self.fit == "auto" and not fits):
            # in float32: the CPU's antialiased kernel has no bfloat16 version (bf16-mixed runs)
            x = F.interpolate(
                x.float(),
                size=(self.size, self.size),
                mode="bilinear",
                align_corners=False,
                antialias=min(h, w) > self.size,
            ).to(x.dtype)
        elif not fits:
            raise ValueError(
                f"the official content discriminator takes content maps of 53-60 px (crops of 209-240 px), "
                f"got {h}x{w}; set model.content_dis_fit=auto or resize"
            )
        out = self.model(x).flatten(1)
        return out[:, 0] if self.out_dim == 1 else out


class MultiDomainDis(nn.Module):
    """MDMM's ``MD_Dis``: 6 x (reflect pad 1, 3x3 s2 conv, LeakyReLU 0.01) with 64-...-1024-1024
    channels; an adversarial 1x1 conv (padding 1, no bias) and a domain-classification conv
    (kernel image_size / 64, no bias) averaged to N x c_dim logits."""

    def __init__(
        self, input_dim: int = 3, c_dim: int = 3, image_size: int = 216, dim: int = 64, n_layer: int = 6
    ):
        super().__init__()
        layers = [leaky_conv(input_dim, dim, 3, 2, 1)]
        tch = dim
        for _ in range(1, n_layer - 1):
            layers.append(leaky_conv(tch, tch * 2, 3, 2, 1))
            tch *= 2
        layers.append(leaky_conv(tch, tch, 3, 2, 1))
        self.model = nn.Sequential(*layers)
        self.conv1 = nn.Conv2d(tch, 1, 1, 1, 1, bias=False)
        self.conv2 = nn.Conv2d(tch, c_dim, max(1, int(image_size / 2**n_layer)), bias=False)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        h = self.model(x)
        return [self.conv1(h)], self.pool(self.conv2(h)).flatten(1)
