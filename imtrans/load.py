"""Rebuild a trained method from its checkpoint alone."""

from __future__ import annotations

from pathlib import Path

import hydra
import torch
from omegaconf import OmegaConf

from imtrans.errors import CheckpointError
from imtrans.losses.perceptual import without_loss_networks
from imtrans.methods.base import TranslationModule


def read_checkpoint(
    path: str | Path, key: str = "ckpt", map_location: str | torch.device = "cpu", imtrans: bool = True
):
    """``(file, checkpoint dict)`` of a checkpoint file or run directory (``checkpoints/last.ckpt``).

    Every mistake is one :class:`~imtrans.errors.CheckpointError` naming ``key=path`` and the
    problem, before any work: missing, a folder without ``checkpoints/last.ckpt``, empty,
    unreadable (truncated, a text file, another format), or (``imtrans``) not written by imtrans.
    """
    given = Path(path).expanduser()
    file = given / "checkpoints" / "last.ckpt" if given.is_dir() else given
    if given.is_dir() and not file.is_file():
        others = (
            sorted(p.name for p in (given / "checkpoints").glob("*.ckpt"))
            if (given / "checkpoints").is_dir()
            else []
        )
        hint = f" (it has {', '.join(others)}: give one of them)" if others else ""
        raise CheckpointError(f"{key}={path}: a folder without checkpoints/last.ckpt{hint}")
    if not file.is_file():
        raise CheckpointError(f"{key}={path}: no such file (give a .ckpt file or a run directory)")
    if file.stat().st_size == 0:
        raise CheckpointError(f"{key}={path}: empty file (0 bytes), not a checkpoint")
    try:
        ckpt = torch.load(file, map_location=map_location, weights_only=False)
    except Exception as err:  # torch.load fails in many ways on what is not a whole checkpoint
        reason = " ".join(str(err).split())[:120] or type(err).__name__
        raise CheckpointError(
            f"{key}={path}: not a readable PyTorch checkpoint (truncated, or another kind of file: {reason})"
        ) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise CheckpointError(
            f"{key}={path}: a PyTorch file, but not a training checkpoint (no 'state_dict')"
        )
    if imtrans and "imtrans_config" not in ckpt:
        raise CheckpointError(
            f"{key}={path}: not an imtrans checkpoint (no 'imtrans_config'); "
            "official checkpoints are read with `imtrans import`"
        )
    return file, ckpt


def state_dict_mismatch(ours: dict, theirs: dict) -> str | None:
    """The first differences between two state dicts in words (keys only on one side, shapes),
    or None when they match."""
    missing = [k for k in ours if k not in theirs]
    extra = [k for k in theirs if k not in ours]
    shapes = [k for k in ours if k in theirs and tuple(ours[k].shape) != tuple(theirs[k].shape)]
    if not (missing or extra or shapes):
        return None
    parts = []
    if missing:
        parts.append(f"{len(missing)} tensor(s) missing, first {missing[0]!r}")
    if extra:
        parts.append(f"{len(extra)} unexpected, first {extra[0]!r}")
    if shapes:
        k = shapes[0]
        parts.append(
            f"{len(shapes)} of another shape, first {k!r} {tuple(theirs[k].shape)} != {tuple(ours[k].shape)}"
        )
    return "; ".join(parts)


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> TranslationModule:
    """Load ``checkpoints/last.ckpt`` (or any imtrans checkpoint) into a ready module.

    The checkpoint carries the resolved run config (``imtrans_config``); the model is
    instantiated from its ``model`` node and the weights loaded strictly, the generator EMA
    included when the run kept one (``translate`` then uses it). The module is returned in
    eval mode. ``path`` may also be a run directory. Perceptual losses come without their
    pretrained network (calling them raises): to continue training, resume with
    ``imtrans.run ckpt_path=...``. A checkpoint that cannot be used is a one-line
    :class:`~imtrans.errors.CheckpointError`.
    """
    file, ckpt = read_checkpoint(path, "ckpt", map_location)
    # The pretrained networks of training losses (VGG) are not read: inference never uses
    # them, and the files may not be on the machine that translates.
    with without_loss_networks():
        model = hydra.utils.instantiate(OmegaConf.create(ckpt["imtrans_config"]["model"]))
    if any(k.startswith("ema.") for k in ckpt["state_dict"]):
        model.enable_ema()  # inference then uses the averaged generators
    differs = state_dict_mismatch(model.state_dict(), ckpt["state_dict"])
    if differs:
        raise CheckpointError(f"ckpt={path}: its weights do not fit the model its config builds ({differs})")
    model.load_state_dict(ckpt["state_dict"])
    model.on_load_checkpoint(ckpt)
    return model.eval()
