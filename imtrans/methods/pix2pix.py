"""pix2pix (Isola et al., CVPR 2017), as junyanz/pytorch-CycleGAN-and-pix2pix trains it.

Conditional GAN on aligned pairs: G: A -> B (U-Net), D judges concat(A, B) patches.
One iteration: fake_B = G(A) once; D step on (A, B) real vs (A, fake_B) detached, loss
halved; then G step: GAN(D(A, fake_B)) + 100 |fake_B - B| through the same fake_B.

At inference the official code (without ``--eval``) keeps dropout on and BatchNorm on batch
statistics: the paper uses dropout as its noise source. ``test_mode="train"`` (default)
does the same, without letting inference change the stored BatchNorm running statistics,
and one image per forward pass as test.py (batch size 1): batch statistics over several images
would make each output depend on the others in its batch, i.e. on the tool's batch size;
``test_mode="eval"`` is the usual eval mode.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from imtrans.losses import GANLoss
from imtrans.methods.base import TranslationModule
from imtrans.nets import init_weights


class Pix2Pix(TranslationModule):
    """Paired, A -> B only.

    Args:
        generator: factory ``(input_nc, output_nc) -> nn.Module`` (e.g. partial ``UnetGenerator``).
        discriminator: factory ``(input_nc) -> nn.Module``; called with input_nc + output_nc
            channels (conditional D).
        input_nc, output_nc: channels of A and B.
        test_mode: ``train`` (official default, see module docstring) or ``eval``.
        init_type, init_gain: weight initialisation.
    """

    directions = ("a2b",)

    def __init__(
        self,
        generator: Callable[..., nn.Module],
        discriminator: Callable[..., nn.Module],
        input_nc: int = 3,
        output_nc: int = 3,
        test_mode: str = "train",
        init_type: str = "normal",
        init_gain: float = 0.02,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if test_mode not in ("train", "eval"):
            raise ValueError(f"model.test_mode must be 'train' or 'eval', got {test_mode!r}")
        self.G = init_weights(generator(input_nc=input_nc, output_nc=output_nc), init_type, init_gain)
        self.D = init_weights(discriminator(input_nc=input_nc + output_nc), init_type, init_gain)
        self.gan = GANLoss(self.loss_cfg.get("gan_mode", "vanilla"))
        self.test_mode = test_mode
        self._one_by_one = False  # set inside train-mode inference (module docstring)

    def optimizer_groups(self):
        return {"G": self.G.parameters(), "D": self.D.parameters()}

    def generator_modules(self):
        return {"G": self.G}

    def generate(self, x, direction, style=None):
        if self._one_by_one:  # batch statistics of each image alone, as the official batch size 1
            return torch.cat([self.G(image[None]) for image in x])
        return self.G(x)

    @contextlib.contextmanager
    def generators_in_inference_mode(self):
        if self.test_mode == "eval":
            with super().generators_in_inference_mode():
                yield
            return
        # Train-mode inference: batch statistics and dropout as in the paper, but the
        # running statistics are put back so that sampling never changes the model.
        saved = {
            k: v.clone() for k, v in self.G.state_dict().items() if "running_" in k or "num_batches" in k
        }
        was_training = self.G.training
        self.G.train()
        self._one_by_one = True
        try:
            yield
        finally:
            self._one_by_one = False
            self.G.load_state_dict(saved, strict=False)
            self.G.train(was_training)

    def discriminator_terms(self, real_A, real_B, fake_B) -> dict[str, torch.Tensor]:
        """D loss terms (unweighted) on real (A, B) and fake (A, G(A)) pairs; fake_B detached."""
        return {
            "D_real": self.gan(self.discriminate(self.D, real_A, real_B, real=True), True),
            "D_fake": self.gan(self.discriminate(self.D, real_A, fake_B.detach()), False),
        }

    def generator_terms(self, real_A, real_B, fake_B) -> dict[str, torch.Tensor]:
        """G loss terms (unweighted): fool D on (A, G(A)), and L1 to the target."""
        return {
            "gan": self.gan(self.discriminate(self.D, real_A, fake_B), True),
            "l1": F.l1_loss(fake_B, real_B),
        }

    def training_step(self, batch, batch_idx):
        real_A, real_B = batch["A"], batch["B"]
        # One generator pass serves both updates (official order: D step, then G step).
        fake_B = self.G(real_A)
        loss_D = self.optimize("D", lambda: self.weigh(self.discriminator_terms(real_A, real_B, fake_B)))
        loss_G = self.optimize("G", lambda: self.weigh(self.generator_terms(real_A, real_B, fake_B)))
        self.log_dict({"train/G": loss_G, "train/D": loss_D}, prog_bar=True)
