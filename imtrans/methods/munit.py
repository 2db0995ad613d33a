"""MUNIT (Huang et al., ECCV 2018), as NVlabs/MUNIT ``trainer.py`` (``MUNIT_Trainer``) trains it.

Per domain an auto-encoder ``gen_a``/``gen_b`` (:class:`imtrans.nets.AdaINGen`: content
encoder, style encoder, AdaIN decoder) and a 3-scale LSGAN discriminator ``dis_a``/``dis_b``
(``dis_a`` judges images of domain A). One iteration, in the official order:

1. D step: content codes of the real images, style codes s ~ N(0, I), cross-domain
   translations x_ba = dec_a(c_b, s_a), x_ab = dec_b(c_a, s_b), detached;
   ``dis_a = sum_scales mean(D_a(x_ba)^2) + mean((D_a(x_a) - 1)^2)``, same for B.
2. G step (D frozen): within-domain reconstruction dec_a(enc_a(x_a)), the cross-domain
   translations, their re-encoding (content and style), the optional explicit cycle
   dec_a(c_a_recon, s_a_prime) with the style of the *real* image, adversarial terms with
   the just-updated D, the optional domain-invariant VGG loss:

   - ``gan_a = sum_scales mean((D_a(x_ba) - 1)^2)``, ``gan_b`` on x_ab;
   - ``recon_x_a = |dec_a(c_a, s_a') - x_a|``; ``recon_s_a = |s_a_recon - s_a|`` on the
     *sampled* code; ``recon_c_a = |c_a_recon - c_a|`` (neither side detached);
   - ``cyc_x_a = |dec_a(c_a_recon, s_a') - x_a|`` (only when its weight is > 0);
   - ``vgg_a = perceptual(x_ba, x_b)`` (translation vs. its own source; weight > 0 only).

All L1 terms are means over elements. Weights come from the ``loss`` group (official
``gan_w``, ``recon_x_w``, ``recon_s_w``, ``recon_c_w``, ``recon_x_cyc_w``, ``vgg_w``).

**One translation pass** (``reuse_translations``, default true): the official code samples
new style codes and re-runs the encoders and decoders in its G update. Here the whole
generator forward is computed once, before the D step, and its translations serve the D step
(detached) and the G step. The D step does not change the generators, so every G-step
quantity is the same function of the same parameters as officially; the only difference is
that the D and G steps see the *same* sampled style codes instead of two independent draws
(the expected gradients are unchanged; their noise is correlated). It saves the D step's
encoder and decoder passes (measured in ``experiments/results/bench_munit_unit.md``).
``reuse_translations: false`` restores the official behaviour exactly: independent codes,
the D step's own (gradient-free) translation pass.

Official details kept: kaiming-normal init of the generators, N(0, 0.02) of the
discriminators (biases 0); Adam 1e-4 (0.5, 0.999) with weight decay 1e-4 for both; StepLR x0.5
every 100k iterations (``scheduler_interval: iteration``; it steps after each iteration
where the official loop steps before it, so each decay comes one iteration later). Not kept:
the official G update also computes (and discards) D gradients; here D is frozen during it,
which saves work and changes no result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from imtrans.losses import GANLoss
from imtrans.methods.base import TranslationModule
from imtrans.methods.spec import InferenceSpec, Style, Task
from imtrans.nets import init_weights


def _l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The official ``recon_criterion``: mean absolute difference."""
    return (x - y).abs().mean()


class TwoDomainAutoEncoderGAN(TranslationModule):
    """What MUNIT and UNIT share (the two trainers of NVlabs/MUNIT): per-domain generators
    ``gen_a``/``gen_b`` and multi-scale discriminators ``dis_a``/``dis_b``, one optimizer for
    each pair, the D-then-G update with optional reuse of the translations, the D loss and
    the optional domain-invariant perceptual loss.

    Subclasses implement ``forward_pass`` (the full generator forward, a dict with at least
    ``fake_A`` = x_ba and ``fake_B`` = x_ab), ``cross_translations`` (the D step's own
    translations when not reusing) and ``generator_terms`` (the non-adversarial terms).

    Args:
        generator: factory ``(input_dim) -> nn.Module`` (partial ``AdaINGen`` / ``VAEGen``).
        discriminator: factory ``(input_dim) -> nn.Module`` (partial ``MsImageDis``).
        input_nc, output_nc: channels of domain A and domain B images.
        init_type: init of the generators (``kaiming`` officially).
        dis_init_type, dis_init_gain: init of the discriminators (``normal``, 0.02).
        reuse_translations: one generator pass per iteration (see the module docstring).
        **kwargs: ``TranslationModule`` arguments (loss, optimizer, scheduler, ...). The
            ``loss`` group may carry ``vgg: {path, download}`` for the perceptual loss.
    """

    def __init__(
        self,
        generator: Callable[..., nn.Module],
        discriminator: Callable[..., nn.Module],
        input_nc: int = 3,
        output_nc: int = 3,
        init_type: str = "kaiming",
        dis_init_type: str = "normal",
        dis_init_gain: float = 0.02,
        reuse_translations: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.gen_a = init_weights(generator(input_dim=input_nc), init_type)
        self.gen_b = init_weights(generator(input_dim=output_nc), init_type)
        self.dis_a = init_weights(discriminator(input_dim=input_nc), dis_init_type, dis_init_gain)
        self.dis_b = init_weights(discriminator(input_dim=output_nc), dis_init_type, dis_init_gain)
        self.reuse_translations = bool(reuse_translations)
        self.gan = GANLoss(self.loss_cfg.get("gan_mode", "lsgan"))
        self.perceptual = None
        if self._weight("vgg_a") > 0 or self._weight("vgg_b") > 0:
            from imtrans.losses.perceptual import DomainInvariantPerceptualLoss

            vgg_cfg: dict[str, Any] = dict(self.loss_cfg.get("vgg") or {})
            self.perceptual = DomainInvariantPerceptualLoss(
                vgg_cfg.get("path"), bool(vgg_cfg.get("download"))
            )

    def _weight(self, name: str) -> float:
        return float(self.loss_weights.get(name, 0.0))

    # ------------------------------------------------------------------ contract
    def optimizer_groups(self):
        return {
            "G": [*self.gen_a.parameters(), *self.gen_b.parameters()],
            "D": [*self.dis_a.parameters(), *self.dis_b.parameters()],
        }

    def generator_modules(self):
        return {"gen_a": self.gen_a, "gen_b": self.gen_b}

    # ------------------------------------------------------------------ to implement
    def forward_pass(self, real_A: torch.Tensor, real_B: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def cross_translations(
        self, real_A: torch.Tensor, real_B: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def generator_terms(self, real_A, real_B, fwd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    # ------------------------------------------------------------------ losses
    def adversarial_terms(self, real_A, real_B, fwd) -> dict[str, torch.Tensor]:
        """G-side adversarial and perceptual terms on the translations of ``fwd``."""
        terms = {
            "gan_a": self.gan(self.discriminate(self.dis_a, fwd["fake_A"]), True),
            "gan_b": self.gan(self.discriminate(self.dis_b, fwd["fake_B"]), True),
        }
        if self.perceptual is not None:
            terms["vgg_a"] = self.perceptual(fwd["fake_A"], real_B)
            terms["vgg_b"] = self.perceptual(fwd["fake_B"], real_A)
        return terms

    def discriminator_terms(self, real_A, real_B, fake_A, fake_B) -> dict[str, torch.Tensor]:
        """``dis_a = sum_scales mean(D_a(fake_A)^2) + mean((D_a(real_A) - 1)^2)``, same for B.
        ``fake_*`` must be detached."""
        return {
            "dis_a": self.gan(self.discriminate(self.dis_a, fake_A), False)
            + self.gan(self.discriminate(self.dis_a, real_A, real=True), True),
            "dis_b": self.gan(self.discriminate(self.dis_b, fake_B), False)
            + self.gan(self.discriminate(self.dis_b, real_B, real=True), True),
        }

    def all_generator_terms(self, real_A, real_B, fwd) -> dict[str, torch.Tensor]:
        return {**self.adversarial_terms(real_A, real_B, fwd), **self.generator_terms(real_A, real_B, fwd)}

    # ------------------------------------------------------------------ training
    def training_step(self, batch, batch_idx):
        real_A, real_B = batch["A"], batch["B"]
        fwd: dict[str, torch.Tensor] = {}
        if self.reuse_translations:
            # The whole G forward once, before the D step (which leaves G unchanged).
            fwd = self.forward_pass(real_A, real_B)
            fake_A, fake_B = fwd["fake_A"].detach(), fwd["fake_B"].detach()
        else:
            with torch.no_grad():  # official dis_update: its own codes, detached translations
                fake_A, fake_B = self.cross_translations(real_A, real_B)

        loss_D = self.optimize(
            "D", lambda: self.weigh(self.discriminator_terms(real_A, real_B, fake_A, fake_B))
        )

        def generator_loss():
            out = fwd or self.forward_pass(real_A, real_B)  # official gen_update: fresh codes
            return self.weigh(self.all_generator_terms(real_A, real_B, out))

        loss_G = self.optimize("G", generator_loss)
        self.log_dict({"train/G": loss_G, "train/D": loss_D}, prog_bar=True)


class MUNIT(TwoDomainAutoEncoderGAN):
    """Multimodal, unpaired, both directions (see the module docstring for the losses).

    Inference: ``translate(x, direction, style=None, reference=None, num_samples=1)``:
    ``style`` N x style_dim (or 1 x style_dim, broadcast) codes; ``reference`` images of the
    *target* domain whose style (encoded by the target domain's style encoder) is used,
    N or 1 of them; else codes drawn from N(0, I), a fresh one per sample.
    ``interpolate(x, style_from, style_to, steps)`` walks linearly between two codes.
    """

    is_multimodal = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.style_dim = int(self.gen_a.style_dim)

    # ------------------------------------------------------------------ forward
    def sample_styles(self, n: int, like: torch.Tensor) -> torch.Tensor:
        """N(0, I) style codes, n x style_dim, on ``like``'s device and dtype."""
        return torch.randn(n, self.style_dim, device=like.device, dtype=like.dtype)

    def forward_pass(self, real_A, real_B):
        """The official ``gen_update`` forward; returns every tensor the terms need.

        Decoder A decodes the within-domain reconstruction of A and the translation B->A in
        one batched call (likewise decoder B): every normalisation in the decoder is per
        sample, so batching gives the same values as two calls, in fewer, larger kernels.
        """
        na, nb = real_A.shape[0], real_B.shape[0]
        # s_a: codes of domain A for the B->A translations (one per B image), and vice versa
        s_a, s_b = self.sample_styles(nb, real_B), self.sample_styles(na, real_A)
        c_a, s_a_prime = self.gen_a.encode(real_A)
        c_b, s_b_prime = self.gen_b.encode(real_B)
        rec_A, fake_A = self.gen_a.decode(torch.cat([c_a, c_b]), torch.cat([s_a_prime, s_a])).split([na, nb])
        rec_B, fake_B = self.gen_b.decode(torch.cat([c_b, c_a]), torch.cat([s_b_prime, s_b])).split([nb, na])
        c_b_recon, s_a_recon = self.gen_a.encode(fake_A)
        c_a_recon, s_b_recon = self.gen_b.encode(fake_B)
        fwd = dict(
            s_a=s_a, s_b=s_b, c_a=c_a, c_b=c_b, s_a_prime=s_a_prime, s_b_prime=s_b_prime,
            rec_A=rec_A, rec_B=rec_B, fake_A=fake_A, fake_B=fake_B,
            c_a_recon=c_a_recon, c_b_recon=c_b_recon, s_a_recon=s_a_recon, s_b_recon=s_b_recon,
        )  # fmt: skip
        if self._weight("cyc_x_a") > 0 or self._weight("cyc_x_b") > 0:
            # explicit cycle: re-encoded content with the style of the *real* image
            fwd["cyc_A"] = self.gen_a.decode(c_a_recon, s_a_prime)
            fwd["cyc_B"] = self.gen_b.decode(c_b_recon, s_b_prime)
        return fwd

    def cross_translations(self, real_A, real_B):
        """The official ``dis_update`` forward: (x_ba, x_ab) with freshly sampled codes."""
        s_a, s_b = self.sample_styles(real_B.shape[0], real_B), self.sample_styles(real_A.shape[0], real_A)
        fake_A = self.gen_a.decode(self.gen_b.enc_content(real_B), s_a)
        fake_B = self.gen_b.decode(self.gen_a.enc_content(real_A), s_b)
        return fake_A, fake_B

    def generator_terms(self, real_A, real_B, fwd):
        terms = {
            "recon_x_a": _l1(fwd["rec_A"], real_A),
            "recon_x_b": _l1(fwd["rec_B"], real_B),
            "recon_s_a": _l1(fwd["s_a_recon"], fwd["s_a"]),
            "recon_s_b": _l1(fwd["s_b_recon"], fwd["s_b"]),
            "recon_c_a": _l1(fwd["c_a_recon"], fwd["c_a"]),
            "recon_c_b": _l1(fwd["c_b_recon"], fwd["c_b"]),
        }
        if "cyc_A" in fwd:
            terms["cyc_x_a"] = _l1(fwd["cyc_A"], real_A)
            terms["cyc_x_b"] = _l1(fwd["cyc_B"], real_B)
        return terms

    # ------------------------------------------------------------------ inference
    def _gens(self, direction: str):
        """(source generator, target generator) of a direction."""
        return (self.gen_a, self.gen_b) if direction == "a2b" else (self.gen_b, self.gen_a)

    def inference_spec(self) -> InferenceSpec:
        """Both directions; N(0, I) style codes (style_dim), reference images of the target
        domain encoded into that space."""
        return replace(
            super().inference_spec(),
            samples=True,
            style=Style(self.style_dim, encodable=True),
            reference=True,
        )

    def encode_reference(self, images: torch.Tensor, task: Task) -> torch.Tensor:
        return self.encode_style(images, task.target)

    def encode_style(self, images: torch.Tensor, domain: str) -> torch.Tensor:
        """Style codes N x style_dim of images of ``domain`` (``A`` or ``B``)."""
        gen = self.gen_a if domain.upper() == "A" else self.gen_b
        return gen.enc_style(images.to(self.device))

    def generate(self, x, direction, style=None):
        """x N x C x H x W in [-1, 1] -> N x C' x H x W in [-1, 1]; ``style`` N x style_dim
        (1 x style_dim broadcasts; None draws N(0, I))."""
        src, tgt = self._gens(direction)
        content = src.enc_content(x)
        if style is None:
            style = self.sample_styles(x.shape[0], x)
        style = style.to(x.device, x.dtype).reshape(style.shape[0], -1).expand(x.shape[0], -1)
        return tgt.decode(content, style)

    def translate(self, x, direction="a2b", *, style=None, reference=None, num_samples=1):
        """As ``TranslationModule.translate``; a ``reference`` (N or 1 images of the target
        domain, any size the style encoder takes) fixes the style to its encoded code, so all
        S samples are then the same image. Returns N x C' x H x W (S = 1) or N x S x C' x H x W.
        """
        if reference is None:
            return super().translate(x, direction, style=style, num_samples=num_samples)
        self.check_direction(direction)
        x = x.to(self.device)
        with self.inference_mode():
            code = self.encode_style(reference, "B" if direction == "a2b" else "A")
            out = self.generate(x, direction, code)
        return out if num_samples == 1 else out[:, None].expand(-1, num_samples, -1, -1, -1).contiguous()

    def interpolate(
        self,
        x: torch.Tensor,
        style_from: torch.Tensor,
        style_to: torch.Tensor,
        steps: int = 8,
        direction: str = "a2b",
    ) -> torch.Tensor:
        """Translations of ``x`` (N x C x H x W) with codes on the line from ``style_from`` to
        ``style_to`` (each N x style_dim or 1 x style_dim), end points included.
        Returns N x steps x C' x H x W in [-1, 1] (a row per input for a grid)."""
        x = x.to(self.device)
        a = style_from.to(self.device, x.dtype).reshape(style_from.shape[0], -1)
        b = style_to.to(self.device, x.dtype).reshape(style_to.shape[0], -1)
        with self.inference_mode():
            outs = [
                self.generate(x, direction, torch.lerp(a, b, t)) for t in torch.linspace(0, 1, steps).tolist()
            ]
        return torch.stack(outs, 1)
