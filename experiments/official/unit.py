"""The official UNIT (v2) training iteration: ``UNIT_Trainer`` of NVlabs/MUNIT ``trainer.py``
(checked against a82e222, 2021-11-11) with mingyuliutw/UNIT's
``configs/unit_summer2winter_yosemite256_folder.yaml`` (checked against 28d5982).

The MUNIT repository has no UNIT yaml; ``train.py --trainer UNIT`` with the UNIT repository's
yaml is the official path (imtrans's ``model=unit`` / ``loss=unit`` preset: VAEGen dim 64, 2
downsamplings, 4 residual blocks; 3-scale lsgan MsImageDis; gan_w 1, recon_x_w 10, recon_kl_w
0.01, recon_x_cyc_w 10, recon_kl_cyc_w 0.01, vgg_w 0). The yaml is read, in this order, from
``$IMTRANS_UNIT_CHECKOUT`` (a mingyuliutw/UNIT checkout, or the yaml itself), from the given
checkout's ``configs/`` (a mingyuliutw/UNIT checkout carries the same ``trainer.py``), else it is
rebuilt from the MUNIT checkout's ``configs/summer2winter_yosemite256_folder.yaml``, which differs
from the UNIT yaml only in the loss weights (``recon_s_w``/``recon_c_w`` replaced by ``recon_h_w``
0, ``recon_kl_w`` 0.01, ``recon_kl_cyc_w`` 0.01) and ``log_iter``.

The step is the body of ``train.py``'s loop (lines 58-64): ``dis_update``, ``gen_update``,
``torch.cuda.synchronize()`` (on a GPU); each update draws its own noise. Shims as in
:mod:`experiments.official.munit`.
"""

from __future__ import annotations

import os
from pathlib import Path

from experiments.official import OfficialStep

UNIT_YAML = "unit_summer2winter_yosemite256_folder.yaml"
MUNIT_YAML = "summer2winter_yosemite256_folder.yaml"
#: what the UNIT yaml changes in the MUNIT summer2winter yaml (mingyuliutw/UNIT 28d5982)
UNIT_WEIGHTS = {"recon_h_w": 0, "recon_kl_w": 0.01, "recon_x_cyc_w": 10, "recon_kl_cyc_w": 0.01}


def unit_config(checkout: Path) -> tuple[dict, str]:
    """(the UNIT summer2winter hyperparameters, where they came from)."""
    from experiments.official._nvlabs import read_yaml

    candidates = []
    if os.environ.get("IMTRANS_UNIT_CHECKOUT"):
        p = Path(os.environ["IMTRANS_UNIT_CHECKOUT"])
        candidates.append(p if p.is_file() else p / "configs" / UNIT_YAML)
    candidates.append(Path(checkout) / "configs" / UNIT_YAML)
    for p in candidates:
        if p.is_file():
            return read_yaml(p), str(p)
    config = read_yaml(Path(checkout) / "configs" / MUNIT_YAML)
    for k in ("recon_s_w", "recon_c_w"):
        config.pop(k)
    config.update(UNIT_WEIGHTS, log_iter=10)
    return config, f"configs/{MUNIT_YAML} of the MUNIT checkout with the UNIT yaml's loss weights"


def build(checkout: Path, batch: dict, *, size: int, device: str) -> OfficialStep:
    from experiments.official._nvlabs import build_trainer

    config, source = unit_config(checkout)
    notes = [f"UNIT_Trainer with {source} (recon_x_cyc_w {config['recon_x_cyc_w']}, vgg_w {config['vgg_w']})"]
    _, official = build_trainer(checkout, "UNIT", config, device=device, notes=notes)
    return official
