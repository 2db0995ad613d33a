"""Weight initialisation schemes named as in the official code bases."""

from __future__ import annotations

from torch import nn


def init_weights(net: nn.Module, init_type: str = "normal", gain: float = 0.02) -> nn.Module:
    """Re-initialise Conv/ConvTranspose/Linear weights (biases to 0) and BatchNorm (N(1, gain), 0).

    ``init_type``: ``normal`` N(0, gain) (CycleGAN, pix2pix), ``xavier`` xavier-normal with
    ``gain`` (BicycleGAN), ``kaiming`` kaiming-normal fan_in (MUNIT generators),
    ``orthogonal``. Returns ``net`` for chaining.
    """
    fns = {
        "normal": lambda w: nn.init.normal_(w, 0.0, gain),
        "xavier": lambda w: nn.init.xavier_normal_(w, gain=gain),
        "kaiming": lambda w: nn.init.kaiming_normal_(w, a=0, mode="fan_in"),
        "orthogonal": lambda w: nn.init.orthogonal_(w, gain=gain),
    }
    if init_type not in fns:
        raise ValueError(f"unknown init_type {init_type!r}; choose one of {sorted(fns)}")
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            fns[init_type](m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and m.affine:  # SPADE's param-free norms have no weight
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return net
