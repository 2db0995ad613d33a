"""The official MUNIT training iteration: NVlabs/MUNIT (checked against a82e222, 2021-11-11).

``MUNIT_Trainer(config)`` of ``trainer.py`` with the checkout's
``configs/edges2shoes_folder.yaml`` (imtrans's ``model=munit`` / ``loss=munit`` preset: gen dim 64,
style_dim 8, mlp_dim 256, 2 downsamplings, 4 residual blocks; 3-scale lsgan MsImageDis;
recon_x_cyc_w 0, vgg_w 0 so no VGG16 is loaded; Adam 1e-4 (0.5, 0.999), wd 1e-4). The step is
the body of ``train.py``'s loop (lines 58-64): ``trainer.dis_update(a, b, config)``,
``trainer.gen_update(a, b, config)``, ``torch.cuda.synchronize()`` (on a GPU), each update with
its own freshly drawn style codes. ``update_learning_rate`` (StepLR per iteration) is left out.

Input: imtrans's ``A`` and ``B`` (N x 3 x H x W in [-1, 1], as the official folder loader's
Normalize(0.5, 0.5) gives them). The image size is the batch's (the yaml's crop 256 only
configures the loader). Shims (see ``_nvlabs``): ``torch.utils.serialization`` import-only
stand-in; ``.cuda()`` calls are no-ops on the CPU; the yaml is read with ``yaml.safe_load``
(the official ``get_config`` calls ``yaml.load`` without a Loader, rejected by PyYAML 6).
"""

from __future__ import annotations

from pathlib import Path

from experiments.official import OfficialStep

CONFIG = "configs/edges2shoes_folder.yaml"


def build(checkout: Path, batch: dict, *, size: int, device: str) -> OfficialStep:
    from experiments.official._nvlabs import build_trainer, read_yaml

    config = read_yaml(Path(checkout) / CONFIG)
    notes = [
        f"MUNIT_Trainer with {CONFIG} (recon_x_cyc_w {config['recon_x_cyc_w']}, vgg_w {config['vgg_w']})"
    ]
    _, official = build_trainer(checkout, "MUNIT", config, device=device, notes=notes)
    return official
