"""U-GAT-IT networks (Kim et al., ICLR 2020), as znxlwm/UGATIT-pytorch builds them.

- :class:`UgatitGenerator`: down-sampling encoder (reflect padding, no conv bias, InstanceNorm
  without affine), CAM attention (GAP and GMP classifiers, 1x1 fusion), a gamma/beta MLP
  (``light``: on the pooled feature; full: on the flattened feature map), AdaLIN residual blocks
  that all share one gamma/beta, ILN up-sampling blocks, Tanh.
- :class:`UgatitDiscriminator`: spectral-normalised reflect-padded 4x4 convs, the same CAM with
  spectral-normalised classifiers (the 1x1 fusion is not normalised), a bias-free 4x4 head.
  The official model has a global one (``n_layers=7``) and a local one (``n_layers=5``) per domain.
- :class:`AdaLIN` and :class:`ILN`: the adaptive / learned mix of instance and layer statistics,
  with PyTorch's **unbiased** variance as the official code computes it.

Every network returns ``(output, cam_logit, heatmap)`` like the official ``forward``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from imtrans.nets.blocks import ConvBlock
from imtrans.nets.spectral import spectral_norm


def _mix_in_ln(x: torch.Tensor, rho: torch.Tensor, eps: float) -> torch.Tensor:
    """rho * IN(x) + (1 - rho) * LN(x): x N x C x H x W, rho 1 x C x 1 x 1; unbiased variances."""
    in_mean, in_var = x.mean((2, 3), keepdim=True), x.var((2, 3), keepdim=True)
    ln_mean, ln_var = x.mean((1, 2, 3), keepdim=True), x.var((1, 2, 3), keepdim=True)
    x_in = (x - in_mean) / torch.sqrt(in_var + eps)
    x_ln = (x - ln_mean) / torch.sqrt(ln_var + eps)
    return rho * x_in + (1 - rho) * x_ln


class AdaLIN(nn.Module):
    """Adaptive layer-instance norm: ``(rho IN(x) + (1 - rho) LN(x)) * gamma + beta``.

    ``rho`` (1 x C x 1 x 1) starts at 0.9 and is clamped to [0, 1] after every generator step;
    gamma and beta (N x C) come from the generator's MLP. Input and output N x C x H x W.
    """

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.rho = nn.Parameter(torch.full((1, channels, 1, 1), 0.9))

    def forward(self, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        out = _mix_in_ln(x, self.rho, self.eps)
        return out * gamma[:, :, None, None] + beta[:, :, None, None]


class ILN(nn.Module):
    """Layer-instance norm with learned ``rho`` (init 0.0: starts as LayerNorm), gamma (1) and
    beta (0), each 1 x C x 1 x 1. Input and output N x C x H x W."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.rho = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.gamma = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _mix_in_ln(x, self.rho, self.eps) * self.gamma + self.beta


def clamp_rho(module: nn.Module, low: float = 0.0, high: float = 1.0) -> None:
    """The official RhoClipper: clamp every ``rho`` of ``module``'s AdaLIN/ILN layers in place."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (AdaLIN, ILN)):
                m.rho.clamp_(low, high)


class ResBlockIN(nn.Module):
    """x + [reflect-conv3x3-IN-ReLU, reflect-conv3x3-IN](x), bias-free convs; N x C x H x W kept.

    (``blocks.ResBlock`` gives InstanceNorm convs a bias, as junyanz's code does; this one has none.)
    """

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            ConvBlock(channels, channels, 3, 1, 1, norm="instance", act="relu", pad="reflect", bias=False),
            ConvBlock(channels, channels, 3, 1, 1, norm="instance", act="none", pad="reflect", bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResBlockAdaLIN(nn.Module):
    """x + [reflect-conv3x3-AdaLIN-ReLU, reflect-conv3x3-AdaLIN](x) with the given gamma/beta."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = ConvBlock(channels, channels, 3, 1, 1, pad="reflect", bias=False)
        self.norm1 = AdaLIN(channels)
        self.conv2 = ConvBlock(channels, channels, 3, 1, 1, pad="reflect", bias=False)
        self.norm2 = AdaLIN(channels)

    def forward(self, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        """x N x C x H x W; gamma, beta N x C."""
        out = F.relu(self.norm1(self.conv1(x), gamma, beta))
        return x + self.norm2(self.conv2(out), gamma, beta)


class CAM(nn.Module):
    """Class activation map attention of U-GAT-IT.

    GAP and GMP of the feature (N x C x H x W) go through two bias-free Linear(C, 1)
    classifiers: ``cam_logit`` N x 2. The feature re-weighted channel-wise by each classifier's
    weight is concatenated (N x 2C x H x W), fused by a 1x1 conv (with bias) and activated:
    N x C x H x W. ``heatmap`` is its channel sum, N x 1 x H x W.

    ``spectral=True`` (the discriminators) wraps the two classifiers in spectral norm. The
    official code then re-weights with ``list(fc.parameters())[0]``, which is the *raw*
    ``weight_orig``, not the normalised weight the logit uses; kept here (``weight_orig``).
    """

    def __init__(self, channels: int, *, act: str = "relu", spectral: bool = False):
        super().__init__()
        self.spectral = spectral
        wrap = spectral_norm if spectral else (lambda m: m)
        self.gap_fc = wrap(nn.Linear(channels, 1, bias=False))
        self.gmp_fc = wrap(nn.Linear(channels, 1, bias=False))
        self.conv1x1 = nn.Conv2d(2 * channels, channels, 1, 1, bias=True)
        self.act = nn.ReLU(inplace=True) if act == "relu" else nn.LeakyReLU(0.2, inplace=True)

    def _raw_weight(self, fc: nn.Linear) -> torch.Tensor:
        return fc.weight_orig if self.spectral else fc.weight  # 1 x C

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        n = x.shape[0]
        gap_logit = self.gap_fc(F.adaptive_avg_pool2d(x, 1).view(n, -1))
        gmp_logit = self.gmp_fc(F.adaptive_max_pool2d(x, 1).view(n, -1))
        gap = x * self._raw_weight(self.gap_fc)[:, :, None, None]
        gmp = x * self._raw_weight(self.gmp_fc)[:, :, None, None]
        out = self.act(self.conv1x1(torch.cat([gap, gmp], 1)))
        return out, torch.cat([gap_logit, gmp_logit], 1), out.sum(1, keepdim=True)


class UgatitGenerator(nn.Module):
    """U-GAT-IT generator (the official ``ResnetGenerator``).

    Args:
        input_nc, output_nc: image channels.
        ngf: width of the first conv (64); the bottleneck has 4 ngf channels.
        n_blocks: residual blocks in the encoder and AdaLIN blocks in the decoder (4).
        img_size: training size; the full (``light=False``) MLP flattens the
            (img_size/4)^2 x 4 ngf feature, so the size is fixed at construction.
        light: pool the feature before the MLP (the ``--light`` option).

    ``forward(x)``: x N x input_nc x H x W in [-1, 1] -> (N x output_nc x H x W in [-1, 1],
    cam_logit N x 2, heatmap N x 1 x H/4 x W/4).
    """

    def __init__(
        self,
        input_nc: int = 3,
        output_nc: int = 3,
        ngf: int = 64,
        n_blocks: int = 4,
        img_size: int = 256,
        light: bool = True,
    ):
        super().__init__()
        self.light = light
        #: the only input side of the full generator (its MLP reads the flattened map); None: any
        self.fixed_size = None if light else int(img_size)
        n_down = 2
        ch = ngf * 2**n_down
        down = [ConvBlock(input_nc, ngf, 7, 1, 3, norm="instance", act="relu", pad="reflect", bias=False)]
        for i in range(n_down):
            c = ngf * 2**i
            down.append(ConvBlock(c, 2 * c, 3, 2, 1, norm="instance", act="relu", pad="reflect", bias=False))
        down += [ResBlockIN(ch) for _ in range(n_blocks)]
        self.encoder = nn.Sequential(*down)
        self.cam = CAM(ch, act="relu")
        mlp_in = ch if light else (img_size // 2**n_down) ** 2 * ch
        self.mlp = nn.Sequential(
            nn.Linear(mlp_in, ch, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(ch, ch, bias=False),
            nn.ReLU(inplace=True),
        )
        self.gamma = nn.Linear(ch, ch, bias=False)
        self.beta = nn.Linear(ch, ch, bias=False)
        self.blocks = nn.ModuleList(ResBlockAdaLIN(ch) for _ in range(n_blocks))
        up: list[nn.Module] = []
        for i in range(n_down):
            c = ch // 2**i
            up += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                ConvBlock(c, c // 2, 3, 1, 1, pad="reflect", bias=False),
                ILN(c // 2),
                nn.ReLU(inplace=True),
            ]
        up.append(ConvBlock(ngf, output_nc, 7, 1, 3, act="tanh", pad="reflect", bias=False))
        self.decoder = nn.Sequential(*up)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feat, cam_logit, heatmap = self.cam(self.encoder(x))
        style = F.adaptive_avg_pool2d(feat, 1) if self.light else feat
        style = self.mlp(style.flatten(1))
        gamma, beta = self.gamma(style), self.beta(style)
        for block in self.blocks:
            feat = block(feat, gamma, beta)
        return self.decoder(feat), cam_logit, heatmap


class UgatitDiscriminator(nn.Module):
    """U-GAT-IT discriminator (the official ``Discriminator``), spectral norm on every conv
    and on the CAM classifiers.

    ``n_layers`` - 2 stride-2 4x4 convs (ndf, doubling), one stride-1 4x4 conv doubling again,
    the CAM, a stride-1 4x4 head without bias; LeakyReLU 0.2, reflect padding 1.
    Global: ``n_layers=7`` (needs >= 96 px); local: ``n_layers=5``.

    ``forward(x)``: x N x input_nc x H x W -> (patch logits N x 1 x h x w, cam_logit N x 2,
    heatmap N x 1 x (h+1) x (w+1)); at 256 px h = 6 (global) or 30 (local).
    """

    def __init__(self, input_nc: int = 3, ndf: int = 64, n_layers: int = 5):
        super().__init__()
        sn = spectral_norm
        layers: list[nn.Module] = []
        c_in, c_out = input_nc, ndf
        for i in range(n_layers - 1):
            stride = 2 if i < n_layers - 2 else 1
            block = ConvBlock(c_in, c_out, 4, stride, 1, act="lrelu", pad="reflect", bias=True)
            sn(block[1])
            layers.append(block)
            c_in, c_out = c_out, c_out * 2
        self.body = nn.Sequential(*layers)
        self.cam = CAM(c_in, act="lrelu", spectral=True)
        self.head = ConvBlock(c_in, 1, 4, 1, 1, pad="reflect", bias=False)
        sn(self.head[1])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feat, cam_logit, heatmap = self.cam(self.body(x))
        return self.head(feat), cam_logit, heatmap
