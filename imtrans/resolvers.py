"""OmegaConf resolvers used by the config tree (registered on ``import imtrans``)."""

from __future__ import annotations

import math

from omegaconf import OmegaConf


def unet_depth(size: int, max_depth: int = 8) -> int:
    """Number of stride-2 levels of a U-Net for ``size`` px crops: log2(size), at most 8.

    junyanz's ``unet_256`` (8 levels) needs 256 px and ``unet_128`` (7) 128 px; this picks
    the official network for those sizes and the matching shallower one for small test
    images (32 px -> 5 levels), instead of failing on a 0-pixel bottleneck.
    """
    depth = min(max_depth, int(math.log2(int(size))))
    if depth < 5 or int(size) % 2**depth:
        raise ValueError(f"a U-Net needs a crop size that is a multiple of 32, got {size}")
    return depth


def register() -> None:
    if not OmegaConf.has_resolver("unet_depth"):
        OmegaConf.register_new_resolver("unet_depth", unet_depth)
