"""Discriminator feature matching (pix2pixHD, SPADE).

``loss = sum_i sum_j w * (1 / num_D) * L1(D_i^j(fake), D_i^j(real).detach())``
over every scale i and every intermediate stage j of a multi-scale discriminator (the final
score map excluded), with the layer weight ``w`` = 4 / (n_layers_D + 1) in pix2pixHD and 1 in
SPADE. The method's loss weight multiplies it (lambda_feat 10 in both).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

Features = Sequence[Sequence[torch.Tensor]]


def feature_matching_loss(
    fake: Features, real: Features, n_layers_D: int | None = None, layer_weight: float | None = None
) -> torch.Tensor:
    """``fake``, ``real``: per scale, the list of stage outputs (last = scores, skipped).

    ``layer_weight``: the weight of each layer's L1 (before the 1 / num_D); None gives
    pix2pixHD's 4 / (n_layers_D + 1), with ``n_layers_D`` defaulting to ``len(stages) - 2``
    (pix2pixHD's D has n_layers + 2 stages). SPADE passes 1.
    Real features are detached; gradients reach the generator through ``fake``.
    """
    if len(fake) != len(real):
        raise ValueError(f"feature matching: {len(fake)} fake scales but {len(real)} real ones")
    num_D = len(fake)
    total = None
    for f_scale, r_scale in zip(fake, real):
        if layer_weight is None:
            n_layers = len(f_scale) - 2 if n_layers_D is None else n_layers_D
            weight = (4.0 / (n_layers + 1)) / num_D
        else:
            weight = float(layer_weight) / num_D
        for f, r in zip(f_scale[:-1], r_scale[:-1]):
            term = weight * F.l1_loss(f.float(), r.detach().float())
            total = term if total is None else total + term
    if total is None:
        raise ValueError("feature matching needs discriminators that return intermediate features")
    return total
