"""SPADE / GauGAN networks (Park et al., CVPR 2019) with NVlabs/SPADE's topology, parameter
counts and state-dict keys: an official ``latest_net_{G,D,E}.pth`` loads into these modules
unchanged (identical keys, spectral norm included: :func:`imtrans.nets.spectral.spectral_norm`,
torch's with a forward that compiles, keeps ``<conv>.weight_orig`` and the power-iteration
vectors ``weight_u`` / ``weight_v`` as the official code does, and in eval mode uses the stored
vectors without iterating).

- :class:`SPADE`: spatially-adaptive normalisation, ``norm(x) * (1 + gamma(m)) + beta(m)`` with
  a parameter-free norm (BatchNorm2d or InstanceNorm2d, ``affine=False``) and gamma, beta
  predicted by a small conv net from the semantic map ``m`` resized to the features.
- :class:`SPADEResnetBlock`: two SPADE-conditioned 3x3 convs with a residual connection,
  learned (SPADE + 1x1 conv) when the widths differ; spectral norm on the three convs.
- :class:`SPADEGenerator`: a latent map of fixed size (from ``crop_size``, ``aspect_ratio``,
  ``num_upsampling_layers``) grown by nearest x2 upsampling through SPADE residual blocks;
  the latent is a 3x3 conv of the resized semantic map, or (``use_vae``) a linear map of z.
  93,048,003 parameters at the Cityscapes setting, 96,492,483 (ADE20K), 97,480,899 (COCO-Stuff).
- :class:`SPADEPatchDiscriminator`, :class:`SPADEMultiscaleDiscriminator`: the official
  ``NLayerDiscriminator`` (4x4 convs, padding 2, strides 2, 2, 2, 1, 1; spectral norm and
  InstanceNorm on the middle convs) and its 2-scale wrapper (2,800,705 per scale with 39 input
  channels); every stage's output is returned for feature matching.
- :class:`SPADEEncoder`: the official ``ConvEncoder`` of ``--use_vae``: six stride-2 3x3 convs
  on the image resized to 256x256, then ``fc_mu`` / ``fc_var`` (10,463,424 with ngf 64).
- :func:`semantic_map`: label ids (+ instance ids) -> the one-hot + instance-edge input of all
  three networks, as the official ``Pix2PixModel.preprocess_input``.

Official option names are kept as argument names (``ngf``, ``num_upsampling_layers``,
``crop_size``, ``aspect_ratio``, ``use_vae``, ``z_dim``, ``ndf``, ``n_layers_D``, ``num_D``);
every choice follows NVlabs/SPADE's models/networks/ (generator.py, architecture.py,
normalization.py, discriminator.py, encoder.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from imtrans.errors import ConfigError
from imtrans.nets.pix2pixhd import instance_edges
from imtrans.nets.spectral import spectral_norm

#: the official ``--num_upsampling_layers`` choices: number of x2 upsamplings from the latent map
UPSAMPLINGS = {"normal": 5, "more": 6, "most": 7}
#: SPADE's parameter-free norms (the official ``spadesyncbatch`` is ``batch`` on one device;
#: Lightning's ``sync_batchnorm=True`` converts it for multi-GPU training)
PARAM_FREE_NORMS = ("batch", "instance")


# ----------------------------------------------------------------------------- inputs
def semantic_nc(label_nc: int, contain_dontcare_label: bool, no_instance: bool) -> int:
    """Input channels of G, D (plus 3 image channels) and the SPADE layers: one per class, one
    for the dontcare id (= ``label_nc``) when the data has one, one for instance edges."""
    return label_nc + int(contain_dontcare_label) + int(not no_instance)


def semantic_map(label: torch.Tensor, nc: int, inst: torch.Tensor | None = None) -> torch.Tensor:
    """The networks' semantic input, as the official ``preprocess_input``.

    ``label``: N x H x W (or N x 1 x H x W) integer class ids in [0, nc), where ``nc`` is
    ``label_nc`` plus one with ``contain_dontcare_label`` (the dontcare id is ``label_nc``);
    ``inst``: N x H x W instance ids, or None without instance maps.
    Returns N x (nc [+ 1]) x H x W float: the one-hot of ``label`` (channel k = class k), then,
    with ``inst``, the instance-edge channel (1 where a 4-neighbour has another instance id).
    """
    if label.dim() == 4:
        label = label[:, 0]
    label = label.long()
    if label.numel():
        low, high = int(label.min()), int(label.max())
        if low < 0 or high >= nc:
            raise ConfigError(
                f"label_nc={nc}: a label map holds id {high if high >= nc else low} outside [0, {nc}); "
                "set label_nc (and contain_dontcare_label) to the data's classes"
            )
    onehot = torch.zeros(label.shape[0], nc, *label.shape[1:], device=label.device)
    onehot.scatter_(1, label[:, None], 1.0)
    if inst is None:
        return onehot
    return torch.cat([onehot, instance_edges(inst).to(onehot.dtype)], 1)


def latent_size(crop_size: int, aspect_ratio: float, num_upsampling_layers: str) -> tuple[int, int]:
    """(sh, sw) of the generator's first feature map: ``sw = crop_size // 2**k`` and
    ``sh = round(sw / aspect_ratio)`` (Python's round) for k = 5, 6, 7 upsamplings (normal,
    more, most). The output is ``(sh, sw) * 2**k`` whatever the input size."""
    if num_upsampling_layers not in UPSAMPLINGS:
        raise ConfigError(
            f"num_upsampling_layers={num_upsampling_layers}: not one of {', '.join(UPSAMPLINGS)}"
        )
    sw = crop_size // 2 ** UPSAMPLINGS[num_upsampling_layers]
    sh = round(sw / aspect_ratio)
    if sw < 1 or sh < 1:
        raise ConfigError(
            f"crop_size={crop_size}: with aspect_ratio {aspect_ratio} and num_upsampling_layers "
            f"{num_upsampling_layers} the latent map is {sh} x {sw}; take a larger crop_size"
        )
    return sh, sw


# ----------------------------------------------------------------------------- SPADE
class SPADE(nn.Module):
    """Spatially-adaptive normalisation (the official ``SPADE``, config ``spade<norm><k>x<k>``).

    ``forward(x, segmap)``: features N x ``norm_nc`` x h x w and the semantic map
    N x ``label_nc`` x H x W (any size; resized to h x w with legacy ``nearest``, source index
    floor(i * H / h)) -> N x norm_nc x h x w, ``param_free_norm(x) * (1 + gamma) + beta``.

    ``param_free_norm``: ``batch`` (BatchNorm2d without affine, running statistics: eval mode
    uses them) or ``instance`` (InstanceNorm2d without affine). gamma and beta come from
    ``mlp_shared`` (conv to ``nhidden`` + ReLU) and the convs ``mlp_gamma`` / ``mlp_beta``, all
    ``kernel_size`` square with biases. ``nhidden`` is 128 in the official code (a literal).
    """

    def __init__(
        self,
        norm_nc: int,
        label_nc: int,
        nhidden: int = 128,
        kernel_size: int = 3,
        param_free_norm: str = "batch",
    ):
        super().__init__()
        if param_free_norm == "batch":
            self.param_free_norm = nn.BatchNorm2d(norm_nc, affine=False)
        elif param_free_norm == "instance":
            self.param_free_norm = nn.InstanceNorm2d(norm_nc, affine=False)
        else:
            raise ConfigError(f"param_free_norm={param_free_norm}: not one of {', '.join(PARAM_FREE_NORMS)}")
        pad = kernel_size // 2
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, nhidden, kernel_size, padding=pad), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(nhidden, norm_nc, kernel_size, padding=pad)
        self.mlp_beta = nn.Conv2d(nhidden, norm_nc, kernel_size, padding=pad)

    def forward(self, x: torch.Tensor, segmap: torch.Tensor) -> torch.Tensor:
        normalized = self.param_free_norm(x)
        segmap = F.interpolate(segmap, size=x.shape[2:], mode="nearest")
        actv = self.mlp_shared(segmap)
        return normalized * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)


class SPADEResnetBlock(nn.Module):
    """The official ``SPADEResnetBlock(fin, fout)``: N x fin x h x w (+ semantic map) ->
    N x fout x h x w.

    ``out = shortcut + conv_1(lrelu(norm_1(conv_0(lrelu(norm_0(x))))))``, LeakyReLU 0.2, 3x3
    convs fin -> min(fin, fout) -> fout with biases. The shortcut is ``x`` when fin == fout, else
    ``conv_s(norm_s(x))`` (1x1, no bias, no activation). ``spectral``: spectral norm on conv_0,
    conv_1 and conv_s (the official ``spectral`` prefix of ``norm_G``); SPADE's own convs never.
    """

    def __init__(
        self,
        fin: int,
        fout: int,
        semantic_nc: int,
        *,
        spectral: bool = True,
        nhidden: int = 128,
        spade_kernel: int = 3,
        param_free_norm: str = "batch",
    ):
        super().__init__()
        self.learned_shortcut = fin != fout
        fmiddle = min(fin, fout)
        sn = spectral_norm if spectral else (lambda m: m)
        self.conv_0 = sn(nn.Conv2d(fin, fmiddle, 3, padding=1))
        self.conv_1 = sn(nn.Conv2d(fmiddle, fout, 3, padding=1))
        if self.learned_shortcut:
            self.conv_s = sn(nn.Conv2d(fin, fout, 1, bias=False))
        spade = dict(
            label_nc=semantic_nc, nhidden=nhidden, kernel_size=spade_kernel, param_free_norm=param_free_norm
        )
        self.norm_0 = SPADE(fin, **spade)
        self.norm_1 = SPADE(fmiddle, **spade)
        if self.learned_shortcut:
            self.norm_s = SPADE(fin, **spade)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        x_s = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
        return x_s + dx


class SPADEGenerator(nn.Module):
    """The official ``SPADEGenerator`` (``--netG spade``).

    ``forward(seg, z=None)``: ``seg`` N x semantic_nc x H x W (:func:`semantic_map`; any size,
    it is resized at every layer), ``z`` N x z_dim (``use_vae`` only; None draws N(0, I)) ->
    N x output_nc x (sh * 2**k) x (sw * 2**k) in [-1, 1], with (sh, sw) = :func:`latent_size`.

    Head: without VAE ``fc`` is a 3x3 conv of ``seg`` resized (nearest) to (sh, sw); with VAE a
    Linear z -> 16 ngf * sh * sw viewed as N x 16ngf x sh x sw. Body (x2 nearest upsampling
    between blocks): head_0, G_middle_0, [up for more/most], G_middle_1 at 16 ngf, then up_0
    .. up_3 to 8, 4, 2, 1 x ngf, up_4 to ngf/2 for ``most``; LeakyReLU 0.2, ``conv_img`` 3x3,
    tanh. ``more`` adds one upsampling and no parameters: a checkpoint does not say which.
    """

    def __init__(
        self,
        semantic_nc: int,
        ngf: int = 64,
        num_upsampling_layers: str = "normal",
        crop_size: int = 256,
        aspect_ratio: float = 1.0,
        use_vae: bool = False,
        z_dim: int = 256,
        output_nc: int = 3,
        *,
        spectral: bool = True,
        nhidden: int = 128,
        spade_kernel: int = 3,
        param_free_norm: str = "batch",
    ):
        super().__init__()
        nf = ngf
        self.ngf, self.use_vae, self.z_dim = ngf, use_vae, z_dim
        self.num_upsampling_layers = num_upsampling_layers
        self.sh, self.sw = latent_size(crop_size, aspect_ratio, num_upsampling_layers)
        if use_vae:
            self.fc = nn.Linear(z_dim, 16 * nf * self.sh * self.sw)
        else:
            self.fc = nn.Conv2d(semantic_nc, 16 * nf, 3, padding=1)

        def block(fin: int, fout: int) -> SPADEResnetBlock:
            return SPADEResnetBlock(
                fin,
                fout,
                semantic_nc,
                spectral=spectral,
                nhidden=nhidden,
                spade_kernel=spade_kernel,
                param_free_norm=param_free_norm,
            )

        self.head_0 = block(16 * nf, 16 * nf)
        self.G_middle_0 = block(16 * nf, 16 * nf)
        self.G_middle_1 = block(16 * nf, 16 * nf)
        self.up_0 = block(16 * nf, 8 * nf)
        self.up_1 = block(8 * nf, 4 * nf)
        self.up_2 = block(4 * nf, 2 * nf)
        self.up_3 = block(2 * nf, nf)
        final_nc = nf
        if num_upsampling_layers == "most":
            self.up_4 = block(nf, nf // 2)
            final_nc = nf // 2
        self.conv_img = nn.Conv2d(final_nc, output_nc, 3, padding=1)
        self.up = nn.Upsample(scale_factor=2)

    @property
    def output_size(self) -> tuple[int, int]:
        """(H, W) of every output."""
        k = UPSAMPLINGS[self.num_upsampling_layers]
        return self.sh * 2**k, self.sw * 2**k

    def forward(self, seg: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        if self.use_vae:
            if z is None:
                z = torch.randn(seg.shape[0], self.z_dim, device=seg.device, dtype=seg.dtype)
            x = self.fc(z).view(-1, 16 * self.ngf, self.sh, self.sw)
        else:
            x = self.fc(F.interpolate(seg, size=(self.sh, self.sw), mode="nearest"))
        x = self.head_0(x, seg)
        x = self.G_middle_0(self.up(x), seg)
        if self.num_upsampling_layers in ("more", "most"):
            x = self.up(x)
        x = self.G_middle_1(x, seg)
        for name in ("up_0", "up_1", "up_2", "up_3") + (("up_4",) if hasattr(self, "up_4") else ()):
            x = getattr(self, name)(self.up(x), seg)
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))


# ----------------------------------------------------------------------------- discriminator
def norm_conv(conv: nn.Conv2d, norm: str = "instance", spectral: bool = True) -> nn.Module:
    """A conv with the official ``get_nonspade_norm_layer`` treatment (``norm_D`` / ``norm_E``
    ``spectral<norm>``): spectral norm when ``spectral``; then, unless ``norm`` is ``none``,
    the conv's bias is dropped (the norm cancels it) and the result is
    ``Sequential(conv, InstanceNorm2d(affine=False) | BatchNorm2d(affine=True))``: the official
    keys ``<name>.0.weight_orig`` and, for BatchNorm, ``<name>.1.weight``."""
    if spectral:
        conv = spectral_norm(conv)
    if norm == "none":
        return conv
    if conv.bias is not None:
        del conv.bias
        conv.register_parameter("bias", None)
    if norm == "instance":
        return nn.Sequential(conv, nn.InstanceNorm2d(conv.out_channels, affine=False))
    if norm == "batch":
        return nn.Sequential(conv, nn.BatchNorm2d(conv.out_channels, affine=True))
    raise ConfigError(f"norm={norm}: not one of instance, batch, none")


class SPADEPatchDiscriminator(nn.Module):
    """The official ``NLayerDiscriminator`` of SPADE (``netD_subarch n_layer``).

    Stages ``model0`` .. ``model{n_layers_D}``: 4x4 convs with padding 2; ``model0`` plain with
    bias (ndf filters, stride 2) + LeakyReLU 0.2; ``model1`` .. ``model{n-1}``
    :func:`norm_conv` (filters doubling, capped at 512; stride 2, the last stride 1) + LeakyReLU
    0.2; the last a plain conv to 1 channel, stride 1. ``forward``: N x input_nc x H x W
    (semantic map and image concatenated) -> the list of every stage's output, the last being
    the N x 1 x h x w logit map (the four others are the feature-matching features).
    """

    def __init__(
        self, input_nc: int, ndf: int = 64, n_layers_D: int = 4, norm: str = "instance", spectral: bool = True
    ):
        super().__init__()
        nf = ndf
        stages: list[list[nn.Module]] = [[nn.Conv2d(input_nc, nf, 4, stride=2, padding=2), nn.LeakyReLU(0.2)]]
        for n in range(1, n_layers_D):
            prev, nf = nf, min(nf * 2, 512)
            stride = 1 if n == n_layers_D - 1 else 2
            conv = nn.Conv2d(prev, nf, 4, stride=stride, padding=2)
            stages.append([norm_conv(conv, norm, spectral), nn.LeakyReLU(0.2)])
        stages.append([nn.Conv2d(nf, 1, 4, stride=1, padding=2)])
        for n, layers in enumerate(stages):
            self.add_module(f"model{n}", nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for stage in self.children():
            x = stage(x)
            outs.append(x)
        return outs


class SPADEMultiscaleDiscriminator(nn.Module):
    """The official ``MultiscaleDiscriminator`` of SPADE: ``num_D`` :class:`SPADEPatchDiscriminator`
    named ``discriminator_0`` (full resolution), ``discriminator_1`` (the input average-pooled
    3x3, stride 2, padding 1, padding not counted), ... ``forward``: N x input_nc x H x W ->
    one list of stage outputs per scale, full resolution first. ``input_nc`` is
    semantic_nc + 3 (the official D judges (semantic map, image) pairs)."""

    def __init__(
        self,
        input_nc: int,
        ndf: int = 64,
        n_layers_D: int = 4,
        num_D: int = 2,
        norm: str = "instance",
        spectral: bool = True,
    ):
        super().__init__()
        for i in range(num_D):
            self.add_module(
                f"discriminator_{i}", SPADEPatchDiscriminator(input_nc, ndf, n_layers_D, norm, spectral)
            )

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        outs = []
        for i, d in enumerate(self.children()):
            if i:
                x = F.avg_pool2d(x, kernel_size=3, stride=2, padding=1, count_include_pad=False)
            outs.append(d(x))
        return outs


# ----------------------------------------------------------------------------- encoder
class SPADEEncoder(nn.Module):
    """The official ``ConvEncoder`` (``--use_vae``): an image N x 3 x H x W in [-1, 1] ->
    (mu, logvar), each N x 256.

    The image is resized to 256 x 256 (bilinear, align_corners False) unless it is already;
    ``layer1`` .. ``layer6`` are 3x3 stride-2 :func:`norm_conv` (spectral, no bias,
    InstanceNorm) of widths ngf, 2, 4, 8, 8, 8 x ngf (the official code uses ngf, not nef),
    LeakyReLU 0.2 between them and after the last. ``crop_size`` must be >= 256: the official
    code drops ``layer6`` below that, and its forward then fails (8 x 8 features for an fc
    made for 4 x 4), so it is refused here at construction.
    ``fc_mu`` / ``fc_var``: Linear(8 ngf * 4 * 4, 256) on the flattened (C, H, W) features; the
    256 is hard-coded in the official code (G's ``z_dim`` must be 256).
    """

    def __init__(
        self,
        ngf: int = 64,
        crop_size: int = 256,
        norm: str = "instance",
        spectral: bool = True,
        input_nc: int = 3,
    ):
        super().__init__()
        if crop_size < 256:
            raise ConfigError(
                f"crop_size={crop_size}: the official encoder (use_vae) needs crop_size >= 256 (with less it "
                "has 5 layers whose output does not fit fc_mu); train the VAE at crop_size 256 or more"
            )
        widths = [input_nc, ngf, 2 * ngf, 4 * ngf, 8 * ngf, 8 * ngf, 8 * ngf]
        for i in range(1, len(widths)):
            conv = nn.Conv2d(widths[i - 1], widths[i], 3, stride=2, padding=1)
            self.add_module(f"layer{i}", norm_conv(conv, norm, spectral))
        self.fc_mu = nn.Linear(8 * ngf * 4 * 4, 256)
        self.fc_var = nn.Linear(8 * ngf * 4 * 4, 256)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.shape[2:] != (256, 256):
            x = F.interpolate(x, size=(256, 256), mode="bilinear", align_corners=False)
        x = self.layer1(x)
        for layer in (self.layer2, self.layer3, self.layer4, self.layer5, self.layer6):
            x = layer(F.leaky_relu(x, 0.2))
        x = F.leaky_relu(x, 0.2).flatten(1)
        return self.fc_mu(x), self.fc_var(x)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
    """z = eps * exp(0.5 * logvar) + mu with eps ~ N(0, I) unless given (the official
    ``Pix2PixModel.reparameterize``, same operation order, so a recorded eps gives the same z)."""
    std = torch.exp(0.5 * logvar)
    if eps is None:
        eps = torch.randn_like(std)
    return eps.mul(std) + mu
