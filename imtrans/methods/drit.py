"""DRIT / DRIT++ (Lee et al., ECCV 2018 / IJCV 2020), as HsinYingLee/DRIT ``src/model.py`` trains it.

Disentangled representations for two unpaired domains: a content encoder ``enc_c`` (per-domain
branches + a shared block, noise in training), an attribute encoder ``enc_a`` (per domain;
concat=1: a Gaussian code, concat=0: deterministic), a generator ``gen`` (per-domain decoders),
image discriminators ``disA``/``disB`` (D1, on translations with encoded attributes) and
``disA2``/``disB2`` (D2, on translations with random attributes), and a content discriminator
``disContent`` that tells the domains' content codes apart. Networks: :mod:`imtrans.nets.drit`.

Batch (official ``half_size = 1``): sample 0 of each domain is the "encoded" image; samples
1..B-1 are only the real images for D2. With batch 1 the image serves both roles (warned).

Forward (one pass per full update, reused by every D and the E/G update):
c_a, c_b = E_c(a), E_c(b); z_a, z_b = E_a(a), E_a(b) (reparameterised when concat=1);
z_r (and z_r2 with mode seeking) ~ N(0, I); G_A decodes (c_b, z_a) -> u (translation),
(c_a, z_a) -> self-reconstruction, (c_b, z_r) [and (c_b, z_r2)] -> random translations,
batched in one call (likewise G_B); E_c and E_a re-encode the translations and decode them
back (cross cycle); E_a(random translations) gives the latent regression's mu.

Losses (weights from ``loss=drit``; D losses are sums over scales of per-element means):

- D: ``dis_a = BCE(D_A(u), 0) + BCE(D_A(a), 1)``, ``dis_a2`` on the random translations
  against samples 1.. (both random translations when mode seeking is on, summed),
  ``dis_content = BCE(D_c(c_a), 0) + BCE(D_c(c_b), 1)`` (lr / 2.5, grad-norm clip 5);
- E/G main (``gan_a``, ``gan_b`` 1; ``gan_content_a``/``_b`` 1 with target 0.5 for both domains;
  ``l1_cc_*`` cross-cycle 10, ``l1_self_*`` self-reconstruction 10; ``kl_za_*`` 0.01 = KL summed
  over elements (concat=0: mean of squares); ``kl_zc_*`` 0.01 = mean of squares of the content);
- second loss (``gan2_*`` D2 adversarial 1, ``z_l1_*`` latent regression |mu(E_a(G(c, z_r))) - z_r|
  10, ``ms_*`` mode seeking 1 / (mean|G(c, z_r2) - G(c, z_r)| / mean|z_r2 - z_r| + 1e-5), weight 1;
  ``loss=drit_no_ms`` sets the ``ms_*`` weights to 0, which also drops the 4th image).

Update schedule (``train.py``): loader step ``it`` (0-based within the epoch) does only a
content-D update (a fresh content forward, no gradients into E_c) when ``(it + 1) % d_iter != 0``
and ``it < len(loader) - 2``; otherwise the full update: disA, disA2, disB, disB2, disContent
(each its own optimizer, in that order), then E/G.

**The two-step E/G update** (``two_step_update: true``, default). Officially: backward of the
main loss, step ``enc_c``, ``enc_a`` and ``gen``; then a second backward (D2 adversarial +
latent regression + mode seeking) through the *same* forward graph and a second step of
``enc_c`` and ``gen`` only (each module keeps one Adam, whose state thus advances twice).
Current PyTorch rejects that second backward (its saved tensors were modified in place by the
first step). Here both gradient sets are taken before any step, at the pre-step parameters:
the second loss's gradients for (enc_c, gen) with ``torch.autograd.grad`` (retaining the graph),
then the main loss through ``manual_backward``; step (enc_c, enc_a, gen) with the first set,
then (enc_c, gen) with the second. Under DDP the second set bypasses DDP's hooks, so it is
all-reduced (averaged) explicitly. ``enc_a`` never receives the second loss's gradient (the
latent regression re-encodes with ``enc_a``'s parameters detached). ``two_step_update: false``
is the commonly posted fix: one backward of the sum, one step of the three.

Official details kept: no norm in the discriminators and LeakyReLU 0.01 (the
``'norm' == 'Instance'`` literal test); N(0, 0.02) init of Conv weights only (biases and Linear
layers keep PyTorch's init); 8 Adams (0.5, 0.999), weight decay 1e-4, lr 1e-4, content D 4e-5;
constant lr for ``n_ep_decay`` epochs then linear decay to ~0 at ``n_ep`` (``LinearDecay(600,
600, epoch_count=0)``, per epoch). Differences: BCE is computed from logits (stable; equal to
sigmoid + BCE except where the official clamps log at -100); the content-only step runs the
content encoder without a graph (same values); incomplete batches are not skipped; train.py's
500,000-full-update cap is not applied (use ``iters``); the content D takes other crop sizes
through ``content_dis_fit`` (exact at 209-240 px).
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_warn
from torch import nn
from torch.func import functional_call

from imtrans.methods.base import TranslationModule
from imtrans.methods.spec import DIRECTIONS, InferenceSpec, Style, Task, stride2_convs
from imtrans.nets.drit import (
    AttrEncoder,
    AttrEncoderConcat,
    ContentDis,
    ContentEncoder,
    GeneratorConcat,
    GeneratorMis,
    MultiScaleDis,
    drit_init,
)


# ---------------------------------------------------------------------------- loss helpers
def bce(logits: torch.Tensor, target: float | torch.Tensor) -> torch.Tensor:
    """Official sigmoid + BCE (mean over elements), from logits."""
    if not torch.is_tensor(target):
        target = torch.full_like(logits, float(target))
    return F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype))


def gan_bce(outs, target: float) -> torch.Tensor:
    """Sum over the discriminator's scales of the per-scale mean BCE."""
    return sum(bce(o, target) for o in outs)


def kl_sum(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) summed over every element (DRIT's form)."""
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


def l2_mean(x: torch.Tensor) -> torch.Tensor:
    """DRIT's ``_l2_regularize``: mean of squares."""
    return x.pow(2).mean()


def l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x - y).abs().mean()


def mode_seeking(f1, f2, z1, z2, eps: float = 1e-5) -> torch.Tensor:
    """DRIT++'s mode-seeking term: 1 / (mean|f2 - f1| / mean|z2 - z1| + eps)."""
    return 1.0 / (l1(f2, f1) / l1(z2, z1) + eps)


def allreduce_mean_(grads: list[torch.Tensor]) -> None:
    """Average gradients over the DDP processes in place (no-op in a single process)."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


# ---------------------------------------------------------------------------- shared machinery
class DritUpdates(TranslationModule):
    """What DRIT and multi-domain DRIT++ share: the content-only / full update schedule and the
    (faithful) two-step encoder/generator update. Subclasses provide ``content_terms(batch)``
    (or None when there is no content-only step), ``forward_pass(batch)``,
    ``discriminator_updates(f)``, ``main_terms(f)`` and ``second_terms(f)``."""

    is_multimodal = True
    #: optimizer names stepped by the main and by the second E/G loss
    main_group: tuple[str, ...] = ("enc_c", "enc_a", "gen")
    second_group: tuple[str, ...] = ("enc_c", "gen")

    def __init__(self, *, d_iter: int = 3, two_step_update: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.d_iter = int(d_iter)
        self.two_step_update = bool(two_step_update)
        self._warned_batch = False

    def _weight(self, name: str) -> float:
        return float(self.loss_weights.get(name, 0.0))

    # ------------------------------------------------------------------ schedule
    def is_full_update(self, batch_idx: int) -> bool:
        """Official: loader step ``it`` is content-only when ``(it + 1) % d_iter != 0`` and
        ``it < len(loader) - 2``."""
        if not self.has_content_step():
            return True
        if (batch_idx + 1) % self.d_iter == 0:
            return True
        n = self.trainer.num_training_batches if self._trainer is not None else math.inf
        return n != math.inf and batch_idx >= n - 2

    def has_content_step(self) -> bool:
        return True

    # ------------------------------------------------------------------ training
    def training_step(self, batch, batch_idx):
        if not self.is_full_update(batch_idx):
            loss = self.optimize(
                "disContent", lambda: self.weigh(self.content_terms(batch)), clip_norm=self.content_clip
            )
            self.log("train/D_content", loss, prog_bar=True)
            return
        f = self.forward_pass(batch)
        loss_D = self.discriminator_updates(f)
        loss_G = self.update_encoders_generator(f)
        self.log_dict({"train/G": loss_G, "train/D": loss_D}, prog_bar=True)

    content_clip: float = 5.0

    def update_encoders_generator(self, f: dict) -> torch.Tensor:
        """The official ``update_EG`` (see the module docstring); returns the detached total."""
        opts1 = [self.opt(n) for n in self.main_group]
        opts2 = [self.opt(n) for n in self.second_group]
        with self.toggled(*self.main_group):
            loss1 = self.weigh(self.main_terms(f))
            loss2 = self.weigh(self.second_terms(f))
            if not self.two_step_update:
                with self.update_scope(*self.main_group):
                    for opt in opts1:
                        opt.zero_grad(set_to_none=True)
                    self.manual_backward(loss1 + loss2)
                    for opt in opts1:
                        opt.step()
                return (loss1 + loss2).detach()
            params2 = [p for opt in opts2 for g in opt.param_groups for p in g["params"]]
            # The second update (own fp16 scaler) is open around the first, whose step
            # would otherwise invalidate the graph its gradients come from.
            with self.update_scope(*self.second_group) as second:
                grads2 = torch.autograd.grad(
                    second.scale(loss2), params2, retain_graph=True, allow_unused=True
                )
                grads2 = [torch.zeros_like(p) if g is None else g for p, g in zip(params2, grads2)]
                with self.update_scope(*self.main_group):
                    for opt in opts1:
                        opt.zero_grad(set_to_none=True)
                    self.manual_backward(loss1)
                    for opt in opts1:
                        opt.step()
                allreduce_mean_(grads2)
                for opt in opts2:
                    opt.zero_grad(set_to_none=True)
                for p, g in zip(params2, grads2):
                    p.grad = g
                for opt in opts2:
                    opt.step()
        return (loss1 + loss2).detach()

    def _halves(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(encoded, random) parts of a batch: sample 0 and samples 1.. (official half_size 1)."""
        if x.shape[0] == 1:
            if not self._warned_batch:
                rank_zero_warn(
                    f"{type(self).__name__} expects batch 2 (official); with batch 1 the image serves both halves"
                )
                self._warned_batch = True
            return x, x
        return x[:1], x[1:]

    @staticmethod
    def reparameterise(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return mu + torch.randn_like(mu) * logvar.mul(0.5).exp()


# ---------------------------------------------------------------------------- DRIT
class DRIT(DritUpdates):
    """DRIT / DRIT++ for two domains (see the module docstring).

    Args:
        input_nc, output_nc: channels of domains A and B.
        nz: attribute size (8).
        concat: True: ``E_attr_concat`` + ``G_concat`` (official default); False: ``E_attr`` +
            ``G`` (feature-wise transform; the README's choice for cat2dog and portrait).
        dim: base width of the encoders and generator (64; content has 4 * dim channels).
        mlp_dim: hidden width of G's MLP (concat=0; 256).
        dis_dim, dis_scale, dis_n_layer: image discriminators (64, 3 scales, 4 layers).
        content_dis_fit: ``auto`` | ``exact`` | ``resize`` (see :class:`imtrans.nets.drit.ContentDis`).
        d_iter: one full update every ``d_iter`` loader steps, content-D-only updates between (3).
        two_step_update: the official two-step E/G update (True) or one step (False).
    """

    directions = ("a2b", "b2a")

    def __init__(
        self,
        input_nc: int = 3,
        output_nc: int = 3,
        nz: int = 8,
        concat: bool = True,
        dim: int = 64,
        mlp_dim: int = 256,
        dis_dim: int = 64,
        dis_scale: int = 3,
        dis_n_layer: int = 4,
        content_dis_fit: str = "auto",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.nz, self.concat = int(nz), bool(concat)
        self.enc_c = drit_init(ContentEncoder(input_nc, output_nc, dim))
        if self.concat:
            self.enc_a = drit_init(AttrEncoderConcat(input_nc, output_nc, nz, dim))
            self.gen = drit_init(GeneratorConcat(input_nc, output_nc, nz, dim))
        else:
            self.enc_a = drit_init(AttrEncoder(input_nc, output_nc, nz, dim))
            self.gen = drit_init(GeneratorMis(input_nc, output_nc, nz, dim, mlp_dim))
        self.disA = drit_init(MultiScaleDis(input_nc, dis_scale, dis_n_layer, dis_dim))
        self.disB = drit_init(MultiScaleDis(output_nc, dis_scale, dis_n_layer, dis_dim))
        self.disA2 = drit_init(MultiScaleDis(input_nc, dis_scale, dis_n_layer, dis_dim))
        self.disB2 = drit_init(MultiScaleDis(output_nc, dis_scale, dis_n_layer, dis_dim))
        self.disContent = drit_init(ContentDis(4 * dim, 1, content_dis_fit))
        self.mode_seeking = self._weight("ms_ab") > 0 or self._weight("ms_ba") > 0

    # ------------------------------------------------------------------ contract
    def optimizer_groups(self):
        return {
            name: getattr(self, name).parameters()
            for name in ("disA", "disB", "disA2", "disB2", "disContent", "enc_c", "enc_a", "gen")
        }

    def generator_modules(self):
        return {"enc_c": self.enc_c, "enc_a": self.enc_a, "gen": self.gen}

    # ------------------------------------------------------------------ encoders
    def _attr(self, x: torch.Tensor, domain: str):
        """(z, mu, logvar) of images of ``domain``; concat=0: (code, None, None)."""
        out = (self.enc_a.forward_a if domain == "A" else self.enc_a.forward_b)(x)
        if not self.enc_a.stochastic:
            return out, None, None
        mu, logvar = out
        return self.reparameterise(mu, logvar), mu, logvar

    def _attr_mean_detached(self, x: torch.Tensor, domain: str) -> torch.Tensor:
        """mu (concat=1) or the code (concat=0) of ``x`` with ``enc_a``'s parameters detached:
        the latent regression's gradient reaches the images (G, E_c) but never E_a."""
        branch = self.enc_a.branch_a if domain == "A" else self.enc_a.branch_b
        out = functional_call(branch, {k: v.detach() for k, v in branch.named_parameters()}, (x,))
        return out[0] if self.enc_a.stochastic else out

    # ------------------------------------------------------------------ forward
    def content_terms(self, batch) -> dict[str, torch.Tensor]:
        """Content-only step: content codes of the encoded halves (no graph), D_c loss."""
        with torch.no_grad():
            c_a = self.enc_c.forward_a(self._halves(batch["A"])[0])
            c_b = self.enc_c.forward_b(self._halves(batch["B"])[0])
        return {"dis_content": self.content_d_loss(c_a, c_b)}

    def content_d_loss(self, c_a, c_b):
        # not through discriminate: the content discriminator sees codes, not images
        return bce(self.disContent(c_a), 0.0) + bce(self.disContent(c_b), 1.0)

    def forward_pass(self, batch) -> dict[str, torch.Tensor]:
        """The official ``forward()`` (see the module docstring)."""
        A_enc, A_rand = self._halves(batch["A"])
        B_enc, B_rand = self._halves(batch["B"])
        h = A_enc.shape[0]
        c_a, c_b = self.enc_c.forward_a(A_enc), self.enc_c.forward_b(B_enc)
        z_a, mu_a, logvar_a = self._attr(A_enc, "A")
        z_b, mu_b, logvar_b = self._attr(B_enc, "B")
        z_r = torch.randn(h, self.nz, device=A_enc.device, dtype=A_enc.dtype)
        zs = [z_r]
        if self.mode_seeking:
            zs.append(torch.randn_like(z_r))
        k = 2 + len(zs)
        outA = self.gen.forward_a(torch.cat([c_b, c_a, *[c_b] * len(zs)]), torch.cat([z_a, z_a, *zs])).split(
            h
        )
        outB = self.gen.forward_b(torch.cat([c_a, c_b, *[c_a] * len(zs)]), torch.cat([z_b, z_b, *zs])).split(
            h
        )
        assert len(outA) == k
        f = dict(
            A_enc=A_enc, A_rand=A_rand, B_enc=B_enc, B_rand=B_rand, c_a=c_a, c_b=c_b,
            z_a=z_a, z_b=z_b, mu_a=mu_a, mu_b=mu_b, logvar_a=logvar_a, logvar_b=logvar_b, z_r=z_r,
            fake_A=outA[0], fake_AA=outA[1], fake_A_rand=outA[2],
            fake_B=outB[0], fake_BB=outB[1], fake_B_rand=outB[2],
        )  # fmt: skip
        if self.mode_seeking:
            f.update(z_r2=zs[1], fake_A_rand2=outA[3], fake_B_rand2=outB[3])
        # cross cycle: re-encode the translations (content of u is b's, of v is a's)
        c_b_rec, c_a_rec = self.enc_c.forward_a(f["fake_A"]), self.enc_c.forward_b(f["fake_B"])
        z_a_rec, _, _ = self._attr(f["fake_A"], "A")
        z_b_rec, _, _ = self._attr(f["fake_B"], "B")
        f["fake_A_recon"] = self.gen.forward_a(c_a_rec, z_a_rec)
        f["fake_B_recon"] = self.gen.forward_b(c_b_rec, z_b_rec)
        # latent regression
        f["mu2_a"] = self._attr_mean_detached(f["fake_A_rand"], "A")
        f["mu2_b"] = self._attr_mean_detached(f["fake_B_rand"], "B")
        return f

    # ------------------------------------------------------------------ losses
    def image_d_loss(self, disc: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        fake_scores = self.discriminate(disc, fake.detach())
        return gan_bce(fake_scores, 0.0) + gan_bce(self.discriminate(disc, real, real=True), 1.0)

    def discriminator_updates(self, f) -> torch.Tensor:
        """disA, disA2, disB, disB2, disContent, in the official order, each its own step."""
        losses = []

        def d2(disc, real, key):
            loss = self.image_d_loss(disc, real, f[key])
            if self.mode_seeking:
                loss = loss + self.image_d_loss(disc, real, f[key + "2"])
            return loss

        losses.append(
            self.optimize(
                "disA", lambda: self.weigh({"dis_a": self.image_d_loss(self.disA, f["A_enc"], f["fake_A"])})
            )
        )
        losses.append(
            self.optimize("disA2", lambda: self.weigh({"dis_a2": d2(self.disA2, f["A_rand"], "fake_A_rand")}))
        )
        losses.append(
            self.optimize(
                "disB", lambda: self.weigh({"dis_b": self.image_d_loss(self.disB, f["B_enc"], f["fake_B"])})
            )
        )
        losses.append(
            self.optimize("disB2", lambda: self.weigh({"dis_b2": d2(self.disB2, f["B_rand"], "fake_B_rand")}))
        )
        losses.append(
            self.optimize(
                "disContent",
                lambda: self.weigh(
                    {"dis_content": self.content_d_loss(f["c_a"].detach(), f["c_b"].detach())}
                ),
                clip_norm=self.content_clip,
            )
        )
        return torch.stack(losses).sum()

    def main_terms(self, f) -> dict[str, torch.Tensor]:
        """``backward_EG``'s terms (unweighted)."""
        if self.enc_a.stochastic:
            kl_a, kl_b = kl_sum(f["mu_a"], f["logvar_a"]), kl_sum(f["mu_b"], f["logvar_b"])
        else:
            kl_a, kl_b = l2_mean(f["z_a"]), l2_mean(f["z_b"])
        return {
            # the content discriminator sees codes, not images: not augmented
            "gan_content_a": bce(self.disContent(f["c_a"]), 0.5),
            "gan_content_b": bce(self.disContent(f["c_b"]), 0.5),
            "gan_a": gan_bce(self.discriminate(self.disA, f["fake_A"]), 1.0),
            "gan_b": gan_bce(self.discriminate(self.disB, f["fake_B"]), 1.0),
            "kl_za_a": kl_a,
            "kl_za_b": kl_b,
            "kl_zc_a": l2_mean(f["c_a"]),
            "kl_zc_b": l2_mean(f["c_b"]),
            "l1_cc_a": l1(f["fake_A_recon"], f["A_enc"]),
            "l1_cc_b": l1(f["fake_B_recon"], f["B_enc"]),
            "l1_self_a": l1(f["fake_AA"], f["A_enc"]),
            "l1_self_b": l1(f["fake_BB"], f["B_enc"]),
        }

    def second_terms(self, f) -> dict[str, torch.Tensor]:
        """``backward_G_alone``'s terms (unweighted)."""
        gan2_a = gan_bce(self.discriminate(self.disA2, f["fake_A_rand"]), 1.0)
        gan2_b = gan_bce(self.discriminate(self.disB2, f["fake_B_rand"]), 1.0)
        terms = {}
        if self.mode_seeking:
            gan2_a = gan2_a + gan_bce(self.discriminate(self.disA2, f["fake_A_rand2"]), 1.0)
            gan2_b = gan2_b + gan_bce(self.discriminate(self.disB2, f["fake_B_rand2"]), 1.0)
            terms["ms_ab"] = mode_seeking(f["fake_B_rand"], f["fake_B_rand2"], f["z_r"], f["z_r2"])
            terms["ms_ba"] = mode_seeking(f["fake_A_rand"], f["fake_A_rand2"], f["z_r"], f["z_r2"])
        return {
            "gan2_a": gan2_a,
            "gan2_b": gan2_b,
            "z_l1_a": l1(f["mu2_a"], f["z_r"]),
            "z_l1_b": l1(f["mu2_b"], f["z_r"]),
            **terms,
        }

    # ------------------------------------------------------------------ inference
    def sample_z(self, n: int, like: torch.Tensor) -> torch.Tensor:
        return torch.randn(n, self.nz, device=like.device, dtype=like.dtype)

    def encode_style(self, images: torch.Tensor, domain: str) -> torch.Tensor:
        """Attribute codes N x nz of images of ``domain`` (``A``/``B``): the encoder's mean
        (concat=1; no sampling, so example-guided output is deterministic) or its code."""
        images = images.to(self.device)
        out = (self.enc_a.forward_a if domain.upper() == "A" else self.enc_a.forward_b)(images)
        return out[0] if self.enc_a.stochastic else out

    def inference_spec(self) -> InferenceSpec:
        """Both directions; N(0, I) attribute codes (nz), reference images of the target domain
        encoded into them."""
        return replace(
            super().inference_spec(),
            samples=True,
            style=Style(self.nz, encodable=True),
            reference=True,
            # the content path down-samples (one domain branch) and the generator up-samples
            # back; the attribute encoder pools adaptively, so it sets no multiple
            size_multiple=2 ** stride2_convs(self.enc_c.conv_a),
        )

    def encode_reference(self, images: torch.Tensor, task: Task) -> torch.Tensor:
        return self.encode_style(images, task.target)

    def generate(self, x, direction, style=None):
        if direction == "a2b":
            content, decode = self.enc_c.forward_a(x), self.gen.forward_b
        else:
            content, decode = self.enc_c.forward_b(x), self.gen.forward_a
        z = (
            self.sample_z(x.shape[0], x)
            if style is None
            else style.to(x).reshape(-1, self.nz).expand(x.shape[0], -1)
        )
        return decode(content, z)

    def translate(self, x, direction="a2b", *, style=None, reference=None, num_samples=1):
        """As ``TranslationModule.translate``. ``reference``: N or 1 images of the target domain
        whose attribute (the encoder's mean) is used for every sample (example-guided)."""
        if reference is not None:
            self.check_direction(direction)
            with self.inference_mode():
                style = self.encode_style(reference, DIRECTIONS[direction][1])
        return super().translate(x, direction, style=style, num_samples=num_samples)
