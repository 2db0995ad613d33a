"""Official pretrained checkpoints as ordinary imtrans checkpoints.

    imtrans import METHOD PATH out=DIR [importer options] [Hydra overrides]
    python -m imtrans.official cyclegan checkpoints/horse2zebra_pretrained/ out=zoo/h2z direction=a2b

Each official repository saves its networks in its own format (a raw state dict per network,
``{'a', 'b'}`` dicts, one dict of eight networks, ...; each format module's docstring says which).
One module per method under :mod:`imtrans.official.formats` knows its format: it finds the
files in ``PATH``, reads the architecture options from the tensors' shapes, renames every key
to ours and returns an :class:`Imported`. What is common lives here: reading files safely,
the legacy-key rules, strict loading with errors that name the file and the key, and writing
``DIR`` exactly as a run of ours writes its folder (``config.yaml``, ``checkpoints/last.ckpt``)
plus ``import.json`` (sources with sha256, official options, dropped keys, fresh networks).

Contract of a format module ``imtrans/official/formats/<method>.py`` (the file's name is the
METHOD of the command line; a method added later brings its own file and nothing else changes):

- ``OPTIONS: dict[str, str]``: the importer options it accepts (``name: help``), e.g.
  ``direction`` for CycleGAN's single-generator files. Every other ``key=value`` of the command
  line is a Hydra override of the imtrans config.
- ``read(path: Path, **options) -> Imported``: everything it needs from ``path`` (a file or the
  official checkpoint folder), validated: on any problem it raises :class:`OfficialFormatError`
  before anything is written.

Nothing here names a method.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import pkgutil
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from imtrans.errors import is_text_file, load_error, shorten  # noqa: F401  (load_error: for the formats)

__all__ = [
    "IDENTITY",
    "Imported",
    "Network",
    "OfficialFormatError",
    "available_methods",
    "get_format",
    "import_official",
    "load_error",
    "newest",
    "read_file",
    "rename_keys",
    "state_dict_in",
]

#: Norm statistics that PyTorch <= 0.3 (MUNIT/UNIT) and junyanz's code before Oct 2018 saved for
#: InstanceNorm layers; our InstanceNorm layers keep none (as the official code today).
LEGACY_STAT_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")


class OfficialFormatError(ValueError):
    """A file or folder that is not a valid official checkpoint of the method: the message is one
    line naming the file and the first offending key or shape."""


Rules = Sequence[tuple[str, Any]]
#: for networks whose official keys are ours (pix2pix's U-Net, MUNIT/UNIT): every key kept as
#: it is; the core still refuses a key our network lacks
IDENTITY: Rules = [(r"(.*)", r"\1")]


@dataclass
class Network:
    """One official network as read: its state dict in official key names, the renaming rules
    to ours (see :func:`rename_keys`) and the file it came from."""

    state_dict: dict[str, torch.Tensor]
    rules: Rules
    file: Path
    what: str = ""  # the entry of the file it was read from (``'a'``, ``'gen'``), if any


@dataclass
class Imported:
    """What a format module read from the official files.

    Attributes:
        overrides: Hydra overrides building the imtrans module that matches the official model
            (``model=cyclegan``, ``model.generator.n_blocks=6``, ``data.input_nc=1`` ...); the
            user's overrides are applied on top.
        networks: ``{attribute of the module: Network}``; each is renamed, cleaned of legacy
            keys and loaded into ``getattr(module, attribute)`` with ``strict=True``.
        sources: the files read, in the order read.
        official_options: the official options as read or inferred (``ngf``, ``netG``, ...).
        buffers: module-level buffers to fill (``{state-dict key: tensor}``), e.g. cluster centres.
        iteration: the training progress the official files record (MUNIT's file number, DRIT's
            ``total_it``), for the record; the imported run starts at iteration 0.
        notes: facts worth a line in ``import.json`` (e.g. which direction a single G translates).
    """

    overrides: list[str]
    networks: dict[str, Network]
    sources: list[Path]
    official_options: dict[str, Any]
    buffers: dict[str, torch.Tensor] = field(default_factory=dict)
    iteration: int | None = None
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- formats
def available_methods() -> list[str]:
    """The METHODs with a format module (the files in :mod:`imtrans.official.formats`)."""
    from imtrans.official import formats

    return sorted(m.name for m in pkgutil.iter_modules(formats.__path__) if not m.name.startswith("_"))


def get_format(method: str):
    """The format module of ``method``; an OfficialFormatError lists the known ones."""
    known = available_methods()
    if method not in known:
        raise OfficialFormatError(f"unknown METHOD {method!r}; official formats: {', '.join(known)}")
    return importlib.import_module(f"imtrans.official.formats.{method}")


# ----------------------------------------------------------------------------- reading
def read_file(path: Path) -> Any:
    """``torch.load`` of an official file on the CPU, tensors and plain containers only.

    A missing, truncated or non-PyTorch file is one OfficialFormatError naming it.
    """
    path = Path(path)
    if not path.is_file():
        raise OfficialFormatError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise OfficialFormatError(f"{path}: empty file, not a PyTorch checkpoint")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and EOF errors all mean the same to the user
        if is_text_file(path):
            raise OfficialFormatError(f"{path}: not a readable PyTorch checkpoint (a text file)") from None
        raise OfficialFormatError(
            f"{path}: not a readable PyTorch checkpoint (truncated or another format: {load_error(err)})"
        ) from None


def state_dict_in(obj: Any, path: Path, what: str = "") -> dict[str, torch.Tensor]:
    """``obj`` as a plain state dict (``{str: Tensor}``); ``what`` names the entry in the file.

    Only a *leading* ``module.`` (a DataParallel wrapper) is stripped: MUNIT's spectral-norm keys
    hold ``.module.`` in the middle. PyTorch's ``_metadata`` attribute is dropped with the
    container (it would make an old BatchNorm version fail a strict load).
    """
    where = f"{path}" + (f" [{what!r}]" if what else "")
    if not isinstance(obj, Mapping) or not obj:
        raise OfficialFormatError(f"{where}: not a state dict (found {type(obj).__name__})")
    out: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise OfficialFormatError(
                f"{where}: not a state dict (entry {key!r} is a {type(value).__name__}, not a tensor)"
            )
        out[key[len("module.") :] if key.startswith("module.") else key] = value
    return out


def entry(obj: Any, key: str, path: Path, hint: str = "") -> Any:
    """``obj[key]`` of a dict-shaped official file, or an error naming the file and the key."""
    if not isinstance(obj, Mapping):
        raise OfficialFormatError(f"{path}: expected a dict with {key!r}, found a {type(obj).__name__}{hint}")
    if key not in obj:
        keys = list(obj)
        found = ", ".join(repr(k) for k in keys[:8]) + (f", … ({len(keys)} in all)" if len(keys) > 8 else "")
        raise OfficialFormatError(f"{path}: no entry {key!r} (entries: {found}){hint}")
    return obj[key]


def newest(folder: Path, pattern: str, what: str) -> Path:
    """The newest of ``folder/pattern`` by name, as the official resume picks it (a sorted listing,
    zero-padded numbers); an error when there is none."""
    found = sorted(p for p in folder.glob(pattern) if p.is_file())
    if not found:
        raise OfficialFormatError(f"{folder}: no {what} ({pattern}) in this folder")
    return found[-1]


def _is_legacy_stat(key: str, sd: Mapping[str, torch.Tensor]) -> bool:
    """A norm statistic of a layer without affine weight in the file: InstanceNorm(affine=False)
    saved with ``track_running_stats`` (BatchNorm layers of these codes are always affine)."""
    prefix, _, leaf = key.rpartition(".")
    return leaf in LEGACY_STAT_SUFFIXES and f"{prefix}.weight" not in sd


def rename_keys(
    sd: Mapping[str, torch.Tensor],
    rules: Rules,
    path: Path,
    what: str = "",
    ours: Iterable[str] | None = None,
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Official keys to ours by the first rule whose regular expression matches the whole key.

    ``rules``: ``(pattern, replacement)`` pairs, tried in order; a replacement is a
    :func:`re.Match.expand` template (``\\1``) or a function of the match (index arithmetic:
    official layer positions to our block numbers). ``(r"(.*)", r"\\1")`` keeps a key.

    Legacy keys are dropped, as the official loaders drop them (junyanz's
    ``__patch_instance_norm_state_dict``, MUNIT's ``pytorch03_to_pytorch04``): InstanceNorm
    ``running_mean``/``running_var``/``num_batches_tracked`` of old files, when our network
    (``ours``: its state-dict keys) has no such tensor. Any other key that no rule maps, or that
    maps outside ``ours``, is an OfficialFormatError naming the file and the key.

    Returns the renamed state dict and the dropped ``file: key`` names.
    """
    compiled = [(re.compile(p), r) for p, r in rules]
    ours = None if ours is None else set(ours)
    where = f"{path}" + (f" [{what!r}]" if what else "")
    out, dropped = {}, []
    for key, value in sd.items():
        new = None
        for pattern, repl in compiled:
            match = pattern.fullmatch(key)
            if match:
                new = repl(match) if callable(repl) else match.expand(repl)
                break
        if _is_legacy_stat(key, sd) and (new is None or (ours is not None and new not in ours)):
            dropped.append(f"{path.name}{f' [{what}]' if what else ''}: {key}")
            continue
        if new is None or (ours is not None and new not in ours):
            raise OfficialFormatError(f"{where}: unmapped key {key!r} (not a key of this method's networks)")
        if new in out:
            raise OfficialFormatError(f"{where}: keys map twice onto {new!r} (last: {key!r})")
        out[new] = value
    return out, dropped


def load_strict(network: nn.Module, sd: Mapping[str, torch.Tensor], path: Path, name: str) -> None:
    """``network.load_state_dict(sd, strict=True)`` with errors that name the file and key:
    no official tensor left over, none of ours missing, every shape equal."""
    check_state_dict(network, sd, path, name)
    network.load_state_dict(dict(sd), strict=True)


def check_state_dict(network: nn.Module, sd: Mapping[str, torch.Tensor], path: Path, name: str) -> None:
    """The checks of :func:`load_strict` without loading (``network`` may be on the meta device)."""
    ours = network.state_dict()
    for key, value in sd.items():
        if key not in ours:
            raise OfficialFormatError(f"{path}: key {key!r} has no place in imtrans {name} (unmapped key)")
        if tuple(value.shape) != tuple(ours[key].shape):
            raise OfficialFormatError(
                f"{path}: key {key!r} has shape {tuple(value.shape)}, imtrans {name} built from the "
                f"options read has {tuple(ours[key].shape)} (a shape that fits no option)"
            )
    missing = [k for k in ours if k not in sd]
    if missing:
        raise OfficialFormatError(
            f"{path}: {name} lacks {len(missing)} tensor(s) of the model built from its options, "
            f"first {missing[0]!r} (another configuration or method?)"
        )


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ----------------------------------------------------------------------------- writing
def merge_overrides(base: Sequence[str], user: Sequence[str]) -> list[str]:
    """``base`` then ``user`` Hydra overrides, a key given in both taking the user's value
    (Hydra refuses two values for one config group)."""

    def key(o: str) -> str:
        return o.split("=", 1)[0].lstrip("+~")

    users = {key(o) for o in user}
    return [o for o in base if key(o) not in users] + list(user)


def compose(overrides: Sequence[str], out_dir: Path):
    """The imtrans run config for ``overrides``, with its output folder at ``out_dir``."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.errors import HydraException
    from omegaconf import open_dict
    from omegaconf.errors import OmegaConfBaseException

    import imtrans  # noqa: F401  (resolvers)

    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(config_module="imtrans.conf", version_base="1.3"):
            cfg = hydra_compose(config_name="config", overrides=list(overrides), return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as err:
        raise OfficialFormatError(f"config: {str(err).splitlines()[0]}") from None
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(out_dir)
    return cfg


def _trained_networks(module) -> list[str]:
    """Names of the module's children holding parameters that an optimizer updates."""
    owned = {id(p) for params in module.optimizer_groups().values() for p in params}
    return [
        name for name, child in module.named_children() if any(id(p) in owned for p in child.parameters())
    ]


def build_module(imported: Imported, user_overrides: Sequence[str], out_dir: Path):
    """(config, module with the official weights loaded, dropped legacy keys, the overrides that
    built it); nothing written."""
    import hydra

    from imtrans.losses.perceptual import without_loss_networks
    from imtrans.run import _config_dict

    base = list(imported.overrides)
    while True:
        try:
            cfg = compose(merge_overrides(base, user_overrides), out_dir)
            break
        except OfficialFormatError as err:
            # A format's override of a key the chosen data set has not (``data.size`` exists
            # only for the procedural shapes): leave it out; the user's overrides stay as given.
            absent = re.search(r"Could not override '([^']+)'", str(err))
            unused = [o for o in base if absent and o.split("=", 1)[0] == absent.group(1)]
            if not unused:
                raise
            base = [o for o in base if o not in unused]
            imported.notes.append(f"override {unused[0]} left out: the chosen config has no such key")
    # the loss networks (VGG) are not needed to hold weights; a fine-tuning run loads them
    with without_loss_networks():
        try:
            module = hydra.utils.instantiate(cfg.model)
        except Exception as err:
            raise OfficialFormatError(
                f"config: the model does not build: {str(err).splitlines()[0]}"
            ) from None
    dropped: list[str] = []
    for name, official in imported.networks.items():
        network = getattr(module, name, None)
        if not isinstance(network, nn.Module):
            raise OfficialFormatError(f"{type(module).__name__} has no network {name!r} to load")
        where = official.file if not official.what else Path(f"{official.file} [{official.what!r}]")
        sd, gone = rename_keys(
            official.state_dict, official.rules, official.file, official.what, ours=network.state_dict()
        )
        load_strict(network, sd, where, name)
        dropped += gone
    state = module.state_dict()
    for key, value in imported.buffers.items():
        if key not in state or tuple(state[key].shape) != tuple(value.shape):
            raise OfficialFormatError(
                f"buffer {key!r}: shape {tuple(value.shape)} does not fit the module's "
                f"{tuple(state[key].shape) if key in state else 'none'}"
            )
        module.get_buffer(key).copy_(value)
    module.imtrans_config = _config_dict(cfg)
    return cfg, module, dropped, merge_overrides(base, user_overrides)


def lightning_checkpoint(module) -> dict[str, Any]:
    """A checkpoint as a run's ``last.ckpt`` at iteration 0: weights, fresh optimizer and
    scheduler states (``ckpt_path=`` resumes from it), the run config and random streams."""
    import lightning as L

    configured = module.configure_optimizers()
    optimizers, schedulers = configured if isinstance(configured, tuple) else (configured, [])
    optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
    ckpt: dict[str, Any] = {
        "epoch": 0,
        "global_step": 0,
        "pytorch-lightning_version": L.__version__,
        "state_dict": module.state_dict(),
        "loops": None,
        "callbacks": {},
        "optimizer_states": [opt.state_dict() for opt in optimizers],
        "lr_schedulers": [s.state_dict() for s in schedulers],
    }
    module.on_save_checkpoint(ckpt)
    return ckpt


def _write_atomic(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def import_official(
    method: str,
    path: str | os.PathLike,
    out: str | os.PathLike,
    options: Mapping[str, Any] | None = None,
    overrides: Sequence[str] = (),
) -> Path:
    """Import the official checkpoint at ``path`` into the run folder ``out``; returns ``out``.

    Everything is read and checked (and the module built and loaded) before anything is
    written; any problem is an :class:`OfficialFormatError`.
    """
    from omegaconf import OmegaConf

    fmt = get_format(method)
    options = dict(options or {})
    unknown = set(options) - set(fmt.OPTIONS)
    if unknown:
        accepted = ", ".join(fmt.OPTIONS) or "none"
        raise OfficialFormatError(
            f"{method}: unknown importer option(s) {sorted(unknown)}; options: {accepted}"
        )
    path, out = Path(path).expanduser(), Path(out).expanduser()
    if not path.exists():
        raise OfficialFormatError(f"{path}: no such file or folder")
    imported = fmt.read(path, **options)
    _, module, dropped, used_overrides = build_module(imported, overrides, out)
    ckpt = lightning_checkpoint(module)
    trained = _trained_networks(module)
    record = {
        "method": method,
        "imported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "source": str(path.resolve()),
        "files": [
            {"path": str(p.resolve()), "sha256": sha256(p), "bytes": p.stat().st_size}
            for p in imported.sources
        ],
        "official_options": imported.official_options,
        "overrides": used_overrides,
        "networks_imported": sorted(imported.networks),
        "networks_fresh": [n for n in trained if n not in imported.networks],
        "buffers_imported": sorted(imported.buffers),
        "dropped_keys": dropped,
        "official_iteration": imported.iteration,
        "input_kind": module.input_kind,
        "notes": imported.notes,
    }
    ckpt["imtrans_import"] = record

    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    _write_atomic(out / "checkpoints" / "last.ckpt", lambda p: torch.save(ckpt, p))
    _write_atomic(out / "config.yaml", lambda p: OmegaConf.save(module.imtrans_config, p))
    _write_atomic(out / "import.json", lambda p: p.write_text(json.dumps(record, indent=2) + "\n"))
    return out
