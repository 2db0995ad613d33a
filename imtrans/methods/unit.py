"""UNIT v2 (Liu et al., NeurIPS 2017, as re-implemented in NVlabs/MUNIT ``UNIT_Trainer``).

Per domain a "reduced VAE" ``gen_a``/``gen_b`` (:class:`imtrans.nets.VAEGen`: MUNIT's content
encoder and decoder, InstanceNorm residual blocks in the decoder) and a 3-scale LSGAN
discriminator. The encoder output h is the mean of a unit-variance Gaussian: training decodes
h + n with n ~ N(0, I), the KL term reduces to mean(h^2), inference decodes h itself.
There is no weight sharing between the two auto-encoders (the 2017 code's shared layers are
not part of v2): the shared latent space comes only from the cycle and KL-cycle terms.

One iteration, official order:

1. D step on x_ba = dec_a(h_b + n_b), x_ab = dec_b(h_a + n_a), detached (as MUNIT).
2. G step (D frozen), with the *same* noise n_a for the reconstruction and the translation:

   - ``gan_a``/``gan_b``: LSGAN on x_ba / x_ab;
   - ``recon_x_a = |dec_a(h_a + n_a) - x_a|``; ``kl_a = mean(h_a^2)``;
   - ``cyc_x_a = |dec_a(h_a' + n') - x_a|`` with h_a' = enc_b(x_ab) (the *other* domain's
     encoder) and fresh noise n'; ``kl_cyc_a = mean(h_a'^2)``;
   - ``vgg_a``/``vgg_b``: the optional domain-invariant perceptual loss (as MUNIT).

Official weights (mingyuliutw/UNIT ``unit_summer2winter_yosemite256_folder.yaml``): gan 1,
recon_x 10, recon_kl 0.01, recon_x_cyc 10, recon_kl_cyc 0.01, vgg 0. The official code always
evaluates the cycle (and crashes with recon_x_cyc_w 0); here the cycle pass is skipped when
both its weights are 0.

``reuse_translations`` (default true) works as in MUNIT: the G forward runs once before the
D step and the D step uses its translations (the same noise draw instead of a fresh one);
``false`` is the official behaviour (the D step draws its own noise). Optimiser, schedule and
init: as MUNIT.
"""

from __future__ import annotations

import torch

from imtrans.methods.munit import TwoDomainAutoEncoderGAN, _l1


def _kl(mu: torch.Tensor) -> torch.Tensor:
    """The official "KL" of a unit-variance Gaussian with mean ``mu``: mean(mu^2)."""
    return mu.pow(2).mean()


class UNIT(TwoDomainAutoEncoderGAN):
    """Unpaired, deterministic at inference (decodes the mean), both directions."""

    def forward_pass(self, real_A, real_B):
        """The official ``gen_update`` forward; decoder A decodes the reconstruction of A and
        the translation B->A in one batched call (per-sample normalisations: same values)."""
        na, nb = real_A.shape[0], real_B.shape[0]
        h_a, h_b = self.gen_a.encode(real_A), self.gen_b.encode(real_B)
        z_a = h_a + torch.randn_like(h_a)  # one draw serves reconstruction and translation
        z_b = h_b + torch.randn_like(h_b)
        rec_A, fake_A = self.gen_a.decode(torch.cat([z_a, z_b])).split([na, nb])
        rec_B, fake_B = self.gen_b.decode(torch.cat([z_b, z_a])).split([nb, na])
        fwd = dict(h_a=h_a, h_b=h_b, rec_A=rec_A, rec_B=rec_B, fake_A=fake_A, fake_B=fake_B)
        if any(self._weight(k) > 0 for k in ("cyc_x_a", "cyc_x_b", "kl_cyc_a", "kl_cyc_b")):
            h_b_recon = self.gen_a.encode(fake_A)  # B content re-encoded by A's encoder
            h_a_recon = self.gen_b.encode(fake_B)
            fwd.update(h_a_recon=h_a_recon, h_b_recon=h_b_recon)
            fwd["cyc_A"] = self.gen_a.decode(h_a_recon + torch.randn_like(h_a_recon))
            fwd["cyc_B"] = self.gen_b.decode(h_b_recon + torch.randn_like(h_b_recon))
        return fwd

    def cross_translations(self, real_A, real_B):
        """The official ``dis_update`` forward: (x_ba, x_ab) with its own noise draw."""
        h_a, h_b = self.gen_a.encode(real_A), self.gen_b.encode(real_B)
        fake_A = self.gen_a.decode(h_b + torch.randn_like(h_b))
        fake_B = self.gen_b.decode(h_a + torch.randn_like(h_a))
        return fake_A, fake_B

    def generator_terms(self, real_A, real_B, fwd):
        terms = {
            "recon_x_a": _l1(fwd["rec_A"], real_A),
            "recon_x_b": _l1(fwd["rec_B"], real_B),
            "kl_a": _kl(fwd["h_a"]),
            "kl_b": _kl(fwd["h_b"]),
        }
        if "cyc_A" in fwd:
            terms.update(
                cyc_x_a=_l1(fwd["cyc_A"], real_A),
                cyc_x_b=_l1(fwd["cyc_B"], real_B),
                kl_cyc_a=_kl(fwd["h_a_recon"]),
                kl_cyc_b=_kl(fwd["h_b_recon"]),
            )
        return terms

    def generate(self, x, direction, style=None):
        """x N x C x H x W in [-1, 1] -> N x C' x H x W in [-1, 1]: the target decoder on the
        source encoder's mean (no noise, as the official ``forward``/``sample``)."""
        if direction == "a2b":
            return self.gen_b.decode(self.gen_a.encode(x))
        return self.gen_a.decode(self.gen_b.encode(x))
