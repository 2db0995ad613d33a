"""BicycleGAN (Zhu et al., NeurIPS 2017), as junyanz/BicycleGAN trains it.

Multimodal paired translation: G(A, z) with a latent code z tied to the output both ways.
A batch of 2k pairs is split in halves:

- cVAE-GAN (first half): z = mu + eps * exp(logvar / 2) with (mu, logvar) = E(B1);
  fake_enc = G(A1, z) must reconstruct B1 (L1 x 10) and fool D; KL(N(mu, var) || N(0, I))
  summed x 0.01 keeps the codes Gaussian.
- cLR-GAN: fake_rand = G(A1, z_rand) with z_rand ~ N(0, I) must fool D2, judged against
  the *second* half's real B2; E(fake_rand)'s mu must recover z_rand (L1 x 0.5), and that
  latent regression updates G only.

One iteration (official ``optimize_parameters``): one forward; G and E step together on
GAN + GAN2 + L1 + KL + z-L1, where the z-L1 term reaches G but not E; then D (fake_enc vs B1)
and D2 (fake_rand vs B2) on the same fakes, detached. LSGAN summed over the two D scales,
D loss fake + real (not halved). Four Adam optimizers (G, E, D, D2), xavier-normal init
with gain 0.02.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_warn
from torch import nn
from torch.func import functional_call

from imtrans.errors import ConfigError
from imtrans.losses import GANLoss
from imtrans.methods.base import TranslationModule
from imtrans.methods.spec import InferenceSpec, Style, Task
from imtrans.nets import init_weights


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) summed over batch and dimensions (BicycleGAN's form)."""
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


class BicycleGAN(TranslationModule):
    """Paired, multimodal, A -> B.

    Args:
        generator: factory ``(input_nc, output_nc, nz) -> nn.Module`` with ``forward(x, z)``.
        discriminator: factory ``(input_nc) -> nn.Module`` returning a list of score maps;
            called twice (D for cVAE-GAN, D2 for cLR-GAN), on B images only (unconditional).
        encoder: factory ``(input_nc, nz) -> nn.Module`` returning ``(mu, logvar)``.
        input_nc, output_nc: channels of A and B; nz: latent size (8).
        init_type, init_gain: initialisation of every network (xavier, 0.02).
    """

    is_multimodal = True
    directions = ("a2b",)

    def __init__(
        self,
        generator: Callable[..., nn.Module],
        discriminator: Callable[..., nn.Module],
        encoder: Callable[..., nn.Module],
        input_nc: int = 3,
        output_nc: int = 3,
        nz: int = 8,
        init_type: str = "xavier",
        init_gain: float = 0.02,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.nz = nz
        self.G = init_weights(generator(input_nc=input_nc, output_nc=output_nc, nz=nz), init_type, init_gain)
        self.E = init_weights(encoder(input_nc=output_nc, nz=nz), init_type, init_gain)
        self.D = init_weights(discriminator(input_nc=output_nc), init_type, init_gain)
        self.D2 = init_weights(discriminator(input_nc=output_nc), init_type, init_gain)
        self.gan = GANLoss(self.loss_cfg.get("gan_mode", "lsgan"))
        self._warned_batch = False

    def optimizer_groups(self):
        return {
            "G": self.G.parameters(),
            "E": self.E.parameters(),
            "D": self.D.parameters(),
            "D2": self.D2.parameters(),
        }

    def generator_modules(self):
        return {"G": self.G, "E": self.E}

    # ------------------------------------------------------------------ inference
    def sample_z(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.nz, device=self.device)

    def generate(self, x, direction, style=None):
        return self.G(x, self.sample_z(x.shape[0]) if style is None else style.to(x))

    def inference_spec(self) -> InferenceSpec:
        """a2b; N(0, I) latent codes (nz); reference images of B encoded by E (its mean). E pools
        with a fixed window: references must have the training size (the tools resize them)."""
        return replace(
            super().inference_spec(), samples=True, style=Style(self.nz, encodable=True), reference=True
        )

    def encode_reference(self, images: torch.Tensor, task: Task) -> torch.Tensor:
        return self.encode(images.to(self.device))

    def encode(self, b: torch.Tensor) -> torch.Tensor:
        """The code of image(s) b (N x output_nc x H x W): the encoder's mean (no sampling)."""
        return self.E(b)[0]

    def translate(self, x, direction="a2b", *, style=None, reference=None, num_samples=1):
        """As ``TranslationModule.translate``; ``reference`` (N x C x H x W, or 1 x C x H x W
        for all inputs) gives its encoded code instead of random ones (example-guided)."""
        if reference is not None:
            with self.inference_mode():
                style = self.encode(reference.to(self.device)).expand(x.shape[0], -1)
        return super().translate(x, direction, style=style, num_samples=num_samples)

    def check_data(self, datamodule) -> None:
        super().check_data(datamodule)
        batch = getattr(datamodule, "batch_size", None)
        if batch is not None and batch > 1 and batch % 2:
            raise ConfigError(
                f"data.batch_size={batch}: BicycleGAN splits every batch into two halves (cVAE-GAN and "
                "cLR-GAN pairs); use an even batch size (the official scripts use 2)"
            )

    # ------------------------------------------------------------------ training
    def forward_pass(self, real_A, real_B):
        """The official ``forward()``: codes and both fakes for a batch of 2k pairs (first half
        encoded, second half's B as D2's real images; a batch of 1 serves both halves)."""
        n = real_A.shape[0]
        if n == 1 and not self._warned_batch:
            rank_zero_warn(
                "BicycleGAN expects an even batch (official: 2); with batch 1 the pair serves both halves"
            )
            self._warned_batch = True
        half = max(1, n // 2)
        A1, B1 = real_A[:half], real_B[:half]
        B2 = real_B[half:] if n > 1 else B1
        mu, logvar = self.E(B1)
        z_enc = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        z_rand = self.sample_z(half)
        return {
            "A1": A1, "B1": B1, "B2": B2, "mu": mu, "logvar": logvar, "z_rand": z_rand,
            "fake_enc": self.G(A1, z_enc), "fake_rand": self.G(A1, z_rand),
        }  # fmt: skip

    def generator_terms(self, f) -> dict[str, torch.Tensor]:
        """G/E loss terms (unweighted). The z regression runs E with its parameters detached,
        so its gradient reaches G through fake_rand but never E (the official code freezes E
        for that backward)."""
        frozen_E = {k: v.detach() for k, v in self.E.named_parameters()}
        mu2, _ = functional_call(self.E, frozen_E, (f["fake_rand"],))
        return {
            "gan": self.gan(self.discriminate(self.D, f["fake_enc"]), True),
            "gan2": self.gan(self.discriminate(self.D2, f["fake_rand"]), True),
            "l1": F.l1_loss(f["fake_enc"], f["B1"]),
            "kl": kl_to_standard_normal(f["mu"], f["logvar"]),
            "z_l1": (mu2 - f["z_rand"]).abs().mean(),
        }

    def discriminator_terms(
        self, name: str, real: torch.Tensor, fake: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """``<name>_real`` and ``<name>_fake`` terms of discriminator ``name`` (D or D2); fake detached."""
        disc = getattr(self, name)
        return {
            f"{name}_real": self.gan(self.discriminate(disc, real, real=True), True),
            f"{name}_fake": self.gan(self.discriminate(disc, fake.detach()), False),
        }

    def training_step(self, batch, batch_idx):
        f = self.forward_pass(batch["A"], batch["B"])
        loss_G = self.optimize(("G", "E"), lambda: self.weigh(self.generator_terms(f)))
        loss_D = self.optimize("D", lambda: self.weigh(self.discriminator_terms("D", f["B1"], f["fake_enc"])))
        loss_D2 = self.optimize(
            "D2", lambda: self.weigh(self.discriminator_terms("D2", f["B2"], f["fake_rand"]))
        )
        self.log_dict({"train/G": loss_G, "train/D": loss_D, "train/D2": loss_D2}, prog_bar=True)
