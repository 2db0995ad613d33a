"""Multi-domain DRIT++ (Lee et al., IJCV 2020), as HsinYingLee/MDMM ``model.py`` (``MD_multi``) trains it.

One content encoder, one attribute encoder and one generator shared by all domains, the
attribute encoder and generator conditioned on a one-hot domain code c; two single-scale
discriminators (``dis1`` on translations with encoded attributes, ``dis2`` with random ones),
each with a domain-classification head; an optional content discriminator that classifies the
domain of a content code (``content_dis``, MDMM's ``--isDcontent``, off by default).

Data: folder-per-domain batches ``{"image", "domain"}`` (``data=domains``, ``data=afhq``). A batch
of 2k images is split in halves "A" and "B" (official: batch 2, one image each, any domains);
with batch 1 the image serves both halves (warned).

Forward: c = E_c(x), z = E_a(x, c_org) (reparameterised); translations u_A = G(c_B, z_A, c_A)
(content of the other half, attribute and domain of this half), self-reconstructions
G(c_A, z_A, c_A), random translations G(c_B, z_r, c_A); cross cycle through E_c, E_a and G again.

Losses (``loss=drit_multi``): D: ``dis1 = BCE(D1(u), 0) + BCE(D1(x), 1)`` summed over its
output, ``dis1_cls = BCE-with-logits(cls(x), c_org)`` (lambda_cls 1), same for dis2 on the random
translations. E/G main: ``gan`` 1, ``gan_cls`` 5 (lambda_cls_G; the translations must be
classified as their target domain), ``l1_self`` 10, ``l1_cc`` 10 (lambda_rec), ``kl_zc`` 0.01 (mean
square), ``kl_za`` 0.01 (KL summed), ``gan_content`` 1 (BCE(D_c(c), 1 - c_org), only with the content
D). Second loss (enc_c and gen only, the same two-step update as :mod:`imtrans.methods.drit`):
``gan2`` 1, ``gan2_cls`` 5, ``z_l1_a``/``z_l1_b`` 10. With the content D: content-only updates
(classification, grad-norm clip 5, lr / 2.5) on the loader steps between full updates
(``d_iter``); without it every step is a full update, as in MDMM. The full update does not
step the content D (MDMM's ``update_D`` leaves it out).

Inference: ``translate(x, target_domain=k, style=None, reference=None, num_samples=1)``.
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F
from torch.func import functional_call

from imtrans.methods.drit import DritUpdates, bce, gan_bce, kl_sum, l1, l2_mean
from imtrans.methods.spec import InferenceSpec, Style, Task, domain_tasks, stride2_convs
from imtrans.nets.drit import (
    ContentDis,
    MultiAttrEncoder,
    MultiContentEncoder,
    MultiDomainDis,
    MultiGenerator,
    drit_init,
)


class DRITMulti(DritUpdates):
    """Multi-domain DRIT++.

    Args:
        num_domains: number of domains (the one-hot code size; 3 officially).
        input_nc: channels of every domain; nz: attribute size (8); concat: as DRIT.
        image_size: training crop (sets the classification kernel, image_size / 64).
        dim, mlp_dim, dis_dim, dis_n_layer: widths and discriminator depth (64, 256, 64, 6).
        content_dis: use the content discriminator (MDMM ``--isDcontent``).
        content_dis_fit: as DRIT's.
    """

    directions: tuple[str, ...] = ()

    def __init__(
        self,
        num_domains: int = 3,
        input_nc: int = 3,
        nz: int = 8,
        concat: bool = True,
        image_size: int = 216,
        dim: int = 64,
        mlp_dim: int = 256,
        dis_dim: int = 64,
        dis_n_layer: int = 6,
        content_dis: bool = False,
        content_dis_fit: str = "auto",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_domains, self.nz, self.input_nc = int(num_domains), int(nz), int(input_nc)
        self.enc_c = drit_init(MultiContentEncoder(input_nc, dim))
        self.enc_a = drit_init(MultiAttrEncoder(input_nc, nz, num_domains, dim, concat))
        self.gen = drit_init(MultiGenerator(input_nc, nz, num_domains, dim, concat, mlp_dim))
        self.dis1 = drit_init(MultiDomainDis(input_nc, num_domains, image_size, dis_dim, dis_n_layer))
        self.dis2 = drit_init(MultiDomainDis(input_nc, num_domains, image_size, dis_dim, dis_n_layer))
        self.disContent = (
            drit_init(ContentDis(4 * dim, num_domains, content_dis_fit)) if content_dis else None
        )

    def has_content_step(self) -> bool:
        return self.disContent is not None

    def optimizer_groups(self):
        names = ["dis1", "dis2", "enc_c", "enc_a", "gen"] + (
            ["disContent"] if self.disContent is not None else []
        )
        return {n: getattr(self, n).parameters() for n in names}

    def generator_modules(self):
        return {"enc_c": self.enc_c, "enc_a": self.enc_a, "gen": self.gen}

    # ------------------------------------------------------------------ helpers
    def one_hot(self, domain: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        domain = torch.as_tensor(domain, device=like.device).long().reshape(-1)
        if (domain < 0).any() or (domain >= self.num_domains).any():
            raise ValueError(
                f"domain indices {domain.tolist()} outside 0..{self.num_domains - 1}: set model.num_domains"
            )
        return F.one_hot(domain, self.num_domains).to(like.dtype)

    def _split(self, batch):
        x, c = batch["image"], self.one_hot(batch["domain"], batch["image"])
        if x.shape[0] == 1:
            self._halves(x)  # warns once
            return x, x, c, c
        h = x.shape[0] // 2
        return x[:h], x[h : 2 * h], c[:h], c[h : 2 * h]

    def _attr(self, x, c):
        out = self.enc_a(x, c)
        if not self.enc_a.stochastic:
            return out, None, None
        mu, logvar = out
        return self.reparameterise(mu, logvar), mu, logvar

    # ------------------------------------------------------------------ forward
    def content_terms(self, batch):
        with torch.no_grad():
            content = self.enc_c(batch["image"])
        # not through discriminate: the content discriminator sees codes, not images
        return {"dis_content": bce(self.disContent(content), self.one_hot(batch["domain"], content))}

    def forward_pass(self, batch):
        xa, xb, ca, cb = self._split(batch)
        h = xa.shape[0]
        real, c_org = torch.cat([xa, xb]), torch.cat([ca, cb])
        content = self.enc_c(real)
        c_a, c_b = content.split(h)
        z, mu, logvar = self._attr(real, c_org)
        z_a, z_b = z.split(h)
        z_r = torch.randn(h, self.nz, device=xa.device, dtype=xa.dtype)
        fa = self.gen(torch.cat([c_b, c_a, c_b]), torch.cat([z_a, z_a, z_r]), torch.cat([ca, ca, ca])).split(
            h
        )
        fb = self.gen(torch.cat([c_a, c_b, c_a]), torch.cat([z_b, z_b, z_r]), torch.cat([cb, cb, cb])).split(
            h
        )
        fake_enc, fake_rand = torch.cat([fa[0], fb[0]]), torch.cat([fa[2], fb[2]])
        c_b_rec, c_a_rec = self.enc_c(fake_enc).split(h)
        z_rec, _, _ = self._attr(fake_enc, c_org)
        z_a_rec, z_b_rec = z_rec.split(h)
        recon = torch.cat([self.gen(c_a_rec, z_a_rec, ca), self.gen(c_b_rec, z_b_rec, cb)])
        frozen = {k: v.detach() for k, v in self.enc_a.named_parameters()}
        mu2 = functional_call(self.enc_a, frozen, (fake_rand, c_org))
        mu2 = mu2[0] if self.enc_a.stochastic else mu2
        return dict(
            real=real, c_org=c_org, content=content, z=z, mu=mu, logvar=logvar, z_r=z_r,
            fake_enc=fake_enc, fake_rand=fake_rand, self_rec=torch.cat([fa[1], fb[1]]), recon=recon,
            mu2_a=mu2[:h], mu2_b=mu2[h:],
        )  # fmt: skip

    # ------------------------------------------------------------------ losses
    def discriminator_updates(self, f):
        def d_terms(name, fake):
            disc = getattr(self, name)
            outs_fake, _ = self.discriminate(disc, fake.detach())
            # (scores per scale, domain logits): r_t counts the real/fake scores only
            outs_real, cls_real = self.discriminate(disc, f["real"], real=True, scores=lambda out: out[0])
            return {
                name: gan_bce(outs_fake, 0.0) + gan_bce(outs_real, 1.0),
                f"{name}_cls": bce(cls_real, f["c_org"]),
            }

        l1_ = self.optimize("dis1", lambda: self.weigh(d_terms("dis1", f["fake_enc"])))
        l2_ = self.optimize("dis2", lambda: self.weigh(d_terms("dis2", f["fake_rand"])))
        return l1_ + l2_

    def main_terms(self, f):
        outs, cls = self.discriminate(self.dis1, f["fake_enc"])
        kl_za = kl_sum(f["mu"], f["logvar"]) if self.enc_a.stochastic else l2_mean(f["z"])
        terms = {
            "gan": gan_bce(outs, 1.0),
            "gan_cls": bce(cls, f["c_org"]),
            "l1_self": l1(f["real"], f["self_rec"]),
            "l1_cc": l1(f["real"], f["recon"]),
            "kl_zc": l2_mean(f["content"]),
            "kl_za": kl_za,
        }
        if self.disContent is not None:
            # codes, not images: not augmented
            terms["gan_content"] = bce(self.disContent(f["content"]), 1 - f["c_org"])
        return terms

    def second_terms(self, f):
        outs, cls = self.discriminate(self.dis2, f["fake_rand"])
        return {
            "gan2": gan_bce(outs, 1.0),
            "gan2_cls": bce(cls, f["c_org"]),
            "z_l1_a": l1(f["mu2_a"], f["z_r"]),
            "z_l1_b": l1(f["mu2_b"], f["z_r"]),
        }

    # ------------------------------------------------------------------ inference
    def inference_spec(self) -> InferenceSpec:
        """One task per target domain (named as the training data's folders); N(0, I) attribute
        codes (nz) and reference images of the target domain encoded into them."""
        names = self.domain_names(self.num_domains)
        return replace(
            super().inference_spec(),
            tasks=domain_tasks(names, self.input_nc),
            domains=names,
            samples=True,
            style=Style(self.nz, encodable=True),
            reference=True,
            # the content path down-samples and the generator up-samples back; the attribute
            # encoder pools adaptively, so it sets no multiple
            size_multiple=2 ** stride2_convs(self.enc_c),
        )

    def encode_reference(self, images: torch.Tensor, task: Task) -> torch.Tensor:
        return self.encode_style(images, task.call["target_domain"])

    def encode_style(self, images: torch.Tensor, domain) -> torch.Tensor:
        """Attribute codes (the encoder's mean) of images of domain index ``domain``."""
        images = images.to(self.device)
        c = self.one_hot(
            torch.as_tensor(domain).expand(images.shape[0]) if torch.as_tensor(domain).dim() == 0 else domain,
            images,
        )
        out = self.enc_a(images, c)
        return out[0] if self.enc_a.stochastic else out

    def generate(self, x, target_domain, style=None):
        c = self.one_hot(
            torch.as_tensor(target_domain).expand(x.shape[0])
            if torch.as_tensor(target_domain).dim() == 0
            else target_domain,
            x,
        )
        z = (
            torch.randn(x.shape[0], self.nz, device=x.device, dtype=x.dtype)
            if style is None
            else style.to(x).reshape(-1, self.nz).expand(x.shape[0], -1)
        )
        return self.gen(self.enc_c(x), z, c)

    def translate(self, x, direction=None, *, target_domain=None, style=None, reference=None, num_samples=1):
        """Translate ``x`` (N x C x H x W in [-1, 1]) into domain ``target_domain`` (an index, or
        N indices). ``style``: N x nz codes; ``reference``: N or 1 images of the target domain
        whose attribute is used; else random codes, one per sample. Returns N x C x H x W
        (``num_samples`` 1) or N x S x C x H x W."""
        if target_domain is None:
            target_domain = direction
        if target_domain is None:
            raise ValueError("DRITMulti.translate needs target_domain=<domain index>")
        x = x.to(self.device)
        with self.inference_mode():
            if reference is not None:
                style = self.encode_style(
                    reference,
                    target_domain if torch.as_tensor(target_domain).dim() == 0 else target_domain[:1],
                )
            outs = [self.generate(x, target_domain, style) for _ in range(num_samples)]
        return outs[0] if num_samples == 1 else torch.stack(outs, 1)

    def sample_grid(self, batch: dict, num_samples: int = 1) -> torch.Tensor:
        """The training sample grid of ``batch`` (``{"image": N x C x H x W in [-1, 1],
        "domain": N}``) as uint8 3 x H' x W', titled: kept for callers of the former hook; the
        grid itself is the generic one the ``SampleGrid`` callback draws from the spec
        (:func:`imtrans.callbacks.images.translation_grid`)."""
        from imtrans.callbacks.images import translation_grid

        return translation_grid(self, batch, num_samples)

    def _evaluate(self, batch, stage):
        """No paired targets in folder-per-domain data; FID/KID come from the callbacks."""
        return None
