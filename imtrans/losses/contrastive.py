"""PatchNCE (Park et al., "Contrastive Learning for Unpaired Image-to-Image Translation", ECCV
2020): an InfoNCE loss that ties each patch of an output to the input patch at the same place.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def patch_nce_loss(
    query: torch.Tensor, key: torch.Tensor, num_images: int, temperature: float = 0.07
) -> torch.Tensor:
    """Per-patch PatchNCE losses of one layer.

    Args:
        query: N*P x D unit vectors of the output's patches, image-major (rows n*P .. n*P+P-1 are
            image n's P patches), as ``PatchSampleF`` returns them.
        key: N*P x D unit vectors of the input's patches at the same places; detached here, so
            no gradient flows through the key side (as officially).
        num_images: N. Negatives come from the same image only: patch p of image n is contrasted
            with the P - 1 other patches of image n (CUT and FastCUT's setting).
        temperature: tau (0.07).

    Returns:
        N*P losses: cross-entropy of the logits [q.k+, q.k_1, ..., q.k_P] / tau with target 0,
        where the negative at the patch's own position (q.k+ again) is replaced by -10
        (exp(-10) ~ 0, the official constant, not -inf).
    """
    key = key.detach()
    rows, dim = query.shape
    positive = (query * key).sum(1, keepdim=True)  # N*P x 1
    q, k = query.view(num_images, -1, dim), key.view(num_images, -1, dim)
    negatives = torch.bmm(q, k.transpose(1, 2))  # N x P x P
    patches = negatives.shape[1]
    own = torch.eye(patches, dtype=torch.bool, device=query.device)[None]
    negatives = negatives.masked_fill(own, -10.0).view(rows, patches)
    logits = torch.cat([positive.to(negatives.dtype), negatives], 1).float() / temperature
    target = torch.zeros(rows, dtype=torch.long, device=query.device)
    return F.cross_entropy(logits, target, reduction="none")
