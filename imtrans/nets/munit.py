"""MUNIT / UNIT networks (NVlabs/MUNIT ``networks.py``), rebuilt to the same functions.

- :class:`AdaINGen`: MUNIT's auto-encoder per domain: style encoder (no norm, 4 fixed
  stride-2 convs, global pool, 1x1 conv to ``style_dim``), content encoder (InstanceNorm),
  decoder (AdaIN residual blocks, nearest x2 upsampling + 5x5 conv + :class:`MunitLayerNorm`,
  7x7 conv, tanh) and the MLP that turns a style code into the AdaIN parameters.
- :class:`VAEGen`: UNIT v2's auto-encoder: the same content encoder and decoder, with
  InstanceNorm instead of AdaIN in the decoder's residual blocks.
- :class:`MsImageDis`: the multi-scale discriminator (scales fed by 3x3 average pooling with
  ``count_include_pad=False``).

Module and attribute names follow the official code (``enc_style.model.0.conv.weight``,
``dec.model.0.model.1.model.0.norm.running_mean``, ``cnns.2.4.weight``, ...), so official
``gen_*.pt`` / ``dis_*.pt`` state dicts (their ``"a"`` and ``"b"`` entries) load into
``AdaINGen`` / ``VAEGen`` / ``MsImageDis`` strictly.

Tensors are N x C x H x W; images in [-1, 1]; style codes N x ``style_dim`` (the official
N x style_dim x 1 x 1 is accepted too). H and W must be divisible by 2 ** n_downsample; the
style encoder needs at least 16 px (its 4 stride-2 convs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from imtrans.nets.blocks import InstanceNorm2d, activation, padding_layer

# ---------------------------------------------------------------------------- normalisations


class MunitLayerNorm(nn.Module):
    """MUNIT's LayerNorm: per-sample statistics over (C, H, W), *unbiased* std, and
    ``(x - mean) / (std + eps)`` (not ``sqrt(var + eps)``), then a per-channel affine with
    gamma ~ U(0, 1) and beta = 0 at construction.

    ``nn.LayerNorm`` and ``GroupNorm(1)`` use the biased variance inside the square root and
    an element-wise (LayerNorm) affine: different functions, hence this class.

    Input N x C x ... (any trailing dims), output the same shape.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, affine: bool = True):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.affine = affine
        if affine:
            self.gamma = nn.Parameter(torch.empty(num_features).uniform_())
            self.beta = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(x.shape[0], -1)
        shape = (-1,) + (1,) * (x.dim() - 1)
        mean = flat.mean(1).view(shape)
        std = flat.std(1).view(shape)  # unbiased (N - 1), as the official code
        x = (x - mean) / (std + self.eps)
        if self.affine:
            shape = (1, -1) + (1,) * (x.dim() - 2)
            x = x * self.gamma.view(shape) + self.beta.view(shape)
        return x


class AdaptiveInstanceNorm2d(nn.Module):
    """AdaIN without parameters of its own: instance statistics of the current input (biased
    variance, eps 1e-5), then a per-sample, per-channel scale ``weight`` and shift ``bias``
    that :func:`assign_adain_params` sets before each forward (N x C each; the MLP's output).

    ``out = (x - mean_nc) / sqrt(var_nc + eps) * weight[n, c] + bias[n, c]``. The scale is
    used as predicted (no ``1 +``, no activation), as in the official code.

    ``running_mean``/``running_var`` are unused buffers kept only so that official state
    dicts load strictly.
    """

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.weight: torch.Tensor | None = None
        self.bias: torch.Tensor | None = None
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.weight is None or self.bias is None:
            raise RuntimeError("AdaptiveInstanceNorm2d: assign weight and bias (assign_adain_params) first")
        n, c = x.shape[:2]
        # Batch norm over a 1 x (N*C) x H x W view is instance norm per (n, c) with a
        # per-(n, c) affine in one fused kernel; no running statistics are touched.
        out = F.batch_norm(
            x.reshape(1, n * c, *x.shape[2:]),
            None,
            None,
            self.weight.reshape(-1),
            self.bias.reshape(-1),
            training=True,
            eps=self.eps,
        )
        return out.view_as(x)

    def extra_repr(self) -> str:
        return str(self.num_features)


def adain_layers(module: nn.Module) -> list[AdaptiveInstanceNorm2d]:
    """The AdaIN layers of ``module`` in module order (the order the MLP output is consumed in)."""
    return [m for m in module.modules() if isinstance(m, AdaptiveInstanceNorm2d)]


def num_adain_params(module: nn.Module) -> int:
    """2 x channels summed over the AdaIN layers: the MLP's output width."""
    return sum(2 * m.num_features for m in adain_layers(module))


def assign_adain_params(params: torch.Tensor, module: nn.Module) -> None:
    """Hand the MLP output (N x num_adain_params) to the AdaIN layers of ``module``.

    Consumed layer by layer in module order; for each layer of C channels the first C values
    are the bias (mean), the next C the weight (std) -- the official order.
    """
    offset = 0
    for m in adain_layers(module):
        c = m.num_features
        m.bias = params[:, offset : offset + c]
        m.weight = params[:, offset + c : offset + 2 * c]
        offset += 2 * c
    if offset != params.shape[1]:
        raise ValueError(f"AdaIN parameters: got {params.shape[1]} values, the layers take {offset}")


def clear_adain_params(module: nn.Module) -> None:
    """Drop the assigned tensors, so no autograd graph outlives the forward that used it."""
    for m in adain_layers(module):
        m.weight = m.bias = None


def _norm(word: str, channels: int) -> nn.Module | None:
    """MUNIT's norm words in imtrans spelling: instance, layer (MunitLayerNorm), adain, none."""
    if word == "instance":
        return InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if word == "layer":
        return MunitLayerNorm(channels)
    if word == "adain":
        return AdaptiveInstanceNorm2d(channels)
    if word == "none":
        return None
    raise ValueError(f"unknown norm {word!r}; choose instance, layer, adain or none")


# ---------------------------------------------------------------------------- blocks


class MunitConvBlock(nn.Module):
    """pad -> conv (with bias) -> norm -> activation; MUNIT's ``Conv2dBlock``.

    ``norm``: instance / layer / adain / none; ``act``: relu / lrelu / tanh / none;
    ``pad``: reflect / replicate / zero.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int,
        stride: int = 1,
        padding: int = 0,
        *,
        norm: str = "none",
        act: str = "relu",
        pad: str = "zero",
    ):
        super().__init__()
        pad_layers, conv_pad = padding_layer(pad, padding)
        self.pad = pad_layers[0] if pad_layers else nn.Identity()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, conv_pad, bias=True)
        self.norm = _norm(norm, out_ch)
        self.activation = None if act == "none" else activation(act)

    def forward(self, x):
        x = self.conv(self.pad(x))
        if self.norm is not None:
            x = self.norm(x)
        if self.activation is not None:
            x = self.activation(x)
        return x


class MunitResBlock(nn.Module):
    """x + [conv3x3-norm-act, conv3x3-norm](x), channels kept."""

    def __init__(self, dim: int, norm: str = "instance", act: str = "relu", pad: str = "zero"):
        super().__init__()
        self.model = nn.Sequential(
            MunitConvBlock(dim, dim, 3, 1, 1, norm=norm, act=act, pad=pad),
            MunitConvBlock(dim, dim, 3, 1, 1, norm=norm, act="none", pad=pad),
        )

    def forward(self, x):
        return x + self.model(x)


class ResBlocks(nn.Module):
    def __init__(
        self, num_blocks: int, dim: int, norm: str = "instance", act: str = "relu", pad: str = "zero"
    ):
        super().__init__()
        self.model = nn.Sequential(*[MunitResBlock(dim, norm, act, pad) for _ in range(num_blocks)])

    def forward(self, x):
        return self.model(x)


class LinearBlock(nn.Module):
    """Linear (with bias) -> activation."""

    def __init__(self, in_dim: int, out_dim: int, act: str = "relu"):
        super().__init__()
        self.fc = nn.Linear(in_dim, out_dim)
        self.activation = None if act == "none" else activation(act)

    def forward(self, x):
        x = self.fc(x)
        return x if self.activation is None else self.activation(x)


class MLP(nn.Module):
    """``n_blk`` linear layers in_dim -> dim -> ... -> out_dim, ReLU between, none at the end.

    Input N x in_dim (or N x in_dim x 1 x 1), output N x out_dim.
    """

    def __init__(self, in_dim: int, out_dim: int, dim: int, n_blk: int = 3, act: str = "relu"):
        super().__init__()
        layers = [LinearBlock(in_dim, dim, act)]
        layers += [LinearBlock(dim, dim, act) for _ in range(n_blk - 2)]
        layers += [LinearBlock(dim, out_dim, "none")]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x.reshape(x.shape[0], -1))


# ---------------------------------------------------------------------------- encoders, decoder


class StyleEncoder(nn.Module):
    """7x7 conv (dim), 2 stride-2 4x4 convs doubling channels, ``n_downsample - 2`` more at the
    same width, global average pooling, 1x1 conv to ``style_dim``. No normalisation in MUNIT.

    Input N x C x H x W in [-1, 1]; output N x style_dim (unbounded; the prior is N(0, I)).
    """

    def __init__(
        self,
        n_downsample: int,
        input_dim: int,
        dim: int,
        style_dim: int,
        norm: str = "none",
        act: str = "relu",
        pad: str = "reflect",
    ):
        super().__init__()
        layers: list[nn.Module] = [MunitConvBlock(input_dim, dim, 7, 1, 3, norm=norm, act=act, pad=pad)]
        for _ in range(2):
            layers.append(MunitConvBlock(dim, 2 * dim, 4, 2, 1, norm=norm, act=act, pad=pad))
            dim *= 2
        for _ in range(n_downsample - 2):
            layers.append(MunitConvBlock(dim, dim, 4, 2, 1, norm=norm, act=act, pad=pad))
        layers += [nn.AdaptiveAvgPool2d(1), nn.Conv2d(dim, style_dim, 1, 1, 0)]
        self.model = nn.Sequential(*layers)
        self.output_dim = dim

    def forward(self, x):
        return self.model(x).flatten(1)


class ContentEncoder(nn.Module):
    """7x7 conv (dim), ``n_downsample`` stride-2 4x4 convs doubling channels, ``n_res``
    residual blocks; InstanceNorm throughout.

    Input N x C x H x W; output N x (dim * 2 ** n_downsample) x H / 2 ** n x W / 2 ** n.
    """

    def __init__(
        self,
        n_downsample: int,
        n_res: int,
        input_dim: int,
        dim: int,
        norm: str = "instance",
        act: str = "relu",
        pad: str = "reflect",
    ):
        super().__init__()
        layers: list[nn.Module] = [MunitConvBlock(input_dim, dim, 7, 1, 3, norm=norm, act=act, pad=pad)]
        for _ in range(n_downsample):
            layers.append(MunitConvBlock(dim, 2 * dim, 4, 2, 1, norm=norm, act=act, pad=pad))
            dim *= 2
        layers.append(ResBlocks(n_res, dim, norm, act, pad))
        self.model = nn.Sequential(*layers)
        self.output_dim = dim

    def forward(self, x):
        return self.model(x)


class Decoder(nn.Module):
    """``n_res`` residual blocks (``res_norm``: adain for MUNIT, instance for UNIT), then
    ``n_upsample`` x [nearest x2, 5x5 conv halving channels, MunitLayerNorm, act], 7x7 conv, tanh.

    ``forward(content, adain_params=None)``: content N x dim x h x w; ``adain_params``
    N x num_adain_params (required when ``res_norm`` is adain). Output N x output_dim x
    (h * 2 ** n) x (w * 2 ** n) in [-1, 1].
    """

    def __init__(
        self,
        n_upsample: int,
        n_res: int,
        dim: int,
        output_dim: int,
        res_norm: str = "adain",
        act: str = "relu",
        pad: str = "reflect",
    ):
        super().__init__()
        layers: list[nn.Module] = [ResBlocks(n_res, dim, res_norm, act, pad)]
        for _ in range(n_upsample):
            layers += [
                nn.Upsample(scale_factor=2),
                MunitConvBlock(dim, dim // 2, 5, 1, 2, norm="layer", act=act, pad=pad),
            ]
            dim //= 2
        layers.append(MunitConvBlock(dim, output_dim, 7, 1, 3, norm="none", act="tanh", pad=pad))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, adain_params: torch.Tensor | None = None) -> torch.Tensor:
        if adain_params is None:
            return self.model(x)
        assign_adain_params(adain_params, self)
        try:
            return self.model(x)
        finally:
            clear_adain_params(self)


# ---------------------------------------------------------------------------- generators


class AdaINGen(nn.Module):
    """MUNIT's auto-encoder for one domain (official ``AdaINGen``).

    Args:
        input_dim: image channels of the domain.
        dim, style_dim, mlp_dim, n_downsample, n_res, activ, pad_type: the official ``gen``
            options (64, 8, 256, 2, 4, relu, reflect in every official config).
        style_downsample: the style encoder's stride-2 convs (hard-coded 4 officially).

    ``encode(x) -> (content N x 4dim x H/4 x W/4, style N x style_dim)``,
    ``decode(content, style) -> N x input_dim x H x W in [-1, 1]``, ``forward`` = decode(encode).
    """

    def __init__(
        self,
        input_dim: int = 3,
        dim: int = 64,
        style_dim: int = 8,
        mlp_dim: int = 256,
        n_downsample: int = 2,
        n_res: int = 4,
        activ: str = "relu",
        pad_type: str = "reflect",
        style_downsample: int = 4,
    ):
        super().__init__()
        self.style_dim = style_dim
        self.enc_style = StyleEncoder(style_downsample, input_dim, dim, style_dim, "none", activ, pad_type)
        self.enc_content = ContentEncoder(n_downsample, n_res, input_dim, dim, "instance", activ, pad_type)
        self.dec = Decoder(
            n_downsample, n_res, self.enc_content.output_dim, input_dim, "adain", activ, pad_type
        )
        self.mlp = MLP(style_dim, num_adain_params(self.dec), mlp_dim, 3, activ)

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.enc_content(images), self.enc_style(images)

    def decode(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return self.dec(content, self.mlp(style.reshape(style.shape[0], -1)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.decode(*self.encode(images))


class VAEGen(nn.Module):
    """UNIT v2's auto-encoder for one domain (official ``VAEGen``): the "reduced VAE" whose
    encoder output is the mean of a unit-variance Gaussian.

    ``encode(x) -> hidden`` N x 4dim x H/4 x W/4 (the mean); ``decode(hidden) -> image`` in
    [-1, 1]. ``forward`` adds N(0, I) noise to the hidden code in training mode only, as the
    official forward does; the trainer adds the noise itself (see ``imtrans.methods.UNIT``).
    """

    def __init__(
        self,
        input_dim: int = 3,
        dim: int = 64,
        n_downsample: int = 2,
        n_res: int = 4,
        activ: str = "relu",
        pad_type: str = "reflect",
    ):
        super().__init__()
        self.enc = ContentEncoder(n_downsample, n_res, input_dim, dim, "instance", activ, pad_type)
        self.dec = Decoder(n_downsample, n_res, self.enc.output_dim, input_dim, "instance", activ, pad_type)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.enc(images)

    def decode(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.dec(hidden)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        hidden = self.encode(images)
        return self.decode(hidden + torch.randn_like(hidden) if self.training else hidden)


# ---------------------------------------------------------------------------- discriminator


class MsImageDis(nn.Module):
    """Multi-scale discriminator (official ``MsImageDis``).

    ``num_scales`` independent nets; each: 4x4 stride-2 conv (``dim``, never normalised) and
    ``n_layer - 1`` more doubling the channels (``norm``), activation ``activ`` (lrelu = 0.2),
    then a 1x1 conv to one channel. Scale k sees the image average-pooled k times by
    AvgPool2d(3, stride 2, padding 1, count_include_pad=False).

    Input N x C x H x W in [-1, 1]; output a list of ``num_scales`` score maps N x 1 x h_k x w_k
    (raw scores; the GAN objective is applied by ``imtrans.losses.GANLoss``).
    """

    def __init__(
        self,
        input_dim: int = 3,
        dim: int = 64,
        n_layer: int = 4,
        num_scales: int = 3,
        norm: str = "none",
        activ: str = "lrelu",
        pad_type: str = "reflect",
    ):
        super().__init__()
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.cnns = nn.ModuleList(
            [self._make_net(input_dim, dim, n_layer, norm, activ, pad_type) for _ in range(num_scales)]
        )

    @staticmethod
    def _make_net(input_dim, dim, n_layer, norm, activ, pad) -> nn.Sequential:
        layers: list[nn.Module] = [MunitConvBlock(input_dim, dim, 4, 2, 1, norm="none", act=activ, pad=pad)]
        for _ in range(n_layer - 1):
            layers.append(MunitConvBlock(dim, dim * 2, 4, 2, 1, norm=norm, act=activ, pad=pad))
            dim *= 2
        layers.append(nn.Conv2d(dim, 1, 1, 1, 0))
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for i, net in enumerate(self.cnns):
            if i:
                x = self.downsample(x)
            outputs.append(net(x))
        return outputs
