"""Evaluate outside training, with the same protocols and code as the training callback.

    python -m imtrans.evaluate ckpt=outputs/run/checkpoints/last.ckpt [split=test] [data=... data.root=...]
    python -m imtrans.evaluate fake=translated/ real=reference/          # FID and KID
    python -m imtrans.evaluate samples=samples/                          # LPIPS diversity

Common keys: ``metrics.protocol=<quick|munit|bicyclegan|stargan_v2|cut>`` (or ``metrics=<name>``),
any other ``metrics.<key>=...`` of the ``metrics`` config group (``metrics.weights_dir=...``,
``+metrics.overrides.num_inputs=50``), ``out=<file.json>`` (default ``evaluation.json``),
``device=cpu|cuda``.

- ``ckpt``: a run directory or checkpoint; the model and, unless ``data=``/``data.*`` say
  otherwise, the data set come from the checkpoint's own config. Every direction of the method
  is scored (``directions=a2b`` picks), on ``split`` (default: the protocol's, ``test``).
- ``fake`` / ``real``: two folders of images (png, jpg, jpeg; not recursive; sorted by path, as
  torch-fidelity reads them).
- ``samples``: one sub-folder per input holding its S samples, or flat files named
  ``<input>_<k>.png``; pairs follow the protocol's pairing.

Prints a table and writes a JSON file with the scores, the protocol record and any notice.
"""

from __future__ import annotations

import json
import os
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from imtrans.metrics.evaluator import (
    Evaluator,
    evaluate_domain_tasks,
    module_domain_names,
    module_inputs,
    module_sampler,
)
from imtrans.metrics.protocols import get_protocol

OWN_KEYS = ("ckpt", "fake", "real", "samples", "out", "split", "device", "directions")
IMAGE_EXTS = (".png", ".jpg", ".jpeg")
USAGE = __doc__.split("\n\n")[1]


def _split_args(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    own, overrides = {}, []
    for arg in argv:
        key, eq, value = arg.partition("=")
        if not eq:
            raise SystemExit(f"imtrans.evaluate: arguments are key=value, got {arg!r}\n{USAGE}")
        if key in OWN_KEYS:
            own[key] = value
        else:
            overrides.append(arg)
    return own, overrides


def compose_run_config(overrides: list[str]):
    """The imtrans config with ``overrides`` (the ``metrics`` group added if the defaults lack it)."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    import imtrans  # noqa: F401  (resolvers)

    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="imtrans.conf", version_base="1.3"):
        base = compose(config_name="config")
        if "metrics" not in base:
            choice = next((o.split("=", 1)[1] for o in overrides if o.startswith("metrics=")), "quick")
            overrides = [o for o in overrides if not o.startswith("metrics=")] + [f"+metrics={choice}"]
        cfg = compose(config_name="config", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    return cfg


def build_evaluator(metrics_cfg, device: str) -> Evaluator:
    """An :class:`Evaluator` from a ``metrics`` config node (the callback's arguments)."""
    from omegaconf import OmegaConf, open_dict

    node = metrics_cfg.copy()
    with open_dict(node):
        node.pop("best_checkpoint", None)
    m = OmegaConf.to_container(node, resolve=True)
    protocol = get_protocol(m.get("protocol", "quick"), m.get("overrides") or {})
    return Evaluator(
        protocol,
        weights_dir=m.get("weights_dir"),
        download=m.get("download", True),
        batch_size=m.get("batch_size", 16),
        fid=m.get("fid", True),
        kid=m.get("kid", True),
        lpips=m.get("lpips", True),
        paired=m.get("paired", True),
        shapes=m.get("shapes", True),
        device=device,
    )


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files directly in ``folder``, sorted by resolved path (torch-fidelity's order)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SystemExit(f"imtrans.evaluate: {folder}: no such folder")
    files = sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS),
        key=lambda p: os.path.realpath(p),
    )
    if not files:
        raise SystemExit(f"imtrans.evaluate: {folder}: no png/jpg images")
    return files


def read_image(path: Path) -> torch.Tensor:
    """uint8 3 x H x W (RGB)."""
    with Image.open(path) as img:
        return torch.from_numpy(np.asarray(img.convert("RGB")).transpose(2, 0, 1).copy())


def sample_groups(folder: str | os.PathLike) -> list[torch.Tensor]:
    """One S x 3 x H x W uint8 tensor per input: sub-folders, or files ``<input>_<k>.<ext>``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SystemExit(f"imtrans.evaluate: {folder}: no such folder")
    subdirs = sorted(p for p in folder.iterdir() if p.is_dir())
    if subdirs:
        groups = [list_images(d) for d in subdirs]
    else:
        by_input: dict[str, list[Path]] = defaultdict(list)
        for path in list_images(folder):
            stem, sep, k = path.stem.rpartition("_")
            if not sep or not k.isdigit():
                raise SystemExit(
                    f"imtrans.evaluate: {path}: expected <input>_<k>{path.suffix} or one folder per input"
                )
            by_input[stem].append(path)
        groups = [
            sorted(v, key=lambda p: int(p.stem.rpartition("_")[2])) for _, v in sorted(by_input.items())
        ]
    return [torch.stack([read_image(p) for p in g]) for g in groups]


def evaluate_checkpoint(ev: Evaluator, ckpt: str, cfg, own: dict, overrides: list[str]) -> dict[str, Any]:
    import hydra
    from omegaconf import OmegaConf

    from imtrans.load import load_model
    from imtrans.methods.base import DIRECTIONS

    model = load_model(ckpt, map_location=ev.device).to(ev.device)
    if any(o.startswith(("data=", "+data=")) for o in overrides) or not (model.imtrans_config or {}).get(
        "data"
    ):
        data_cfg = cfg.data
    else:
        data_cfg = OmegaConf.create(model.imtrans_config["data"])
        dotlist = [o for o in overrides if o.startswith("data.")]
        data_cfg = OmegaConf.merge(data_cfg, OmegaConf.from_dotlist([o[len("data.") :] for o in dotlist]))
    dm = hydra.utils.instantiate(data_cfg)
    split, ref_split = ev.protocol.splits("test")
    split = own.get("split", split)
    inputs, reference = dm.dataset(split), dm.dataset(ref_split)
    wanted = own["directions"].split(",") if own.get("directions") else list(model.directions)
    scores = {}
    domains = module_domain_names(model, dm, inputs)
    if domains is not None:  # multi-domain: <mode>/<source>2<target>/<score> and <mode>/mean/<score>
        scores.update(evaluate_domain_tasks(ev, model, inputs, reference, domains, ref_split))
    for direction in wanted:
        if direction not in model.directions:
            raise SystemExit(f"imtrans.evaluate: the model translates {model.directions}, not {direction}")
        src, tgt = DIRECTIONS[direction]
        make_input = module_inputs(model, direction)
        if make_input([inputs[0]]) is None:  # the split lacks this direction's source
            continue
        result = ev.evaluate_direction(
            module_sampler(model, direction, ev.protocol.seed),
            inputs,
            src,
            tgt,
            reference=reference,
            reference_cache_key=ref_split,
            multimodal=model.is_multimodal,
            paired=bool(getattr(dm, "paired", False)),
            make_input=make_input,
        )
        scores.update({f"{direction}/{k}": v for k, v in result.items()})
    return {
        "mode": "checkpoint",
        "checkpoint": str(ckpt),
        "split": split,
        "reference_split": ref_split,
        "scores": scores,
    }


def format_table(scores: dict[str, float]) -> str:
    width = max((len(k) for k in scores), default=5)
    lines = [f"{'score':<{width}}  value", f"{'-' * width}  ------------"]
    lines += [f"{k:<{width}}  {v:.6g}" for k, v in scores.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        raise SystemExit(0 if argv else 2)
    own, overrides = _split_args(argv)
    modes = [k for k in ("ckpt", "fake", "samples") if k in own]
    if len(modes) != 1 or ("fake" in own) != ("real" in own):
        raise SystemExit(f"imtrans.evaluate: give exactly one of ckpt=, fake= with real=, samples=\n{USAGE}")
    device = own.get("device", "cuda" if torch.cuda.is_available() else "cpu")
    cfg = compose_run_config(overrides)
    ev = build_evaluator(cfg.metrics, device)
    ev.prepare()

    if "ckpt" in own:
        result = evaluate_checkpoint(ev, own["ckpt"], cfg, own, overrides)
    elif "fake" in own:
        fake = [read_image(p) for p in list_images(own["fake"])]
        real = [read_image(p) for p in list_images(own["real"])]
        result = {
            "mode": "folders",
            "fake": own["fake"],
            "real": own["real"],
            "scores": ev.fid_kid(fake, real),
        }
    else:
        groups = sample_groups(own["samples"])
        result = {"mode": "samples", "samples": own["samples"], "scores": ev.diversity(groups)}

    result["fid_features"] = ev.protocol.fid_features  # the network behind every "fid" above
    result["protocol"] = ev.protocol.record()
    result["notices"] = list(ev.notices)
    out = Path(own.get("out", "evaluation.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(
        f"imtrans.evaluate: protocol {ev.protocol.name}"
        + (" (with overrides)" if ev.protocol.overrides else "")
    )
    print(format_table(result["scores"]) if result["scores"] else "no score computed (see the notices above)")
    print(f"written: {out}")
    return result


if __name__ == "__main__":
    main()
