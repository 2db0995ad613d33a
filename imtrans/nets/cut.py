"""CUT / FastCUT networks (Park et al., ECCV 2020), as taesungp/contrastive-unpaired-translation
builds them: the anti-aliased ResNet generator and PatchGAN, and PatchSampleF.

The generator and discriminator are flat ``nn.Sequential`` stacks (attribute ``model``) with the
official layer order, because CUT's ``nce_layers`` (0, 4, 8, 12, 16) are indices into that
sequence: with the same layers in the same places, an index means the same feature map as in
the official code. Images are N x C x H x W in [-1, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from imtrans.nets.blocks import ReflectionPad2d, ResBlock, norm_layer, uses_bias


def binomial_filter(size: int) -> torch.Tensor:
    """size x size blur kernel: the outer product of the binomial row [1, 2, 1] (3) or
    [1, 3, 3, 1] (4), normalised to sum 1."""
    rows = {2: [1.0, 1.0], 3: [1.0, 2.0, 1.0], 4: [1.0, 3.0, 3.0, 1.0], 5: [1.0, 4.0, 6.0, 4.0, 1.0]}
    if size not in rows:
        raise ValueError(f"binomial_filter: size {size} is not one of {sorted(rows)}")
    row = torch.tensor(rows[size])
    kernel = row[:, None] * row[None, :]
    return kernel / kernel.sum()


class BlurDownsample(nn.Module):
    """Anti-aliased stride-2 down-sampling (Zhang, "Making Convolutional Networks Shift-Invariant
    Again", 2019): reflect-pad 1, depthwise 3x3 binomial blur with stride 2. N x C x H x W ->
    N x C x ceil(H/2) x ceil(W/2). The kernel is a persistent buffer ``filt`` (C x 1 x 3 x 3),
    as in the official state dicts; it is not trained."""

    #: read by the tools' size rule (:func:`imtrans.methods.spec.stride2_convs`)
    stride = 2

    def __init__(self, channels: int, filt_size: int = 3):
        super().__init__()
        self.register_buffer("filt", binomial_filter(filt_size)[None, None].repeat(channels, 1, 1, 1))
        lo, hi = (filt_size - 1) // 2, filt_size // 2
        self.pad = ReflectionPad2d((lo, hi, lo, hi))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(self.pad(x), self.filt, stride=2, groups=x.shape[1])


def replicate_pad1(x: torch.Tensor) -> torch.Tensor:
    """``F.pad(x, (1, 1, 1, 1), mode="replicate")``, the same values, from slices and
    concatenations: torch.compile's ``replication_pad2d_backward`` (torch 2.14.1) assumes a
    contiguous gradient and fails under ``trainer.channels_last``."""
    x = torch.cat([x[:, :, :1], x, x[:, :, -1:]], dim=2)
    return torch.cat([x[:, :, :, :1], x, x[:, :, :, -1:]], dim=3)


class BlurUpsample(nn.Module):
    """Anti-aliased 2x up-sampling: replicate-pad 1, depthwise transposed conv (stride 2) with
    the 4x4 binomial kernel x 4 (so a constant image stays constant), then the one-pixel
    border the padding added is cut away. N x C x H x W -> N x C x 2H x 2W. Buffer ``filt``
    (C x 1 x 4 x 4)."""

    def __init__(self, channels: int, filt_size: int = 4):
        super().__init__()
        if filt_size % 2:
            raise ValueError("BlurUpsample: the official up-sampler uses an even kernel (4)")
        self.register_buffer("filt", (binomial_filter(filt_size) * 4)[None, None].repeat(channels, 1, 1, 1))
        self.crop = 1 + (filt_size - 1) // 2  # the transposed conv's padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv_transpose2d(replicate_pad1(x), self.filt, stride=2, padding=self.crop, groups=x.shape[1])
        # (2H + 2) x (2W + 2): drop the first and the last row and column
        return y[:, :, 1:-1, 1:-1]


class CutResnetGenerator(nn.Module):
    """CUT's ``resnet_9blocks`` (``n_blocks=6``: resnet_6blocks), as one flat sequence ``model``.

    With ``antialias`` (the official default) the layers are, by index (9 blocks):
    0 ReflPad3, 1 Conv7 (ngf), 2 norm, 3 ReLU; 4 Conv3 s1 (2ngf), 5 norm, 6 ReLU, 7 BlurDownsample;
    8 Conv3 s1 (4ngf), 9 norm, 10 ReLU, 11 BlurDownsample; 12-20 ResBlocks;
    21 BlurUpsample, 22 Conv3 s1 zero-pad (2ngf), 23 norm, 24 ReLU; 25-28 the same to ngf;
    29 ReflPad3, 30 Conv7 (output_nc), 31 Tanh.
    ``antialias=False`` gives junyanz's plain layers (stride-2 conv down, transposed conv up),
    so the same indices then name other layers, as officially (``--no_antialias
    --no_antialias_up``). Parameters with ngf 64, 9 blocks, 3 -> 3 channels: 11,378,179 either way
    (the blur kernels are buffers). H and W must be divisible by 4.
    """

    def __init__(
        self,
        input_nc: int = 3,
        output_nc: int = 3,
        ngf: int = 64,
        n_blocks: int = 9,
        norm: str = "instance",
        dropout: float = 0.0,
        antialias: bool = True,
    ):
        super().__init__()
        bias = uses_bias(norm)
        layers: list[nn.Module] = [
            ReflectionPad2d(3),
            nn.Conv2d(input_nc, ngf, 7, bias=bias),
            norm_layer(norm, ngf),
            nn.ReLU(True),
        ]
        ch = ngf
        for _ in range(2):
            if antialias:
                layers += [nn.Conv2d(ch, ch * 2, 3, 1, 1, bias=bias), norm_layer(norm, ch * 2), nn.ReLU(True)]
                layers.append(BlurDownsample(ch * 2))
            else:
                layers += [nn.Conv2d(ch, ch * 2, 3, 2, 1, bias=bias), norm_layer(norm, ch * 2), nn.ReLU(True)]
            ch *= 2
        layers += [ResBlock(ch, norm=norm, pad="reflect", dropout=dropout) for _ in range(n_blocks)]
        for _ in range(2):
            if antialias:
                layers += [BlurUpsample(ch), nn.Conv2d(ch, ch // 2, 3, 1, 1, bias=bias)]
            else:
                layers.append(nn.ConvTranspose2d(ch, ch // 2, 3, 2, 1, output_padding=1, bias=bias))
            layers += [norm_layer(norm, ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [ReflectionPad2d(3), nn.Conv2d(ch, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        self.input_nc = input_nc

    def forward(
        self, x: torch.Tensor, feature_layers: Sequence[int] | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """N x input_nc x H x W in [-1, 1] -> N x output_nc x H x W in [-1, 1].

        With ``feature_layers`` (increasing indices into ``model``): ``(output, features)``, the
        features being the outputs of those layers on the way, what ``encode(x, layers)``
        computes again (training reads PatchNCE's keys from here instead of a second pass)."""
        if feature_layers is None:
            return self.model(x)
        return self._through(x, feature_layers, stop_after_last=False)

    def encode(self, x: torch.Tensor, layers: Sequence[int]) -> list[torch.Tensor]:
        """The outputs of the layers ``layers`` (indices into ``model``, increasing) for input
        ``x``; the pass stops after the last of them (the official ``encode_only``)."""
        return self._through(x, layers, stop_after_last=True)[1]

    def _through(
        self, x: torch.Tensor, layers: Sequence[int], stop_after_last: bool
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Run ``model`` layer by layer, collecting the outputs of ``layers``; returns the last
        output computed and those features."""
        feats, wanted, last = [], set(layers), max(layers)
        for index, layer in enumerate(self.model):
            x = layer(x)
            if index in wanted:
                feats.append(x)
            if stop_after_last and index == last:
                break
        return x, feats

    def feature_channels(self, layers: Sequence[int]) -> list[int]:
        """Channels of the ``encode`` features of ``layers``, read from the layer sequence (what
        the official PatchSampleF learns from its first batch)."""
        channels, ch = {}, self.input_nc
        for index, layer in enumerate(self.model):
            if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
                ch = layer.out_channels
            channels[index] = ch
        missing = [i for i in layers if i not in channels]
        if missing:
            raise ValueError(f"nce_layers {missing}: the generator has layers 0..{len(self.model) - 1}")
        return [channels[i] for i in layers]


class CutPatchDiscriminator(nn.Module):
    """CUT's ``basic`` PatchGAN as a flat sequence ``model``: 4x4 convs ndf, 2ndf, 4ndf (each
    followed by LeakyReLU 0.2; norm from the second on) then 8ndf (stride 1) and 1 (stride 1).
    With ``antialias`` every down-sampling conv has stride 1 and a BlurDownsample after its
    activation; without, stride 2 (junyanz's layers). Output N x 1 x h x w raw scores (30 x 30
    at 256 px either way). ndf 64, 3 channels, InstanceNorm: 2,764,737 parameters."""

    def __init__(
        self,
        input_nc: int = 3,
        ndf: int = 64,
        n_layers: int = 3,
        norm: str = "instance",
        antialias: bool = True,
    ):
        super().__init__()
        bias = uses_bias(norm)
        stride = 1 if antialias else 2
        layers: list[nn.Module] = [nn.Conv2d(input_nc, ndf, 4, stride, 1), nn.LeakyReLU(0.2, True)]
        if antialias:
            layers.append(BlurDownsample(ndf))
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=bias),
                norm_layer(norm, ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
            if antialias:
                layers.append(BlurDownsample(ndf * mult))
        prev, mult = mult, min(2**n_layers, 8)
        layers += [
            nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1, bias=bias),
            norm_layer(norm, ndf * mult),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * mult, 1, 4, 1, 1),
        ]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def l2_normalize(x: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Rows of ``x`` divided by their L2 norm + ``eps`` (the official ``Normalize``; the eps is
    added to the norm, not inside the square root). ``vector_norm`` rather than the official
    ``pow(2).sum().pow(0.5)``: the same values, but a finite gradient for an all-zero row (an MLP
    whose ReLUs are all off for a patch, which small widths meet within a few iterations),
    where the square root's derivative at 0 would make every gradient NaN."""
    return x / (torch.linalg.vector_norm(x, dim=1, keepdim=True) + eps)


class PatchSampleF(nn.Module):
    """CUT's ``mlp_sample`` feature network: for each NCE layer, sample patch locations and embed
    the features found there with a two-layer MLP, then L2-normalise.

    ``in_channels``: the channels of each layer's features, so the MLPs (``mlp_0`` ...) exist from
    construction. The official code creates them lazily at the first forward from the same
    channels (``data_dependent_initialize``), then initialises them; building them here from the
    generator's layer widths gives the same networks and parameters (the same keys, shapes and
    initialisation scheme), only earlier, so that optimizers, DDP and checkpoints see them from
    iteration 0. Each MLP: Linear(C, nc) - ReLU - Linear(nc, nc).
    """

    def __init__(self, in_channels: Sequence[int], nc: int = 256):
        super().__init__()
        self.num_layers = len(in_channels)
        for i, ch in enumerate(in_channels):
            self.add_module(f"mlp_{i}", nn.Sequential(nn.Linear(ch, nc), nn.ReLU(), nn.Linear(nc, nc)))

    def sample_ids(self, feat: torch.Tensor, num_patches: int) -> torch.Tensor:
        """``num_patches`` distinct locations among feat's H x W (all of them, permuted, when
        there are fewer), drawn from torch's global generator on the CPU (device-independent)."""
        hw = feat.shape[2] * feat.shape[3]
        return torch.randperm(hw)[: min(num_patches, hw)].to(feat.device)

    def forward(
        self,
        feats: Sequence[torch.Tensor],
        num_patches: int = 256,
        patch_ids: Sequence[torch.Tensor] | None = None,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Embed sampled patches of each layer's features.

        Args:
            feats: one N x C_l x H_l x W_l map per layer.
            num_patches: P, patches per layer.
            patch_ids: per layer, the P flat locations to use (a key pass's ids, so that query
                and key patches are the same places); None draws new ids, independently for
                each layer. The same ids serve every image of the batch.

        Returns:
            (per layer N*P x nc unit vectors, image-major: rows n*P .. n*P + P - 1 belong to
            image n; per layer the ids used).
        """
        if len(feats) != self.num_layers:
            raise ValueError(f"PatchSampleF: {len(feats)} feature maps for {self.num_layers} MLPs")
        out, ids = [], []
        for i, feat in enumerate(feats):
            flat = feat.permute(0, 2, 3, 1).flatten(1, 2)  # N x HW x C
            idx = self.sample_ids(feat, num_patches) if patch_ids is None else patch_ids[i]
            sample = flat[:, idx, :].flatten(0, 1)  # N*P x C
            out.append(l2_normalize(getattr(self, f"mlp_{i}")(sample)))
            ids.append(idx)
        return out, ids
