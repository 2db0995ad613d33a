"""StarGAN v2 (Choi et al., CVPR 2020), as clovaai/stargan-v2 ``core/solver.py`` trains it.

One generator G(x, s), a mapping network F(z, y) and a style encoder E(x, y) with one head per
domain, a discriminator D(x, y) with one output per domain (networks: :mod:`imtrans.nets.stargan_v2`).
Data: folder-per-domain batches ``{"image", "domain"}`` (``data=domains``, ``data=afhq``,
``data=celeba_hq``).

One iteration, the official order (x real of domains y, targets y_trg, latents z, z2 ~ N(0, I)):

1. D step, latent: ``real`` BCE(D(x, y), 1) + ``fake`` BCE(D(G(x, F(z, y_trg)), y_trg), 0) +
   ``r1`` 0.5 * sum |dD(x, y)/dx|^2 averaged over the batch (real images only, gamma 1).
2. D step, reference: the same with s = E(x_ref, y_trg).
3. G step, latent, stepping G, F and E together: ``adv`` BCE(D(fake, y_trg), 1) + ``sty``
   |E(fake, y_trg) - s| - lambda_ds(t) ``ds`` |fake - G(x, s2).detach()| + ``cyc``
   |G(fake, E(x, y)) - x| (all means), s = F(z, y_trg), s2 = F(z2, y_trg).
4. G step, reference: the same loss with s = E(x_ref, y_trg), s2 = E(x_ref2, y_trg); it steps
   G only (the official E and F gradients of this pass are discarded).
5. The generator EMA (G, F and E, decay 0.999 from iteration 0; ``recipe_callbacks``), then
   lambda_ds decays: ``lambda_ds(t) = loss.weights.ds * max(0, 1 - (t - 1) / ds_iter)`` at
   iteration t (1-based), linear to 0 at ``ds_iter`` (100k, the whole run).

D's fakes of step 1 are the translations that step 3 trains on, computed once: G and F do not
change in between (the official code computes them again). With ``w_hpf > 0`` and the FAN
(``fan``), the high-pass masks come from FAN heatmaps of x (and of the fake for the cycle pass).

Reference images: a batch may carry ``ref``, ``ref2`` (N x 3 x H x W, two images of domain
``ref_domain`` each) as the official reference loader gives them. Without them, references
are drawn from the batch itself: ``ref`` is a random permutation of the batch (so y_trg is the
domain of another random image, drawn independently of y, as official) and ``ref2`` another
image of the batch of the same domain (the image itself when the batch has no other).

Official quirks kept: He init of the trained networks, EMA copies starting from PyTorch's
default initialisation (``ema_init: pytorch_default``), no output tanh, Adam's coupled weight
decay on every network, the mapping network's learning rate 1e-6.

Inference: ``translate(x, target_domain=k, style=z, reference=None, num_samples=S)``; ``style``
is the latent z (N x latent_dim, N(0, I)) that F maps to a style; ``reference`` images of domain
k give E's style instead.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from imtrans.methods.base import TranslationModule
from imtrans.methods.spec import InferenceSpec, Style, domain_tasks


def adv_loss(logits: torch.Tensor, target: float) -> torch.Tensor:
    """Non-saturating GAN term: BCE-with-logits of N logits against a constant 0 or 1 (float32)."""
    logits = logits.float()
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def r1_penalty(d_out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Zero-centred gradient penalty ``0.5 * mean_i sum |d sum(d_out) / d x_i|^2``.

    d_out: N logits of D on ``x`` (N x C x H x W, ``requires_grad``); the graph is kept
    (``create_graph``) so the penalty trains D.
    """
    (grad,) = torch.autograd.grad(d_out.float().sum(), x, create_graph=True)
    return 0.5 * grad.float().pow(2).flatten(1).sum(1).mean()


def l1_mean(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.float() - b.float()).abs().mean()


class StarGANv2(TranslationModule):
    """StarGAN v2: multi-domain, multimodal (latent- and reference-guided).

    Args:
        generator, mapping_network, style_encoder, discriminator: factories (Hydra partials of
            :mod:`imtrans.nets.stargan_v2`) completed with the sizes below.
        num_domains: number of domains (3 for AFHQ, 2 for CelebA-HQ).
        img_size: training image side (a power of two, >= 32).
        latent_dim, style_dim: z and style sizes (16, 64).
        w_hpf: weight of the high-pass path (0 AFHQ, 1 CelebA-HQ); > 0 also changes the generator.
        fan: the face-landmark network (``imtrans.nets.stargan_v2.load_fan``) giving the high-pass
            masks, or None: the w_hpf architecture then runs without masks (not the official recipe).
        ds_iter: iterations over which the diversity weight decays to 0 (100,000).
        ema_decay: decay of the G, F, E averages (0.999); None: no EMA.
        ema_init: ``pytorch_default`` (official: the averages start from PyTorch's default init,
            copied before the He init) or ``weights`` (from the initial trained weights).
        **kwargs: ``TranslationModule`` arguments (loss, optimizer, optimizer_overrides, ...).
    """

    is_multimodal = True
    #: R1 differentiates D's output for real images with create_graph=True
    eager_modules = ("discriminator",)
    directions: tuple[str, ...] = ()

    def __init__(
        self,
        generator: Callable[..., nn.Module],
        mapping_network: Callable[..., nn.Module],
        style_encoder: Callable[..., nn.Module],
        discriminator: Callable[..., nn.Module],
        num_domains: int = 2,
        img_size: int = 256,
        latent_dim: int = 16,
        style_dim: int = 64,
        w_hpf: float = 1,
        fan: nn.Module | None = None,
        ds_iter: int = 100000,
        ema_decay: float | None = 0.999,
        ema_init: str = "pytorch_default",
        **kwargs,
    ):
        super().__init__(**kwargs)
        from imtrans.nets.stargan_v2 import he_init

        if ema_init not in ("pytorch_default", "weights"):
            raise ValueError(f"model.ema_init must be pytorch_default or weights, got {ema_init!r}")
        self.num_domains, self.latent_dim, self.style_dim = int(num_domains), int(latent_dim), int(style_dim)
        self.w_hpf, self.ds_iter = w_hpf, int(ds_iter)
        self.ema_decay, self.ema_init = ema_decay, ema_init
        nets = {
            "generator": generator(img_size=img_size, style_dim=style_dim, w_hpf=w_hpf),
            "mapping_network": mapping_network(
                latent_dim=latent_dim, style_dim=style_dim, num_domains=num_domains
            ),
            "style_encoder": style_encoder(img_size=img_size, style_dim=style_dim, num_domains=num_domains),
            "discriminator": discriminator(img_size=img_size, num_domains=num_domains),
        }
        # PyTorch-default copies for the EMA (official: deep-copied before he_init), kept until
        # enable_ema takes them
        self._default_init = (
            {
                k: {n: t.clone() for n, t in v.state_dict().items()}
                for k, v in nets.items()
                if k != "discriminator"
            }
            if ema_init == "pytorch_default"
            else None
        )
        for name, net in nets.items():
            setattr(self, name, he_init(net))
        if w_hpf > 0 and fan is None:
            warnings.warn(
                "StarGAN v2 with w_hpf > 0 and model.fan=null: the high-pass path runs without FAN masks; "
                "this is not the official CelebA-HQ recipe (which needs wing.ckpt)",
                stacklevel=2,
            )
        # Outside the module tree: frozen, pretrained, always in eval mode (its BatchNorm must not
        # switch to training), not in checkpoints, optimizers or DDP.
        self._fan = (fan.eval().requires_grad_(False),) if fan is not None and w_hpf > 0 else ()

    # ------------------------------------------------------------------ contract
    def optimizer_groups(self):
        return {
            n: getattr(self, n).parameters()
            for n in ("generator", "mapping_network", "style_encoder", "discriminator")
        }

    def generator_modules(self):
        return {
            "generator": self.generator,
            "mapping_network": self.mapping_network,
            "style_encoder": self.style_encoder,
        }

    def recipe_callbacks(self) -> list:
        from imtrans.callbacks import GeneratorEMA

        return [] if self.ema_decay is None else [GeneratorEMA(decay=self.ema_decay, start_iter=0)]

    def enable_ema(self) -> None:
        fresh = self.ema is None
        super().enable_ema()
        if fresh and self._default_init is not None:
            with torch.no_grad():
                for name, averaged in self.ema.items():
                    averaged.load_state_dict(self._default_init[name])
        self._default_init = None

    # ------------------------------------------------------------------ helpers
    @property
    def fan(self) -> nn.Module | None:
        return self._fan[0] if self._fan else None

    def masks(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """FAN high-pass masks of images x (N x 3 x H x W in [-1, 1]), or None without FAN."""
        fan = self.fan
        if fan is None:
            return None
        fan.to(x.device).eval()
        with torch.no_grad(), torch.autocast(x.device.type, enabled=False):
            return fan.masks(x.float())

    def domains(self, y, n: int, device) -> torch.Tensor:
        y = torch.as_tensor(y, device=device).long().reshape(-1)
        y = y.expand(n) if y.numel() == 1 else y
        if (y < 0).any() or (y >= self.num_domains).any():
            raise ValueError(
                f"domain indices {y.tolist()} outside 0..{self.num_domains - 1}: set model.num_domains"
            )
        return y

    def lambda_ds(self, iteration: int | None = None) -> float:
        """The diversity weight at ``iteration`` (1-based; default: the current one)."""
        t = self.iteration if iteration is None else iteration
        return float(self.loss_weights.get("ds", 0.0)) * max(0.0, 1.0 - max(t - 1, 0) / self.ds_iter)

    def references(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x_ref, x_ref2, y_trg): the batch's own reference pairs, or ones drawn from it."""
        if "ref" in batch:
            x = batch["ref"]
            return x, batch["ref2"], self.domains(batch["ref_domain"], x.shape[0], x.device)
        x, y = batch["image"], self.domains(batch["domain"], batch["image"].shape[0], batch["image"].device)
        n = x.shape[0]
        perm = torch.randperm(n, device=x.device)
        y_trg = y[perm]
        # a second image of each reference's domain, another one where the batch has it
        score = torch.rand(n, n, device=x.device)
        same = (y[None, :] == y_trg[:, None]) & (torch.arange(n, device=x.device)[None, :] != perm[:, None])
        second = torch.where(same.any(1), score.masked_fill(~same, -1.0).argmax(1), perm)
        return x[perm], x[second], y_trg

    @contextlib.contextmanager
    def _weights(self, **current: float):
        saved = self.loss_weights
        self.loss_weights = {**saved, **current}
        try:
            yield
        finally:
            self.loss_weights = saved

    # ------------------------------------------------------------------ losses
    def discriminator_terms(self, x, y, y_trg, fake) -> dict[str, torch.Tensor]:
        """``real``, ``fake`` and ``r1`` for real x (domains y) and detached fakes of domains y_trg."""
        x = x.detach().requires_grad_(True)
        # R1 is the gradient w.r.t. the un-augmented real through the augmentation, as the ADA
        # and DiffAugment code take it (both differentiable, twice)
        out = self.discriminate(self.discriminator, x, real=True, y=y)
        return {
            "real": adv_loss(out, 1.0),
            "fake": adv_loss(self.discriminate(self.discriminator, fake.detach(), y=y_trg), 0.0),
            "r1": r1_penalty(out, x),
        }

    def generator_terms(self, x, y, y_trg, s_trg, fake, s_trg2, masks) -> dict[str, torch.Tensor]:
        """``adv``, ``sty``, ``ds`` (the positive L1 distance; its weight is -lambda_ds) and ``cyc``."""
        terms = {
            "adv": adv_loss(self.discriminate(self.discriminator, fake, y=y_trg), 1.0),
            "sty": l1_mean(self.style_encoder(fake, y_trg), s_trg),
        }
        if self.lambda_ds() != 0:
            with torch.no_grad():  # the official second output is detached
                fake2 = self.generator(x, s_trg2, masks=masks)
            terms["ds"] = l1_mean(fake, fake2)
        s_org = self.style_encoder(x, y)
        rec = self.generator(fake, s_org, masks=self.masks(fake))
        terms["cyc"] = l1_mean(rec, x)
        return terms

    def training_step(self, batch, batch_idx):
        x = batch["image"]
        n = x.shape[0]
        y = self.domains(batch["domain"], n, x.device)
        x_ref, x_ref2, y_trg = self.references(batch)
        z, z2 = torch.randn(2, n, self.latent_dim, device=x.device, dtype=x.dtype)
        masks = self.masks(x)
        ds = {"ds": -self.lambda_ds()}  # minus: the diversity is maximised

        # the latent translation with its graph: D's fake in step 1, G's in step 3
        s_lat = self.mapping_network(z, y_trg)
        fake_lat = self.generator(x, s_lat, masks=masks)

        def d_latent():
            return self.weigh(self.discriminator_terms(x, y, y_trg, fake_lat), prefix="train/D_latent")

        def d_reference():
            with torch.no_grad():
                fake = self.generator(x, self.style_encoder(x_ref, y_trg), masks=masks)
            return self.weigh(self.discriminator_terms(x, y, y_trg, fake), prefix="train/D_ref")

        def g_latent():
            with torch.no_grad():
                s2 = self.mapping_network(z2, y_trg)
            terms = self.generator_terms(x, y, y_trg, s_lat, fake_lat, s2, masks)
            with self._weights(**ds):
                return self.weigh(terms, prefix="train/G_latent")

        def g_reference():
            s_ref = self.style_encoder(x_ref, y_trg)
            fake = self.generator(x, s_ref, masks=masks)
            with torch.no_grad():
                s2 = self.style_encoder(x_ref2, y_trg)
            terms = self.generator_terms(x, y, y_trg, s_ref, fake, s2, masks)
            with self._weights(**ds):
                return self.weigh(terms, prefix="train/G_ref")

        loss_d = self.optimize("discriminator", d_latent)
        loss_d = loss_d + self.optimize("discriminator", d_reference)
        loss_g = self.optimize(("generator", "mapping_network", "style_encoder"), g_latent)
        loss_g = loss_g + self.optimize("generator", g_reference)
        self.log_dict(
            {"train/G": loss_g, "train/D": loss_d, "train/lambda_ds": ds["ds"] * -1.0}, prog_bar=True
        )

    # ------------------------------------------------------------------ inference
    def inference_spec(self) -> InferenceSpec:
        """One task per target domain (named as the training data's folders); latent codes z
        (latent_dim, N(0, I), mapped by F) or reference images of the target domain (E's style,
        not in z's space). Sides: multiples of 2**(the encoder's down-samplings); with the FAN
        masks, only the training size (the masks are placed at the square sizes of training)."""
        names = self.domain_names(self.num_domains)
        levels = sum(1 for block in self.generator.encode if block.downsample)
        return replace(
            super().inference_spec(),
            tasks=domain_tasks(names),
            domains=names,
            samples=True,
            style=Style(self.latent_dim),
            reference=True,
            size_multiple=2**levels,
            fixed_size=self.generator.img_size if self.fan is not None else None,
        )

    def style_codes(self, n: int, target_domain, style=None, reference=None, device=None) -> torch.Tensor:
        """Style vectors N x style_dim for domain ``target_domain``: E(reference) when given, else
        F(style) with ``style`` the latent z (N or 1 x latent_dim; drawn from N(0, I) when None)."""
        device = device or self.device
        y = self.domains(target_domain, n, device)
        if reference is not None:
            reference = reference.to(device)
            if reference.shape[0] == 1:
                reference = reference.expand(n, -1, -1, -1)
            return self.style_encoder(reference, y)
        if style is None:
            z = torch.randn(n, self.latent_dim, device=device)
        else:
            z = style.to(device).reshape(-1, self.latent_dim).expand(n, -1)
        return self.mapping_network(z, y)

    def generate(self, x, target_domain, style=None, reference=None):
        s = self.style_codes(x.shape[0], target_domain, style, reference, x.device)
        return self.generator(x, s.to(x.dtype), masks=self.masks(x))

    def translate(self, x, direction=None, *, target_domain=None, style=None, reference=None, num_samples=1):
        """Translate ``x`` (N x 3 x H x W in [-1, 1]) into domain ``target_domain`` (an index or N
        indices). ``style``: latent codes z (N or 1 x latent_dim); ``reference``: N or 1 images of
        the target domain; else z ~ N(0, I), one per sample. Returns N x 3 x H x W
        (``num_samples`` 1) or N x S x 3 x H x W; values unbounded (no tanh), about [-1, 1]."""
        if target_domain is None:
            target_domain = direction
        if target_domain is None or isinstance(target_domain, str):
            raise ValueError("StarGANv2.translate needs target_domain=<domain index>")
        x = x.to(self.device)
        with self.inference_mode():
            outs = [self.generate(x, target_domain, style, reference) for _ in range(num_samples)]
        return outs[0] if num_samples == 1 else torch.stack(outs, 1)

    def _evaluate(self, batch, stage):
        """No paired targets in folder-per-domain data; FID/LPIPS come from the callbacks."""
        return None
