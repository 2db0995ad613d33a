"""Adversarial objectives.

A discriminator output may be one tensor or a list of tensors (one per scale of a
multi-scale discriminator); the loss is summed over scales, as MUNIT, pix2pixHD and
BicycleGAN do.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

Scores = torch.Tensor | Sequence[torch.Tensor]


class GANLoss(nn.Module):
    """``loss(scores, target_is_real)`` for one side of the game.

    Modes:
    - ``lsgan``: mean((D - t)^2), t = 1 for real, 0 for fake (CycleGAN, MUNIT, pix2pixHD).
    - ``vanilla``: binary cross-entropy with logits against 1/0 (pix2pix, DRIT).
    - ``hinge``: D side mean(relu(1 - D)) for real, mean(relu(1 + D)) for fake; for the
      generator call with ``for_generator=True``: -mean(D).

    ``target`` overrides the label value (DRIT's content adversary aims at 0.5).
    """

    modes = ("lsgan", "vanilla", "hinge")

    def __init__(self, mode: str = "lsgan"):
        super().__init__()
        if mode not in self.modes:
            raise ValueError(f"unknown gan mode {mode!r}; choose one of {self.modes}")
        self.mode = mode

    def _one(self, d: torch.Tensor, real: bool, for_generator: bool, target: float | None) -> torch.Tensor:
        d = d.float()  # losses in float32 even under autocast
        if self.mode == "hinge":
            if for_generator:
                return -d.mean()
            return F.relu(1 - d).mean() if real else F.relu(1 + d).mean()
        t = torch.full_like(d, float(real) if target is None else target)
        if self.mode == "lsgan":
            return F.mse_loss(d, t)
        return F.binary_cross_entropy_with_logits(d, t)

    def forward(
        self,
        scores: Scores,
        target_is_real: bool,
        *,
        for_generator: bool = False,
        target: float | None = None,
    ) -> torch.Tensor:
        if isinstance(scores, torch.Tensor):
            scores = [scores]
        return sum(self._one(s, target_is_real, for_generator, target) for s in scores)
