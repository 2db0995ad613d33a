"""U-GAT-IT (Kim et al., ICLR 2020), as znxlwm/UGATIT-pytorch trains it.

Generators genA2B, genB2A (AdaLIN, CAM attention); per domain a global (7-layer) and a local
(5-layer) discriminator: disGA, disLA judge A images, disGB, disLB judge B images. Every
network returns (output, cam_logit, heatmap). One iteration, the official order:

1. The two translations fake_A2B = genA2B(A) and fake_B2A = genB2A(B), computed once with
   their graph. (The official code computes them again for the G step; G's weights do not
   change in between, so the values are the same.)
2. D step (one Adam for the four Ds): LSGAN on the patch logits and on the CAM logits of each
   D, real -> 1 and fake (detached) -> 0, summed (no 0.5).
3. G step (one Adam for both Gs), with the Ds just updated: LSGAN (fake -> 1) on patch and CAM
   logits of the four Ds, cycle 10 |B2A(A2B(A)) - A|, identity 10 |B2A(A) - A|, and the
   generator's CAM BCE weighted 1000: genB2A's CAM logit on B (its source domain) -> 1, on A
   (the identity pass) -> 0; the same for genA2B.
4. rho of every AdaLIN/ILN clamped to [0, 1] (the official RhoClipper).

Official quirks kept: default PyTorch init, Adam's coupled weight decay on every parameter,
the CAM re-weighting of the Ds with the raw (not spectral-normalised) classifier weight.

This follows the official *PyTorch* code. The paper's numbers came from the official
TensorFlow code (taki0112/UGATIT), which differs in these points: a step-wise
per-epoch decay (100 x 10k iterations) instead of the per-iteration ramp; N(0, 0.02) init and
an L2 term on kernels only; one shared CAM classifier with a bias; biases on every conv and
affine InstanceNorm; an MLP of width ch x n_res with biases; AdaLIN rho initialised 1.0 and
used as clip(rho - 0.1); biased moments; a flip/crop drawn once per graph build; a new batch
for the D and the G step. None of these is reproduced here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from imtrans.losses import GANLoss
from imtrans.methods.base import TranslationModule
from imtrans.methods.spec import InferenceSpec
from imtrans.nets.ugatit import clamp_rho

#: (discriminator, domain it judges)
DISCRIMINATORS = (("GA", "A"), ("LA", "A"), ("GB", "B"), ("LB", "B"))


class UGATIT(TranslationModule):
    """Unpaired, deterministic, both directions.

    Args:
        generator: factory ``(input_nc, output_nc) -> UgatitGenerator``.
        global_discriminator, local_discriminator: factories ``(input_nc) -> UgatitDiscriminator``.
        input_nc, output_nc: channels of domain A and domain B images.
        **kwargs: ``TranslationModule`` arguments (loss, optimizer, scheduler, ...).
    """

    @classmethod
    def run_name(cls, config, choice: str) -> str:
        """``ugatit_light`` or ``ugatit_full`` (``model.generator.light``): the two networks differ."""
        light = (config.get("generator") or {}).get("light", True)
        return f"{choice}_{'light' if light else 'full'}"

    def __init__(
        self,
        generator: Callable[..., nn.Module],
        global_discriminator: Callable[..., nn.Module],
        local_discriminator: Callable[..., nn.Module],
        input_nc: int = 3,
        output_nc: int = 3,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.genA2B = generator(input_nc=input_nc, output_nc=output_nc)
        self.genB2A = generator(input_nc=output_nc, output_nc=input_nc)
        self.disGA = global_discriminator(input_nc=input_nc)
        self.disLA = local_discriminator(input_nc=input_nc)
        self.disGB = global_discriminator(input_nc=output_nc)
        self.disLB = local_discriminator(input_nc=output_nc)
        self.gan = GANLoss(self.loss_cfg.get("gan_mode", "lsgan"))

    def optimizer_groups(self):
        return {
            "G": [*self.genA2B.parameters(), *self.genB2A.parameters()],
            "D": [p for name, _ in DISCRIMINATORS for p in getattr(self, f"dis{name}").parameters()],
        }

    def generator_modules(self):
        return {"genA2B": self.genA2B, "genB2A": self.genB2A}

    def generate(self, x, direction, style=None):
        return (self.genA2B if direction == "a2b" else self.genB2A)(x)[0]

    def inference_spec(self) -> InferenceSpec:
        """Both directions, deterministic; three attention maps; the full generator
        (``light=false``) takes only its training size (its MLP reads the flattened feature map)."""
        return replace(
            super().inference_spec(),
            attention=("G", "D_global", "D_local"),
            fixed_size=self.genA2B.fixed_size,
        )

    def attention_maps(self, x, direction):
        """The generator's CAM heatmap over the input (``G``) and the target domain's global and
        local discriminators' maps on the translation (``D_global``, ``D_local``), as the
        official test shows them (N x 1 x h x w, unnormalised)."""
        self.check_direction(direction)
        gen, d_global, d_local = (
            (self.genA2B, self.disGB, self.disLB)
            if direction == "a2b"
            else (self.genB2A, self.disGA, self.disLA)
        )
        # an inference view of D on the translation: not augmented (not training)
        with self.inference_mode():
            fake, _, heatmap = gen(x.to(self.device))
            return {
                "G": (heatmap, "input"),
                "D_global": (d_global(fake)[2], "output"),
                "D_local": (d_local(fake)[2], "output"),
            }

    def translations(self, real_A, real_B) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """``{"A2B": (fake, cam_logit), "B2A": ...}``: each translation once, with its graph."""
        fake_A2B, cam_A2B, _ = self.genA2B(real_A)
        fake_B2A, cam_B2A, _ = self.genB2A(real_B)
        return {"A2B": (fake_A2B, cam_A2B), "B2A": (fake_B2A, cam_B2A)}

    def discriminator_terms(self, real_A, real_B, fake_A, fake_B) -> dict[str, torch.Tensor]:
        """The 16 D terms (unweighted); ``fake_A`` = genB2A(B), ``fake_B`` = genA2B(A), detached.
        Reals first, then fakes, per D, as the official code calls them (the order of the
        spectral-norm power iterations)."""
        reals, fakes = {"A": real_A, "B": real_B}, {"A": fake_A, "B": fake_B}
        terms = {}
        for kind, images in (("real", reals), ("fake", fakes)):
            for name, domain in DISCRIMINATORS:
                # (logit, CAM logit, heatmap): r_t counts the main logit
                logit, cam_logit, _ = self.discriminate(
                    getattr(self, f"dis{name}"),
                    images[domain],
                    real=kind == "real",
                    scores=lambda out: out[0],
                )
                terms[f"D_{name}_{kind}"] = self.gan(logit, kind == "real")
                terms[f"D_{name}_cam_{kind}"] = self.gan(cam_logit, kind == "real")
        return terms

    def generator_terms(self, real_A, real_B, made) -> dict[str, torch.Tensor]:
        """The G terms (unweighted) from the translations ``made`` (see ``translations``)."""
        fake_A2B, cam_A2B = made["A2B"]
        fake_B2A, cam_B2A = made["B2A"]
        fake_A2B2A, _, _ = self.genB2A(fake_A2B)
        fake_B2A2B, _, _ = self.genA2B(fake_B2A)
        fake_A2A, cam_A2A, _ = self.genB2A(real_A)
        fake_B2B, cam_B2B, _ = self.genA2B(real_B)
        fakes = {"A": fake_B2A, "B": fake_A2B}
        terms = {}
        for name, domain in DISCRIMINATORS:
            logit, cam_logit, _ = self.discriminate(getattr(self, f"dis{name}"), fakes[domain])
            terms[f"gan_{name}"] = self.gan(logit, True)
            terms[f"gan_{name}_cam"] = self.gan(cam_logit, True)
        bce = F.binary_cross_entropy_with_logits
        terms.update(
            cycle_A=F.l1_loss(fake_A2B2A, real_A),
            cycle_B=F.l1_loss(fake_B2A2B, real_B),
            idt_A=F.l1_loss(fake_A2A, real_A),
            idt_B=F.l1_loss(fake_B2B, real_B),
            # CAM of each generator: 1 on its source domain, 0 on the identity pass
            cam_A_source=bce(cam_B2A.float(), torch.ones_like(cam_B2A, dtype=torch.float32)),
            cam_A_identity=bce(cam_A2A.float(), torch.zeros_like(cam_A2A, dtype=torch.float32)),
            cam_B_source=bce(cam_A2B.float(), torch.ones_like(cam_A2B, dtype=torch.float32)),
            cam_B_identity=bce(cam_B2B.float(), torch.zeros_like(cam_B2B, dtype=torch.float32)),
        )
        return terms

    def training_step(self, batch, batch_idx):
        real_A, real_B = batch["A"], batch["B"]
        made = self.translations(real_A, real_B)

        def discriminator_loss():
            fake_A, fake_B = made["B2A"][0].detach(), made["A2B"][0].detach()
            return self.weigh(self.discriminator_terms(real_A, real_B, fake_A, fake_B))

        def generator_loss():
            return self.weigh(self.generator_terms(real_A, real_B, made))

        loss_D = self.optimize("D", discriminator_loss)
        loss_G = self.optimize("G", generator_loss)
        clamp_rho(self.genA2B)
        clamp_rho(self.genB2A)
        self.log_dict({"train/G": loss_G, "train/D": loss_D}, prog_bar=True)

    def evaluation_metrics(self, batch, direction, fake):
        scores = super().evaluation_metrics(batch, direction, fake)
        back = "b2a" if direction == "a2b" else "a2b"
        if back not in self.directions:
            return scores
        src = batch["A" if direction == "a2b" else "B"].to(fake.dtype)
        scores["cycle_l1"] = (self.translate(fake, back) - src).abs().mean()
        return scores
