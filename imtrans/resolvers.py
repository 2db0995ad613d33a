"""OmegaConf resolvers used by the config tree (registered on ``import imtrans``)."""

from __future__ import annotations

import math

from omegaconf import OmegaConf

from imtrans.errors import ConfigError


def unet_depth(size: int, max_depth: int = 8) -> int:
    """Number of stride-2 levels of a U-Net for ``size`` px crops: log2(size), at most 8.

    junyanz's ``unet_256`` (8 levels) needs 256 px and ``unet_128`` (7) 128 px; this picks
    the official network for those sizes and the matching shallower one for small test
    images (32 px -> 5 levels), instead of failing on a 0-pixel bottleneck.
    """
    depth = min(max_depth, int(math.log2(int(size))))
    if depth < 5 or int(size) % 2**depth:
        raise ConfigError(
            f"data.crop_size={size}: the U-Net generator needs a multiple of 32 (at least 32); "
            f"use data.crop_size={max(32, -(-int(size) // 32) * 32)}"
        )
    return depth


def encoder_blocks(size: int) -> int:
    """Down-sampling blocks of BicycleGAN's ResNet encoder for ``size`` px: its fixed
    AvgPool2d(8) needs an 8 px map, so 4 blocks at 256 (``resnet_256``), 3 at 128
    (``resnet_128``), 2 at 64."""
    blocks = int(math.log2(int(size))) - 4
    if blocks < 1 or int(size) != 2 ** (blocks + 4):
        raise ConfigError(
            f"data.crop_size={size}: the ResNet encoder needs a power of two of at least 32 "
            "(its average pooling reads an 8 px map); use 32, 64, 128 or 256"
        )
    return blocks


def patch_layers(size: int) -> int:
    """PatchGAN depth of BicycleGAN's multi-scale D: 3 (``basic_256_multi``) from 256 px, else 2."""
    return 3 if int(size) >= 256 else 2


def fit_layers(size: int, layers: int, min_size: int) -> int:
    """``layers`` of a stride-2 stack that needs ``min_size`` px, one fewer per halving of
    ``size`` below it (at least 2): the official depth at the paper's size, the matching
    shallower network for small test images (U-GAT-IT's 7-layer global D needs 96 px; at
    64 px it gets 6)."""
    size, layers, min_size = int(size), int(layers), int(min_size)
    while size < min_size and layers > 2:
        layers, min_size = layers - 1, min_size // 2
    return layers


def add(*numbers: int) -> int:
    """The sum of integers: a run's epochs from a schedule's constant and decay parts; booleans
    count 1 and 0 (input channels: ``label_nc`` + the dontcare channel)."""
    return sum(int(n) for n in numbers)


def negate(flag: bool) -> bool:
    """``not flag``: an option stated the other way round (SPADE's ``no_instance`` from the
    data's ``use_instance``)."""
    if isinstance(flag, str):
        if flag.strip().lower() not in ("true", "false"):
            raise ConfigError(f"not:{flag}: expected true or false")
        return flag.strip().lower() == "false"
    return not bool(flag)


def run_name(choice: str, model) -> str:
    """The method's part of a run's name: the ``model`` group's choice, or the variant the
    method's class names from its config (:meth:`TranslationModule.run_name`), so that runs of
    two variants (CUT and FastCUT) get folders of their own."""
    from hydra.utils import get_class

    target = model.get("_target_") if model is not None else None
    if not target:
        return str(choice)
    return get_class(str(target)).run_name(model, str(choice))


RESOLVERS = {
    "add": add,
    "not": negate,
    "run_name": run_name,
    "unet_depth": unet_depth,
    "encoder_blocks": encoder_blocks,
    "patch_layers": patch_layers,
    "fit_layers": fit_layers,
}


def register() -> None:
    for name, fn in RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
