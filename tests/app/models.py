"""Tiny untrained models saved as run folders, for the web app's tests (no training: the app's
plumbing is under test, not the images): built from the tiny configurations of the method
tests and written as ``<folder>/checkpoints/last.ckpt`` the way a run writes them.

- ``munit``: two directions, sampled styles, references, style codes encodable (interpolation
  between two images), 32 px shapes; EMA weights that differ from the raw ones;
- ``stargan_v2``: three named target domains (``cat``, ``dog``, ``wild``), sampled styles and
  references;
- ``ugatit``: deterministic, with attention maps;
- ``pix2pixhd``: Cityscapes label maps (35 classes, instance maps) with per-instance feature
  clusters: random centres for cars (26: 3 centres) and roads (7: 2 centres).
"""

from __future__ import annotations

from pathlib import Path

import hydra
import torch

from imtrans.run import _config_dict
from tests.helpers import TINY, compose_config, tiny_run_overrides
from tests.methods.test_pix2pixhd import TINY as PIX2PIXHD_TINY
from tests.methods.test_stargan_v2 import TINY as STARGAN_V2_TINY

#: the classes that get feature clusters in the tiny pix2pixHD, and how many centres each
CLUSTERS = {26: 3, 7: 2}
DOMAINS = ("cat", "dog", "wild")


def _munit(model) -> None:
    model.enable_ema()
    with torch.no_grad():  # EMA weights unlike the raw ones, so that the choice shows
        for p in model.ema.parameters():
            p.mul_(0.5)


def _stargan_v2(model) -> None:
    model._domain_names = DOMAINS


def _pix2pixhd(model) -> None:
    g = torch.Generator().manual_seed(0)
    for cls, k in CLUSTERS.items():
        model.feat_centers[cls, :k] = torch.randn(k, model.feat_num, generator=g) * 2
        model.feat_counts[cls] = k


OVERRIDES = {
    "munit": tiny_run_overrides("munit", "shapes"),
    "stargan_v2": ["model=stargan_v2", "data=domains", "data.crop_size=32", *STARGAN_V2_TINY],
    "ugatit": tiny_run_overrides("ugatit", "shapes"),
    "pix2pixhd": [
        "model=pix2pixhd",
        "data=cityscapes",
        "data.load_size=128",
        "model.instance_feat=true",
        "loss.weights.vgg=0",
        *PIX2PIXHD_TINY,
    ],  # fmt: skip
}
PREPARE = {"munit": _munit, "stargan_v2": _stargan_v2, "pix2pixhd": _pix2pixhd}
assert set(TINY) >= {"munit", "ugatit"}


def untrained_run(name: str, root: Path) -> Path:
    """The run folder of the tiny untrained model ``name`` (one of :data:`OVERRIDES`) under ``root``."""
    folder = Path(root) / name
    file = folder / "checkpoints" / "last.ckpt"
    if file.is_file():
        return folder
    cfg = compose_config(OVERRIDES[name])
    torch.manual_seed(0)
    model = hydra.utils.instantiate(cfg.model)
    model.imtrans_config = _config_dict(cfg)
    if name in PREPARE:
        PREPARE[name](model)
    ckpt = {"state_dict": model.state_dict()}
    model.on_save_checkpoint(ckpt)
    file.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, file)
    return folder
