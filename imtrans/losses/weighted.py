"""Weighted loss dictionaries (the imaginaire way): terms by name, weights from config."""

from __future__ import annotations

from collections.abc import Mapping

import torch


def weighted_sum(terms: Mapping[str, torch.Tensor], weights: Mapping[str, float]) -> torch.Tensor:
    """Sum of ``weights[name] * terms[name]``.

    Every term must have a weight: a term without one is a configuration error (a silently
    unweighted term is how re-implementations drift from the paper). Terms whose weight is
    0 are skipped. Names are the method's loss names, e.g. ``cycle_A`` or ``gan_B``.
    """
    missing = [name for name in terms if name not in weights]
    if missing:
        raise KeyError(f"loss.weights has no entry for {missing}; known: {sorted(weights)}")
    total = None
    for name, value in terms.items():
        w = float(weights[name])
        if w == 0:
            continue
        total = w * value if total is None else total + w * value
    if total is None:
        raise ValueError("every loss term has weight 0: nothing to optimise")
    return total
