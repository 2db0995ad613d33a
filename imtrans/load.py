"""Read imtrans checkpoints, and rebuild a trained method from one alone.

Reading a checkpoint runs no code
    ``torch.load`` of a pickle calls whatever Python function the file names: a ``.ckpt`` or a
    run folder downloaded from someone else (the way models are shared) could run code on
    ``imtrans translate``. imtrans writes its checkpoints with tensors and plain containers
    only (dict, list, tuple, str, int, float, bool, None: weights, optimizer, scheduler and
    gradient-scaler states, the resolved run config, the random streams as tensors and
    numbers), so :func:`read_checkpoint`, which every reader goes through (``translate``,
    ``export``, ``evaluate``, ``imtrans.run``'s ``ckpt_path`` and ``model.init_from``,
    pix2pixHD's ``model.load_pretrain``), loads with ``weights_only=True``; ``imtrans.run``
    has Lightning load ``ckpt_path`` the same way. The stored config, which :func:`load_model`
    instantiates, may only name classes of :data:`BUILDABLE`. A file holding anything else (a
    checkpoint an older imtrans wrote with other objects in it, or one made to run code) is
    refused with one :class:`~imtrans.errors.CheckpointError` naming it.

The trust option
    For one's own older files: ``trust=true`` on every tool (``imtrans translate|export|evaluate
    ... trust=true``, ``imtrans.run ... trust=true``; in Python ``load_model(path, trust=True)``
    or :func:`trusted_checkpoints`) reads them as before, with full unpickling. Give it only
    for files you made yourself or whose source you trust.

Inference weights (``.safetensors``)
    ``imtrans export formats=safetensors`` writes the inference weights alone
    (:func:`save_inference_weights`: the generator modules, with the EMA weights when the run
    kept them, and the method's own buffers; no optimizer, no discriminator, nothing pickled)
    and, in the file's header, the run config as JSON, the method and the domain names.
    :func:`read_checkpoint` and :func:`load_model` (hence ``translate`` and ``evaluate``) take
    such a file wherever a checkpoint is asked for; the discriminators and other training-only
    networks of the rebuilt module then keep their initial weights.
"""

from __future__ import annotations

import contextlib
import json
import re
import zipfile
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import OmegaConf

from imtrans import __version__
from imtrans.errors import CheckpointError, is_text_file, load_error, shorten
from imtrans.losses.perceptual import without_loss_networks
from imtrans.methods.base import CHECKPOINT_FORMAT, TranslationModule

#: The command-line key (and ``imtrans.run`` config key) that reads a checkpoint with full unpickling.
TRUST_KEY = "trust"

#: What a ``_target_`` of a stored config (the ``model`` and ``data`` nodes, which the tools
#: instantiate) may name: imtrans's methods, networks, augmentations, losses and data modules,
#: and torch's optimizers and schedulers. They build networks and read images; any other
#: callable could do anything with the arguments the file gives it.
BUILDABLE = (
    "imtrans.methods.",
    "imtrans.nets.",
    "imtrans.augment.",
    "imtrans.losses.",
    "imtrans.data.",
    "torch.optim.",
)

#: ``__metadata__`` of an imtrans ``.safetensors`` file: this marks it as one.
SAFETENSORS_FORMAT = "imtrans-inference-weights"

_TRUSTED: ContextVar[bool] = ContextVar("imtrans_trusted_checkpoints", default=False)


@contextlib.contextmanager
def trusted_checkpoints(trust: bool = True) -> Iterator[None]:
    """Within it, :func:`read_checkpoint` (by default) reads files with full unpickling when
    ``trust``: ``imtrans.run ... trust=true`` holds it around the run, whose checkpoints are read
    deep inside the methods (``model.init_from``, ``model.load_pretrain``)."""
    token = _TRUSTED.set(bool(trust))
    try:
        yield
    finally:
        _TRUSTED.reset(token)


def checkpoints_trusted() -> bool:
    """Whether a :func:`trusted_checkpoints` block asked for full unpickling."""
    return _TRUSTED.get()


def _unsafe(key: str, path: str | Path, what: str) -> CheckpointError:
    """The refusal of a file that would run code: ``what`` says why, the trust option follows."""
    return CheckpointError(
        f"{key}={path}: {what}; add {TRUST_KEY}=true only for a file you made yourself "
        "(older imtrans versions wrote such files) or whose source you trust"
    )


def _unsafe_globals(file: Path, message: str) -> list[str]:
    """The Python objects other than tensors and plain containers that ``file`` would unpickle,
    found without unpickling: torch lists them for its zip format; otherwise the one its
    refusal names."""
    with contextlib.suppress(Exception):
        found = torch.serialization.get_unsafe_globals_in_checkpoint(file)
        if found:
            return found
    named = re.search(r"Unsupported global: GLOBAL ([\w.]+)", message)
    return [named.group(1)] if named else []


def _torch_load(file: Path, key: str, path: str | Path, map_location, trust: bool) -> Any:
    try:
        return torch.load(file, map_location=map_location, weights_only=not trust)
    except Exception as err:  # torch.load fails in many ways on what is not a whole checkpoint
        message = str(err)
        weights_only = "Weights only load failed" in message
        # refused by the weights-only reader: a global it does not know, or anything else in the
        # pickle of a whole torch file (a zip; other pickle protocols); a text file is no pickle
        if weights_only and ("Unsupported global" in message or zipfile.is_zipfile(file)):
            names = _unsafe_globals(file, message)
            shown = ", ".join(names[:3]) + (f", ... ({len(names)} in all)" if len(names) > 3 else "")
            what = "it holds Python objects other than tensors and plain containers"
            what += f" ({shown})" if names else ""
            raise _unsafe(key, path, f"{what}, which could run code when loaded") from None
        if is_text_file(file):  # the unpickler's words for it are a meaningless opcode
            raise CheckpointError(f"{key}={path}: not a readable PyTorch checkpoint (a text file)") from None
        raise CheckpointError(
            f"{key}={path}: not a readable PyTorch checkpoint (truncated, or another kind of file: "
            f"{load_error(err)})"
        ) from None


def _read_safetensors(file: Path, key: str, path: str | Path, map_location) -> dict:
    """An imtrans ``.safetensors`` file as the checkpoint dict :func:`load_model` reads."""
    from safetensors import safe_open

    try:
        with safe_open(str(file), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            state = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118  (not a dict)
    except Exception as err:  # a header or data that safetensors cannot parse
        reason = shorten(str(err), 120) or type(err).__name__
        raise CheckpointError(f"{key}={path}: not a readable safetensors file ({reason})") from None
    if meta.get("format") != SAFETENSORS_FORMAT or "imtrans_config" not in meta:
        raise CheckpointError(
            f"{key}={path}: a safetensors file, but not imtrans's inference weights (no imtrans metadata); "
            "write one with `imtrans export ckpt=<run> formats=safetensors`"
        )
    try:
        config = json.loads(meta["imtrans_config"])
        domains = json.loads(meta.get("domains", "null"))
    except ValueError as err:
        raise CheckpointError(f"{key}={path}: its imtrans metadata is not valid JSON ({err})") from None
    ckpt = {
        "state_dict": {k: v.to(map_location) for k, v in state.items()},
        "imtrans_config": config,
        "imtrans_inference_only": True,
    }
    if domains:
        ckpt["imtrans_domains"] = domains
    return ckpt


def safetensors_ema(file: str | Path) -> bool:
    """Whether the generator weights of an imtrans ``.safetensors`` file are EMA averages."""
    from safetensors import safe_open

    with safe_open(str(file), framework="pt", device="cpu") as f:
        return (f.metadata() or {}).get("ema") == "true"


def read_checkpoint(
    path: str | Path,
    key: str = "ckpt",
    map_location: str | torch.device = "cpu",
    imtrans: bool = True,
    trust: bool | None = None,
):
    """``(file, checkpoint dict)`` of a checkpoint file or run directory (``checkpoints/last.ckpt``),
    or of an imtrans ``.safetensors`` file (its dict then has ``imtrans_inference_only``).

    Every mistake is one :class:`~imtrans.errors.CheckpointError` naming ``key=path`` and the
    problem, before any work: missing, a folder without ``checkpoints/last.ckpt``, empty,
    unreadable (truncated, a text file, another format), holding Python objects other than
    tensors and plain containers (unless ``trust``; None: :func:`checkpoints_trusted`), or
    (``imtrans``) not written by imtrans.
    """
    trust = checkpoints_trusted() if trust is None else trust
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
    if file.suffix == ".safetensors":
        return file, _read_safetensors(file, key, path, map_location)
    ckpt = _torch_load(file, key, path, map_location, trust)
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise CheckpointError(
            f"{key}={path}: a PyTorch file, but not a training checkpoint (no 'state_dict')"
        )
    written = ckpt.get("imtrans_format", 0)
    if isinstance(written, int) and written > CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{key}={path}: written by a newer imtrans ({ckpt.get('imtrans_version', '?')}, checkpoint "
            f"format {written}; this imtrans {__version__} reads formats up to {CHECKPOINT_FORMAT}); "
            "upgrade imtrans (pip install -U imtrans) to read it"
        )
    if imtrans and "imtrans_config" not in ckpt:
        raise CheckpointError(
            f"{key}={path}: not an imtrans checkpoint (no 'imtrans_config'); "
            "official checkpoints are read with `imtrans import`"
        )
    return file, ckpt


def check_buildable(node: Any, key: str, path: str | Path, where: str) -> None:
    """Every ``_target_`` in the stored config ``node`` (at ``where``, e.g. ``model``) names one
    of :data:`BUILDABLE`: a checkpoint's config is data, and building it must call nothing else."""
    if isinstance(node, dict):
        target = node.get("_target_")
        if target is not None and not (isinstance(target, str) and target.startswith(BUILDABLE)):
            raise _unsafe(
                key,
                path,
                f"its config builds {where}._target_={target}, not an imtrans class or torch optimizer, "
                "and building it could run any code",
            )
        for name, value in node.items():
            check_buildable(value, key, path, f"{where}.{name}")
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            check_buildable(value, key, path, f"{where}[{i}]")


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


def inference_state(model: TranslationModule) -> dict[str, torch.Tensor]:
    """What translation reads of ``model.state_dict()``: the tensors of its generator modules
    and the method's own buffers (the iteration counter, pix2pixHD's feature clusters), not
    the discriminators, auxiliary networks or EMA copies."""
    prefixes = {id(m): name for name, m in model.named_modules()}
    wanted = tuple(f"{prefixes[id(m)]}." for m in model.generator_modules().values())
    return {k: v for k, v in model.state_dict().items() if k.startswith(wanted) or "." not in k}


def save_inference_weights(model: TranslationModule, file: str | Path, ema: bool) -> None:
    """Write ``model``'s :func:`inference_state` as a ``.safetensors`` file, with the run config
    (JSON), the method and the domain names in its header; ``ema`` records that the generator
    weights are the averaged ones. :func:`load_model` rebuilds the module from it."""
    from safetensors.torch import save_file

    saved: dict = {}
    model.on_save_checkpoint(saved)  # the config and domain names, as a checkpoint keeps them
    config = saved.get("imtrans_config") or {}
    # tied tensors (one storage under two names) are refused by safetensors: each is its own copy
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in inference_state(model).items()}
    metadata = {
        "format": SAFETENSORS_FORMAT,
        "method": str((config.get("model") or {}).get("_target_", type(model).__name__)),
        "imtrans_config": json.dumps(config),
        "domains": json.dumps(saved.get("imtrans_domains")),
        "ema": "true" if ema else "false",
    }
    save_file(tensors, str(file), metadata=metadata)


def load_model(
    path: str | Path, map_location: str | torch.device = "cpu", trust: bool | None = None
) -> TranslationModule:
    """Load ``checkpoints/last.ckpt`` (or any imtrans checkpoint, or the ``.safetensors`` file
    of ``imtrans export formats=safetensors``) into a ready module.

    The checkpoint carries the resolved run config (``imtrans_config``); the model is
    instantiated from its ``model`` node and the weights loaded strictly, the generator EMA
    included when the run kept one (``translate`` then uses it). The module is returned in
    eval mode. ``path`` may also be a run directory. Perceptual losses come without their
    pretrained network (calling them raises): to continue training, resume with
    ``imtrans.run ckpt_path=...``. A checkpoint that cannot be used is a one-line
    :class:`~imtrans.errors.CheckpointError`; ``trust`` as in :func:`read_checkpoint`.
    """
    trust = checkpoints_trusted() if trust is None else trust
    file, ckpt = read_checkpoint(path, "ckpt", map_location, trust=trust)
    config = ckpt["imtrans_config"]
    if not trust:  # the tools build the model node here, and evaluate the data node
        for node in ("model", "data"):
            check_buildable(config.get(node), "ckpt", path, node)
    # The pretrained networks of training losses (VGG) are not read: inference never uses
    # them, and the files may not be on the machine that translates.
    with without_loss_networks():
        model = hydra.utils.instantiate(OmegaConf.create(config["model"]))
    inference_only = bool(ckpt.get("imtrans_inference_only"))
    if not inference_only and any(k.startswith("ema.") for k in ckpt["state_dict"]):
        model.enable_ema()  # inference then uses the averaged generators
    ours = inference_state(model) if inference_only else model.state_dict()
    differs = state_dict_mismatch(ours, ckpt["state_dict"])
    if differs:
        raise CheckpointError(f"ckpt={path}: its weights do not fit the model its config builds ({differs})")
    model.load_state_dict(ckpt["state_dict"], strict=not inference_only)
    model.on_load_checkpoint(ckpt)
    return model.eval()
