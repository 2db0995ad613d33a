"""pix2pixHD's networks (Wang et al., CVPR 2018), with NVIDIA/pix2pixHD's topology and counts.

- :class:`GlobalGenerator` (G1): CycleGAN's ResNet generator with 4 stride-2 levels
  (``ResnetGenerator(n_down=4)``): 182,546,755 parameters with ngf 64, 9 blocks, 36 -> 3 channels.
- :class:`LocalEnhancer` (G1 + G2): a global generator with ``2 * ngf`` filters and its output
  layer removed runs on the 2x average-pooled input; its features are added to the local
  branch's stride-2 features before the local residual blocks (182,857,059 with ngf 32).
- :class:`MultiscaleDiscriminator`: ``num_D`` 5-layer PatchGANs (kernel 4, padding 2, filters
  capped at 512, conv biases kept, InstanceNorm, LeakyReLU 0.2) on the input and its 2x, 4x
  average-pooled copies; returns every layer's output per scale (2,801,601 per scale with 39
  input channels).
- :class:`FeatureEncoder`: an encoder-decoder (``ResnetGenerator`` with no residual blocks)
  whose output is averaged over each instance (788,803 with nef 16, 4 levels, 3 features).
- :func:`instance_edges`, :func:`instance_mean`: the boundary map and instance-wise pooling.
"""

from __future__ import annotations

import torch
from torch import nn

from imtrans.nets.blocks import ConvBlock, ResBlock, UpConvBlock
from imtrans.nets.generators import ResnetGenerator


def instance_edges(inst: torch.Tensor) -> torch.Tensor:
    """Instance boundary map: N x H x W ids -> N x 1 x H x W float in {0, 1}.

    A pixel is 1 when any of its 4 neighbours has another id (both pixels of each differing
    pair are marked), as pix2pixHD's ``get_edges``.
    """
    if inst.dim() == 4:
        inst = inst[:, 0]
    edge = torch.zeros_like(inst, dtype=torch.bool)
    dx = inst[:, :, 1:] != inst[:, :, :-1]
    dy = inst[:, 1:, :] != inst[:, :-1, :]
    edge[:, :, 1:] |= dx
    edge[:, :, :-1] |= dx
    edge[:, 1:, :] |= dy
    edge[:, :-1, :] |= dy
    return edge[:, None].float()


def instance_mean(feat: torch.Tensor, inst: torch.Tensor) -> torch.Tensor:
    """Replace every pixel's features by the mean over its instance (per image).

    ``feat``: N x C x H x W; ``inst``: N x H x W integer ids. Differentiable (the mean's gradient
    reaches every pixel of the instance), vectorised over the batch with one ``index_add``.
    """
    n, c, h, w = feat.shape
    inst = inst.reshape(n, h * w).long()
    keys = inst + torch.arange(n, device=inst.device)[:, None] * (int(inst.max()) + 1 if inst.numel() else 1)
    uniq, inverse = torch.unique(keys.flatten(), return_inverse=True)
    flat = feat.permute(1, 0, 2, 3).reshape(c, n * h * w)
    sums = flat.new_zeros(c, uniq.numel()).index_add(1, inverse, flat)
    counts = torch.bincount(inverse, minlength=uniq.numel()).to(flat.dtype)
    means = sums / counts
    return means[:, inverse].reshape(c, n, h, w).permute(1, 0, 2, 3)


class GlobalGenerator(ResnetGenerator):
    """pix2pixHD's ``GlobalGenerator`` (G1): 7x7 conv, ``n_downsample`` stride-2 3x3 convs,
    ``n_blocks`` residual blocks, as many stride-2 transposed convs, 7x7 conv, tanh; reflect
    padding, InstanceNorm (no affine), conv biases kept. H and W must be multiples of
    2**n_downsample. ``model[:-1]`` is the trunk the local enhancer reuses."""

    def __init__(
        self,
        input_nc: int,
        output_nc: int = 3,
        ngf: int = 64,
        n_downsample: int = 4,
        n_blocks: int = 9,
        norm: str = "instance",
    ):
        super().__init__(input_nc, output_nc, ngf, n_blocks, n_downsample, norm)
        self.factor = 2**n_downsample


class LocalEnhancer(nn.Module):
    """pix2pixHD's ``LocalEnhancer`` (one enhancer, ``--netG local``).

    ``self.model`` is a global generator with ``2 * ngf`` filters without its output conv (its
    state-dict keys are those of a :class:`GlobalGenerator` trained alone, so a 512p G loads
    into it); it runs on the input average-pooled 2x (AvgPool 3, stride 2, padding 1, padding
    not counted). ``model1_1`` (7x7 conv to ngf, stride-2 conv to 2ngf) brings the full input
    to the same size; the sum goes through ``model1_2`` (``n_blocks_local`` residual blocks,
    transposed conv, 7x7 conv, tanh). H and W must be multiples of 2**(n_downsample + 1).
    """

    def __init__(
        self,
        input_nc: int,
        output_nc: int = 3,
        ngf: int = 32,
        n_downsample: int = 4,
        n_blocks: int = 9,
        n_blocks_local: int = 3,
        norm: str = "instance",
    ):
        super().__init__()
        trunk = GlobalGenerator(input_nc, output_nc, 2 * ngf, n_downsample, n_blocks, norm).model
        self.model = nn.Sequential(*list(trunk)[:-1])
        self.model1_1 = nn.Sequential(
            ConvBlock(input_nc, ngf, 7, 1, 3, norm=norm, act="relu", pad="reflect", bias=True),
            ConvBlock(ngf, 2 * ngf, 3, 2, 1, norm=norm, act="relu", bias=True),
        )
        self.model1_2 = nn.Sequential(
            *[ResBlock(2 * ngf, norm=norm, pad="reflect") for _ in range(n_blocks_local)],
            UpConvBlock(2 * ngf, ngf, norm=norm, kernel=3),
            ConvBlock(ngf, output_nc, 7, 1, 3, norm="none", act="tanh", pad="reflect", bias=True),
        )
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.factor = 2 ** (n_downsample + 1)

    def local_parameters(self):
        """The local branch (what ``niter_fix_global`` trains alone): ``model1_*``."""
        return [p for n, p in self.named_parameters() if n.startswith("model1_")]

    def global_parameters(self):
        return list(self.model.parameters())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        coarse = self.model(self.downsample(x))
        return self.model1_2(self.model1_1(x) + coarse)


class PatchDiscriminator(nn.Module):
    """pix2pixHD's ``NLayerDiscriminator`` with intermediate features: ``n_layers + 2`` stages
    (4x4 convs with padding 2; stride 2 except the last two; filters ndf, 2ndf, ... capped at
    512; no norm on the first stage; biases everywhere). ``forward`` returns every stage's
    output, the last being the 1-channel score map."""

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 3, norm: str = "instance"):
        super().__init__()
        stages: list[nn.Module] = [ConvBlock(input_nc, ndf, 4, 2, 2, norm="none", act="lrelu", bias=True)]
        nf = ndf
        for n in range(1, n_layers + 1):
            prev, nf = nf, min(nf * 2, 512)
            stride = 2 if n < n_layers else 1
            stages.append(ConvBlock(prev, nf, 4, stride, 2, norm=norm, act="lrelu", bias=True))
        stages.append(nn.Conv2d(nf, 1, 4, 1, 2))
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs


class MultiscaleDiscriminator(nn.Module):
    """``num_D`` :class:`PatchDiscriminator` of the same width on the input and its 2x, 4x ...
    average-pooled copies. As in the official code, ``scales[num_D - 1]`` judges the full
    resolution and ``scales[0]`` the coarsest, so a 2-scale D loads into a 3-scale one with
    each loaded scale on the pixel size it was trained on. Returns one list of stage outputs
    per scale, full resolution first."""

    def __init__(
        self, input_nc: int, ndf: int = 64, n_layers: int = 3, num_D: int = 2, norm: str = "instance"
    ):
        super().__init__()
        self.n_layers = n_layers
        self.scales = nn.ModuleList(PatchDiscriminator(input_nc, ndf, n_layers, norm) for _ in range(num_D))
        self.down = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        outs = []
        for i in range(len(self.scales)):
            if i:
                x = self.down(x)
            outs.append(self.scales[len(self.scales) - 1 - i](x))
        return outs


class FeatureEncoder(nn.Module):
    """pix2pixHD's ``Encoder`` (``--instance_feat``): 7x7 conv to nef, ``n_downsample`` stride-2
    convs, as many transposed convs, 7x7 conv to ``feat_num``, tanh; then each instance's
    pixels get the instance's mean feature. ``forward(image, inst)``: N x 3 x H x W in
    [-1, 1] and N x H x W ids -> N x feat_num x H x W."""

    def __init__(
        self,
        input_nc: int = 3,
        feat_num: int = 3,
        nef: int = 16,
        n_downsample: int = 4,
        norm: str = "instance",
    ):
        super().__init__()
        self.feat_num = feat_num
        self.model = ResnetGenerator(input_nc, feat_num, nef, 0, n_downsample, norm).model
        self.factor = 2**n_downsample

    def forward(self, image: torch.Tensor, inst: torch.Tensor) -> torch.Tensor:
        return instance_mean(self.model(image), inst)
