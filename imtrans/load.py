"""Rebuild a trained method from its checkpoint alone."""

from __future__ import annotations

from pathlib import Path

import hydra
import torch
from omegaconf import OmegaConf

from imtrans.losses.perceptual import without_loss_networks
from imtrans.methods.base import TranslationModule


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> TranslationModule:
    """Load ``checkpoints/last.ckpt`` (or any imtrans checkpoint) into a ready module.

    The checkpoint carries the resolved run config (``imtrans_config``); the model is
    instantiated from its ``model`` node and the weights loaded strictly, the generator EMA
    included when the run kept one (``translate`` then uses it). The module is returned in
    eval mode. ``path`` may also be a run directory. Perceptual losses come without their
    pretrained network (calling them raises): to continue training, resume with
    ``imtrans.run ckpt_path=...``.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoints" / "last.ckpt"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    ckpt = torch.load(path, map_location=map_location, weights_only=False)
    if "imtrans_config" not in ckpt:
        raise ValueError(f"{path}: not an imtrans checkpoint (no 'imtrans_config' entry)")
    # The pretrained networks of training losses (VGG) are not read: inference never uses
    # them, and the files may not be on the machine that translates.
    with without_loss_networks():
        model = hydra.utils.instantiate(OmegaConf.create(ckpt["imtrans_config"]["model"]))
    if any(k.startswith("ema.") for k in ckpt["state_dict"]):
        model.enable_ema()  # inference then uses the averaged generators
    model.load_state_dict(ckpt["state_dict"])
    model.on_load_checkpoint(ckpt)
    return model.eval()
