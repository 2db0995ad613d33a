"""CUT and FastCUT (Park, Efros, Zhang, Zhu, ECCV 2020), as taesungp/contrastive-unpaired-translation
trains them.

One-sided unpaired translation A -> B: one generator G, one PatchGAN D, no cycle. Instead of a
cycle, PatchNCE ties each patch of G(x) to the patch of x at the same place: both images go
through G's encoder, ``F`` (PatchSampleF) embeds the features of ``nce_layers`` at 256 sampled
locations (the same locations for query and key, new ones per layer), and an InfoNCE loss with
temperature 0.07 picks the matching input patch among the image's other patches.

One iteration (``cut_model.py``):

1. forward: CUT runs G once on cat(A, B) (the second half, G(B), feeds the identity NCE);
   FastCUT flips the whole input batch left-right with probability 0.5 instead;
2. D step on real B vs fake B (detached), LSGAN, loss halved; no image pool;
3. G and F step together (D frozen): GAN(D(fake B)) + PatchNCE(A, fake B) (+ PatchNCE(B, G(B))
   for CUT). FastCUT flips the query features of the flipped output back before matching them
   with the keys of the unflipped A. The keys (G's features of the real images) are read from
   step 1's pass where it saw the images unflipped; the official code encodes them again
   (``translations``).

Modes (``model.mode``, the official ``--CUT_mode``): cut: lambda_NCE 1 with the identity NCE, each
half-weighted (weights nce = nce_Y = 0.5), 200 + 200 epochs; fastcut: lambda_NCE 10, no identity
NCE, flip-equivariance, 150 + 50 epochs. During the decay epochs the official data loader resizes
to the crop size and so stops cropping (``train_data_schedule``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from imtrans.losses import GANLoss, patch_nce_loss
from imtrans.methods.base import TranslationModule
from imtrans.nets import init_weights


class CUT(TranslationModule):
    """Unpaired, deterministic, A -> B only.

    Args:
        generator: factory ``(input_nc, output_nc) -> CutResnetGenerator`` (its ``encode`` and
            ``feature_channels`` give the NCE features).
        discriminator: factory ``(input_nc) -> nn.Module``.
        feature_net: factory ``(in_channels) -> PatchSampleF``; built here from the generator's
            widths at ``nce_layers`` (see PatchSampleF for why that is the official network).
        input_nc, output_nc: channels of A and B.
        mode: ``cut`` or ``fastcut``; the settings it stands for come in through the config
            (loss weights, ``flip_equivariance``, the epochs), so each stays overridable.
        modes: the config's table of those settings per mode (read by the config's
            interpolations; here only to check ``mode``).
        nce_layers: indices into the generator's layer sequence whose outputs are compared.
        num_patches: patches sampled per layer (256).
        nce_temperature: tau of the InfoNCE logits (0.07).
        flip_equivariance: FastCUT's random horizontal flip of the input batch.
        no_crop_from_epoch: from this epoch (0-based) on, training images are resized to
            ``crop_size`` and no longer cropped (the official decay epochs); None keeps the crop.
        crop_size: the data's crop size (for that switch).
        init_type, init_gain: weight initialisation of G, D and F (xavier, 0.02).
        **kwargs: ``TranslationModule`` arguments (loss, optimizer, scheduler, ...).

    Loss weights (``loss.weights``): ``gan``, ``nce``, ``nce_Y`` (the identity NCE on G(B), computed
    only when its weight is > 0), ``D_real``, ``D_fake``.
    """

    directions = ("a2b",)
    modes = ("cut", "fastcut")

    @classmethod
    def run_name(cls, config, choice: str) -> str:
        """``fastcut`` for ``model.mode=fastcut``: CUT and FastCUT runs get folders of their own."""
        return str(config.get("mode", choice))

    def __init__(
        self,
        generator: Callable[..., nn.Module],
        discriminator: Callable[..., nn.Module],
        feature_net: Callable[..., nn.Module],
        input_nc: int = 3,
        output_nc: int = 3,
        mode: str = "cut",
        modes: Mapping[str, Mapping[str, Any]] | None = None,
        nce_layers: Sequence[int] = (0, 4, 8, 12, 16),
        num_patches: int = 256,
        nce_temperature: float = 0.07,
        flip_equivariance: bool = False,
        no_crop_from_epoch: int | None = None,
        crop_size: int | None = None,
        init_type: str = "xavier",
        init_gain: float = 0.02,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if mode not in (modes or self.modes):
            raise ValueError(f"model.mode must be one of {tuple(modes or self.modes)}, got {mode!r}")
        self.mode = mode
        self.nce_layers = [int(i) for i in nce_layers]
        if self.nce_layers != sorted(set(self.nce_layers)):
            raise ValueError(f"model.nce_layers must be increasing layer indices, got {self.nce_layers}")
        self.num_patches = num_patches
        self.nce_temperature = nce_temperature
        self.flip_equivariance = flip_equivariance
        self.no_crop_from_epoch = no_crop_from_epoch
        self.crop_size = crop_size
        self.G = init_weights(generator(input_nc=input_nc, output_nc=output_nc), init_type, init_gain)
        self.D = init_weights(discriminator(input_nc=output_nc), init_type, init_gain)
        self.F = init_weights(
            feature_net(in_channels=self.G.feature_channels(self.nce_layers)), init_type, init_gain
        )
        self.gan = GANLoss(self.loss_cfg.get("gan_mode", "lsgan"))

    def optimizer_groups(self):
        return {"G": self.G.parameters(), "D": self.D.parameters(), "F": self.F.parameters()}

    def generator_modules(self):
        return {"G": self.G}

    def generate(self, x, direction, style=None):
        return self.G(x)

    def train_data_schedule(self):
        if self.no_crop_from_epoch is None or self.crop_size is None:
            return []
        return [(self.no_crop_from_epoch, {"load_size": self.crop_size})]

    @property
    def nce_idt(self) -> bool:
        return self.loss_weights.get("nce_Y", 0) > 0

    # ------------------------------------------------------------------ losses
    def nce(
        self,
        source: torch.Tensor,
        output: torch.Tensor,
        flipped: bool = False,
        source_features: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """PatchNCE between ``source`` (the keys: G's encoder features of the input, no
        gradient) and ``output`` (the queries: the same features of G's output), averaged over
        the NCE layers. ``flipped``: ``output`` came from the flipped input; its features are
        flipped back so that each query patch meets the key of its own place.
        ``source_features``: the keys' features already computed, detached (by the iteration's
        generator pass on ``source``, ``translations``); None: ``source`` is encoded here."""
        queries = self.G.encode(output, self.nce_layers)
        if flipped:
            queries = [q.flip(3) for q in queries]
        with torch.no_grad():  # the keys are detached in the loss: no graph needed
            if source_features is None:
                source_features = self.G.encode(source, self.nce_layers)
            keys, ids = self.F(source_features, self.num_patches)
        queries, _ = self.F(queries, self.num_patches, ids)
        n = source.shape[0]
        losses = [patch_nce_loss(q, k, n, self.nce_temperature).mean() for q, k in zip(queries, keys)]
        return torch.stack(losses).mean()

    def translations(self, real_A: torch.Tensor, real_B: torch.Tensor) -> dict:
        """The iteration's one generator pass: ``fake_B`` (and ``idt_B`` = G(B) with the identity
        NCE), from the input flipped or not (``flipped``).

        ``keys_A`` / ``keys_B``: G's features of the NCE layers for real A / real B, read on
        the way through this pass. The official code encodes the inputs again for PatchNCE's
        keys; these are the same layers on the same images (the same values up to float
        order: CUT's pass runs A and B as one batch), so that second pass is saved. Not when
        the input was flipped (FastCUT): the keys are those of the unflipped A, encoded in
        ``nce``."""
        real = torch.cat([real_A, real_B]) if self.nce_idt else real_A
        flipped = self.flip_equivariance and bool(torch.rand(()) < 0.5)
        if flipped:
            real = real.flip(3)
        fake, feats = self.G(real, feature_layers=self.nce_layers)
        n = real_A.shape[0]
        keys = None if flipped else [f.detach() for f in feats]
        return {
            "fake_B": fake[:n],
            "idt_B": fake[n:] if self.nce_idt else None,
            "flipped": flipped,
            "keys_A": None if keys is None else [f[:n] for f in keys],
            "keys_B": None if keys is None or not self.nce_idt else [f[n:] for f in keys],
        }

    def generator_terms(self, real_A, real_B, made) -> dict[str, torch.Tensor]:
        terms = {
            "gan": self.gan(self.discriminate(self.D, made["fake_B"]), True),
            "nce": self.nce(real_A, made["fake_B"], made["flipped"], made.get("keys_A")),
        }
        if self.nce_idt:
            terms["nce_Y"] = self.nce(real_B, made["idt_B"], made["flipped"], made.get("keys_B"))
        return terms

    def discriminator_terms(self, real_B, fake_B) -> dict[str, torch.Tensor]:
        return {
            "D_fake": self.gan(self.discriminate(self.D, fake_B.detach()), False),
            "D_real": self.gan(self.discriminate(self.D, real_B, real=True), True),
        }

    def training_step(self, batch, batch_idx):
        real_A, real_B = batch["A"], batch["B"]
        made = self.translations(real_A, real_B)
        loss_D = self.optimize("D", lambda: self.weigh(self.discriminator_terms(real_B, made["fake_B"])))
        loss_G = self.optimize(("G", "F"), lambda: self.weigh(self.generator_terms(real_A, real_B, made)))
        self.log_dict({"train/G": loss_G, "train/D": loss_D}, prog_bar=True)
