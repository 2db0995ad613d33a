"""SPADE / GauGAN (Park et al., CVPR 2019), as NVlabs/SPADE trains it.

Label maps to photos. The networks (:mod:`imtrans.nets.spade`) all read the semantic map: the
one-hot labels (``label_nc`` channels, one more for the dontcare id with
``contain_dontcare_label``) followed by the instance-edge channel (unless ``no_instance``). The
generator grows a fixed-size latent map (a conv of the resized semantic map, or with ``use_vae``
a linear map of z) through SPADE residual blocks, each normalising its features and modulating
them with scales and shifts predicted from the semantic map; the 2-scale patch discriminator
judges (semantic map, image) pairs.

One iteration (official ``train.py`` with ``Pix2PixTrainer``, D_steps_per_G 1), on one batch:

1. G step (G and, with ``use_vae``, the encoder E): fake = G(semantics, z) with
   z = mu + eps * exp(logvar / 2) from E(photo); D once on cat(fake pair, real pair) along the
   batch; loss = hinge GAN (-mean of each scale's logit map, averaged over scales) + feature
   matching (L1 of the 4 intermediate features per scale against the detached real ones,
   / num_D) x10 + VGG19 perceptual x10 + KL x0.05 (``use_vae``).
2. D step: the fake made again by the updated G under no_grad (train mode, as the official
   code: its BatchNorm statistics and spectral-norm vectors move a second time, E draws a new
   eps), D once on cat(fake pair, real pair); loss = mean(relu(1 - D(real))) +
   mean(relu(1 + D(fake))), each averaged over the scales.

So the G-step fake is not reused: the official D step sees the fake of the G that step 1 has just
updated. TTUR (the default): Adam with betas (0, 0.9), G at lr / 2 and D at 2 lr; the rate is
constant for ``niter`` epochs, then falls linearly to 0 over ``niter_decay`` (Pix2PixHDDecay,
the same rule). Init: xavier-normal with gain 0.02 on G, D and E (before any forward: on
spectral-norm layers it lands in ``weight_orig``, as in the official code).

Inference (test.py): eval mode, so the SPADE BatchNorms use their running statistics and the
spectral norms their stored vectors. ``translate(x)`` takes a label map (int64 N x H x W) or
``{"label", "inst"}``. The generator's output size is fixed (``crop_size``, ``aspect_ratio``,
``num_upsampling_layers``) whatever the map's size; ``translate`` resizes it (bicubic,
antialiased; the identity at the generator's own size) to the map's size, so that every tool
gets outputs of its input's size. With ``use_vae``: ``style`` is z itself (N x z_dim);
``reference`` (photos) gives z = mu of the encoder (deterministic), and with ``num_samples``
S > 1 S draws z = mu + eps * exp(logvar / 2) from its posterior (what test.py does at every
call); otherwise each sample draws z ~ N(0, I). The encoder sees the whole photo: one z per
image, which sets the style of every region alike. The official code has no per-instance or
per-class style (GauGAN's demo, which has, is not released), and neither has this method.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from imtrans.errors import ConfigError
from imtrans.losses import GANLoss, feature_matching_loss
from imtrans.methods.base import TranslationModule
from imtrans.methods.bicyclegan import kl_to_standard_normal
from imtrans.methods.pix2pixhd import label_palette
from imtrans.methods.spec import InferenceSpec, Style, directional_tasks
from imtrans.nets.init import init_weights
from imtrans.nets.spade import (
    UPSAMPLINGS,
    SPADEGenerator,
    latent_size,
    reparameterize,
    semantic_map,
    semantic_nc,
)

#: the id COCO-Stuff's label maps give unlabelled pixels (read as the dontcare id)
UNLABELLED = 255


class SPADE(TranslationModule):
    """Label maps (+ instance maps) -> photos with spatially-adaptive normalisation, A -> B only.

    Args:
        generator: the :class:`~imtrans.nets.spade.SPADEGenerator` (built from its config).
        discriminator: the :class:`~imtrans.nets.spade.SPADEMultiscaleDiscriminator`.
        encoder: a factory ``() -> SPADEEncoder``, called only when the generator takes z
            (``use_vae``): a model without VAE has no encoder, as in the official code, whose
            encoder also refuses crop sizes below 256. An encoder already built is taken as it is.
        label_nc, contain_dontcare_label, no_instance: the official options that make the
            semantic map (``label_nc`` classes + the dontcare id + the instance-edge channel).
        init_type, init_variance: the official ``--init_type`` (xavier, normal, kaiming,
            orthogonal, or none) and its gain.
        no_TTUR: false (official default): G's rate is ``optimizer.lr`` / 2 and D's 2 lr;
            ``optimizer_overrides`` still set either directly.
    """

    directions = ("a2b",)
    input_kind = "labels"

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        encoder: Callable[[], nn.Module] | nn.Module | None = None,
        label_nc: int = 35,
        contain_dontcare_label: bool = False,
        no_instance: bool = False,
        init_type: str = "xavier",
        init_variance: float = 0.02,
        no_TTUR: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.label_nc, self.contain_dontcare_label = int(label_nc), bool(contain_dontcare_label)
        self.no_instance = bool(no_instance)
        expected = semantic_nc(self.label_nc, self.contain_dontcare_label, self.no_instance)
        if not isinstance(generator, SPADEGenerator):
            raise ConfigError(f"model.generator: a SPADEGenerator is needed, got {type(generator).__name__}")
        g_semantic = generator.head_0.norm_0.mlp_shared[0].in_channels
        if g_semantic != expected:
            raise ConfigError(
                f"model.generator.semantic_nc={g_semantic}: label_nc {self.label_nc} + dontcare "
                f"{int(self.contain_dontcare_label)} + instance edges {int(not self.no_instance)} make "
                f"{expected}; set model.generator.semantic_nc={expected}"
            )
        output_nc = generator.conv_img.out_channels
        d_in = discriminator.discriminator_0.model0[0].in_channels
        if d_in != expected + output_nc:
            raise ConfigError(
                f"model.discriminator.input_nc={d_in}: D judges (semantic map, image) pairs of "
                f"{expected} + {output_nc} channels; set model.discriminator.input_nc={expected + output_nc}"
            )
        self.netG, self.netD = generator, discriminator
        self.netE = None
        if generator.use_vae:
            if encoder is None:
                raise ConfigError(
                    "model.encoder=null: model.generator.use_vae=true trains G on the encoder's z "
                    "(--use_vae builds netE); give model.encoder or set model.generator.use_vae=false"
                )
            self.netE = encoder if isinstance(encoder, nn.Module) else encoder()
            if generator.z_dim != self.netE.fc_mu.out_features:
                raise ConfigError(
                    f"model.generator.z_dim={generator.z_dim}: the encoder gives "
                    f"{self.netE.fc_mu.out_features}-d codes (hard-coded 256 in the official code); "
                    f"set model.generator.z_dim={self.netE.fc_mu.out_features}"
                )
        if init_type != "none":
            for net in (self.netG, self.netD, self.netE):
                if net is not None:
                    init_weights(net, init_type, init_variance)
        if not no_TTUR:
            lr = getattr(self._optimizer_factory, "keywords", {}).get("lr")
            if lr is None:
                raise ConfigError(
                    "model.optimizer: TTUR (model.no_TTUR=false) needs optimizer.lr to halve and double"
                )
            overrides = {name: dict(values) for name, values in self._optimizer_overrides.items()}
            overrides.setdefault("G", {}).setdefault("lr", lr / 2)  # a rate given there wins
            overrides.setdefault("D", {}).setdefault("lr", lr * 2)
            self._optimizer_overrides = overrides
        self.vgg = None
        if self.loss_weights.get("vgg", 0) > 0:
            from imtrans.losses.perceptual import VGG19PerceptualLoss

            vgg_cfg = dict(self.loss_cfg.get("vgg") or {})
            self.vgg = VGG19PerceptualLoss(vgg_cfg.get("path"), bool(vgg_cfg.get("download")))
        self.gan = GANLoss(self.loss_cfg.get("gan_mode", "hinge"))
        self.register_buffer("palette", label_palette(self.num_ids), persistent=False)

    # ------------------------------------------------------------------ declaration
    @property
    def use_vae(self) -> bool:
        """The generator starts from z (``--use_vae``) rather than from the semantic map."""
        return bool(self.netG.use_vae)

    @property
    def is_multimodal(self) -> bool:  # type: ignore[override]
        return self.use_vae

    @property
    def num_ids(self) -> int:
        """Label ids the model takes: 0 .. label_nc - 1, and label_nc itself as the dontcare id."""
        return self.label_nc + int(self.contain_dontcare_label)

    def inference_spec(self) -> InferenceSpec:
        """Label maps (ids 0 .. label_nc - 1, and label_nc (or 255) for dontcare) to photos, a2b;
        instance maps unless ``no_instance``. Any map size (the output is resized to it). With
        ``use_vae``: ``num_samples`` draws z, ``style`` is z (N x z_dim), ``reference=photo``
        encodes it."""
        vae = self.use_vae
        return replace(
            super().inference_spec(),
            tasks=directional_tasks(("a2b",), {"A": 1, "B": self.netG.conv_img.out_channels}),
            label_nc=self.num_ids,
            instance_maps=not self.no_instance,
            samples=vae,
            reference=vae,
            style=Style(self.netG.z_dim, encodable=True) if vae else None,
            size_multiple=1,  # every layer resizes the map: any size goes in
        )

    def optimizer_groups(self):
        g = list(self.netG.parameters()) + (list(self.netE.parameters()) if self.netE is not None else [])
        return {"G": g, "D": self.netD.parameters()}

    def generator_modules(self):
        return {"netG": self.netG} if self.netE is None else {"netG": self.netG, "netE": self.netE}

    # ------------------------------------------------------------------ inputs
    def semantics(self, label: torch.Tensor, inst: torch.Tensor | None = None) -> torch.Tensor:
        """The networks' semantic map (official ``preprocess_input``): N x H x W ids (and instance
        ids) -> one-hot over ``num_ids`` channels, then the instance edges unless ``no_instance``
        (of the label map itself when no instance map is given: class boundaries only)."""
        label = (label[:, 0] if label.dim() == 4 else label).long().to(self.device)
        if self.contain_dontcare_label:
            # Label-map files given to translate are raw: COCO-Stuff marks unlabelled pixels 255,
            # which is the dontcare id label_nc (the data module maps it when it reads training data).
            label = label.masked_fill(label == UNLABELLED, self.label_nc)
        if self.no_instance:
            return semantic_map(label, self.num_ids)
        inst = label if inst is None else (inst[:, 0] if inst.dim() == 4 else inst).to(label.device)
        return semantic_map(label, self.num_ids, inst)

    @staticmethod
    def _split(x) -> tuple[torch.Tensor, torch.Tensor | None]:
        label, inst = (x["label"], x.get("inst")) if isinstance(x, Mapping) else (x, None)
        if label.is_floating_point():
            raise TypeError("SPADE translates integer label maps (N x H x W), not images")
        return label, inst

    # ------------------------------------------------------------------ inference
    def generate(self, x, direction="a2b", style=None):
        """G on a semantic map (``semantics``); ``style``: z (``use_vae``; None draws N(0, I))."""
        return self.netG(x, style.to(x) if style is not None and self.use_vae else None)

    def encode_reference(self, images: torch.Tensor, task=None) -> torch.Tensor:
        """z = mu of the encoder for photos N x 3 x H x W in [-1, 1] (resized to 256 x 256 inside)."""
        if self.netE is None:
            raise ValueError("SPADE without use_vae has no encoder: it encodes no photo")
        return self.netE(images.to(self.device))[0]

    def translate(self, x, direction="a2b", *, style=None, reference=None, num_samples=1):
        """Label map(s) -> N x C x H x W photos at the map's size (N x S x C x H x W for S samples).

        ``x``: int64 N x H x W label map or ``{"label", "inst"}`` (``inst`` None: the label map's
        class boundaries serve as instance edges). ``use_vae``: ``style`` is z (N x z_dim), used by
        every sample; ``reference`` (photos N or 1 x 3 x H' x W') gives z = mu of the encoder for
        one sample, S draws from its posterior for S > 1; neither: each sample draws z ~ N(0, I).
        """
        self.check_direction(direction)
        if reference is not None and not self.use_vae:
            raise ValueError("SPADE without use_vae is deterministic: it takes no reference image")
        label, inst = self._split(x)
        # user input (training data is checked when read): one line, not a scatter index error
        if label.numel():
            ids = (
                label.masked_fill(label == UNLABELLED, self.label_nc)
                if self.contain_dontcare_label
                else label
            )
            low, high = int(ids.min()), int(ids.max())
            if low < 0 or high >= self.num_ids:
                raise ValueError(f"SPADE: label ids must lie in [0, {self.num_ids}), got {low}..{high}")
        outs = []
        with self.inference_mode():
            sem = self.semantics(label, inst)
            posterior = None
            if reference is not None:
                ref = reference.to(sem)
                posterior = self.netE(ref.expand(sem.shape[0], -1, -1, -1) if ref.shape[0] == 1 else ref)
            for _ in range(num_samples):
                z = style
                if posterior is not None and z is None:
                    mu, logvar = posterior
                    z = mu if num_samples == 1 else reparameterize(mu, logvar)
                out = self.generate(sem, direction, z)
                # the generator's fixed size -> the map's (an exact identity at equal sizes, and
                # always run, so that a traced export keeps the resize for any input size)
                out = F.interpolate(
                    out, size=sem.shape[-2:], mode="bicubic", align_corners=False, antialias=True
                )
                outs.append(out.clamp(-1, 1))
        return outs[0] if num_samples == 1 else torch.stack(outs, 1)

    # ------------------------------------------------------------------ training
    def generate_fake(self, sem: torch.Tensor, real: torch.Tensor):
        """(fake, mu, logvar): the official ``generate_fake``, z = mu + eps * std from E(real)
        with ``use_vae`` (mu and logvar None without)."""
        mu = logvar = z = None
        if self.netE is not None:
            mu, logvar = self.netE(real)
            z = reparameterize(mu, logvar)
        return self.netG(sem, z), mu, logvar

    def discriminate_pair(self, sem: torch.Tensor, fake: torch.Tensor, real: torch.Tensor, *, d_step=False):
        """The official ``discriminate``: D once on cat(fake pair, real pair) along the batch (so
        its spectral-norm power iteration runs once, as there), split into the fake half's and
        the real half's per-scale outputs. ``d_step``: the reals' scores feed ADA."""
        n = fake.shape[0]
        out = self.discriminate(
            self.netD,
            torch.cat([sem, sem]),
            torch.cat([fake, real.to(fake.dtype)]),
            maps=(0,),  # the semantic map: geometry only
            real=d_step,
            scores=lambda o: [scale[-1][n:] for scale in o],
        )
        return [[t[:n] for t in scale] for scale in out], [[t[n:] for t in scale] for scale in out]

    def generator_losses(
        self,
        sem: torch.Tensor,
        fake: torch.Tensor,
        real: torch.Tensor,
        mu: torch.Tensor | None = None,
        logvar: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """The official ``compute_generator_loss`` terms for a fake, unweighted: ``gan``, ``feat``
        (when weighted), ``vgg`` (with the VGG loss), ``kld`` (given mu and logvar)."""
        pred_fake, pred_real = self.discriminate_pair(sem, fake, real)
        num_d = len(pred_fake)
        terms = {"gan": self.gan([p[-1] for p in pred_fake], True, for_generator=True) / num_d}
        if self.loss_weights.get("feat", 0):
            terms["feat"] = feature_matching_loss(pred_fake, pred_real, layer_weight=1.0)
        if self.vgg is not None:
            terms["vgg"] = self.vgg(fake, real)
        if mu is not None:
            # A sum over this process's batch. The official multi-GPU training (DataParallel)
            # sums over each GPU's share and then averages the GPUs' losses
            # (``sum(g_losses.values()).mean()``); DDP's averaged gradients give that same mean
            # of per-process sums, so no scaling by the number of processes.
            terms["kld"] = kl_to_standard_normal(mu.float(), logvar.float())
        return terms

    def discriminator_losses(self, sem: torch.Tensor, fake: torch.Tensor, real: torch.Tensor):
        """The official ``compute_discriminator_loss`` terms for a (detached) fake: ``D_fake``,
        ``D_real``."""
        pred_fake, pred_real = self.discriminate_pair(sem, fake, real, d_step=True)
        num_d = len(pred_fake)
        return {
            "D_fake": self.gan([p[-1] for p in pred_fake], False) / num_d,
            "D_real": self.gan([p[-1] for p in pred_real], True) / num_d,
        }

    def generator_terms(self, sem: torch.Tensor, real: torch.Tensor) -> dict[str, torch.Tensor]:
        fake, mu, logvar = self.generate_fake(sem, real)
        return self.generator_losses(sem, fake, real, mu, logvar)

    def discriminator_terms(self, sem: torch.Tensor, real: torch.Tensor) -> dict[str, torch.Tensor]:
        # the fake of the G just updated, made again in train mode (the official D step)
        with torch.no_grad():
            fake = self.generate_fake(sem, real)[0].detach()
        return self.discriminator_losses(sem, fake, real)

    def training_step(self, batch, batch_idx):
        label, inst = self._split(batch)
        sem, real = self.semantics(label, inst), batch["B"]
        loss_G = self.optimize("G", lambda: self.weigh(self.generator_terms(sem, real)))
        loss_D = self.optimize("D", lambda: self.weigh(self.discriminator_terms(sem, real)))
        self.log_dict({"train/G": loss_G, "train/D": loss_D}, prog_bar=True)

    # ------------------------------------------------------------------ data checks and grids
    def check_data(self, datamodule) -> None:
        """The data's label options must be the model's, its instance maps there when the model
        reads them, and its training images of the generator's output size."""
        data = {
            "label_nc": getattr(datamodule, "label_nc", None),
            "contain_dontcare_label": getattr(datamodule, "contain_dontcare_label", None),
        }
        for key, value in data.items():
            if value is not None and value != getattr(self, key):
                raise ConfigError(
                    f"model.{key}={getattr(self, key)}: the data has data.{key}={value}; "
                    f"give both the same value (model.{key} follows data.{key} unless set)"
                )
        if not self.no_instance and getattr(datamodule, "use_instance", True) is False:
            raise ConfigError(
                "model.no_instance=false: the data has no instance maps (data.use_instance=false); set "
                "data.use_instance=true (instance maps in <root>/<split>_inst) or model.no_instance=true"
            )
        super().check_data(datamodule)

    def check_image_size(self, height: int, width: int, key: str = "data.crop_size") -> None:
        """The generator makes images of one size only: the training images must have it."""
        size = self.netG.output_size
        if (height, width) != size:
            k = self.netG.num_upsampling_layers
            fix = f"make the training images {size[0]}x{size[1]}"
            try:  # the crop_size and aspect_ratio that make the data's size, if any do
                sh, sw = latent_size(width, width / height, k)
                if (sh * 2 ** UPSAMPLINGS[k], sw * 2 ** UPSAMPLINGS[k]) == (height, width):
                    fix = (
                        f"set model.generator.crop_size={width} model.generator.aspect_ratio="
                        f"{width / height:g}, or {fix}"
                    )
            except ConfigError:
                pass
            raise ConfigError(
                f"{key}={height}x{width}: the SPADE generator makes {size[0]}x{size[1]} images only (from "
                f"model.generator.crop_size, aspect_ratio and num_upsampling_layers {k}); {fix}"
            )
        super().check_image_size(height, width, key)

    def grid_inputs(self, batch, direction):
        """(what ``translate`` takes, the label map in colours) of a batch."""
        if "label" not in batch:
            return None
        label = batch["label"]
        ids = label.long().clamp(0, self.num_ids - 1)
        shown = self.palette.to(label.device)[ids[:, 0] if ids.dim() == 4 else ids].permute(0, 3, 1, 2)
        return {"label": label, "inst": batch.get("inst")}, shown
