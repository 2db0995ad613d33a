"""Evaluate outside training, with the same protocols and code as the training callback.

    python -m imtrans.evaluate ckpt=outputs/run/checkpoints/last.ckpt [split=test] [data=... data.root=...]
    python -m imtrans.evaluate fake=translated/ real=reference/          # FID and KID
    python -m imtrans.evaluate samples=samples/                          # LPIPS diversity

Common keys: ``metrics.protocol=<quick|munit|bicyclegan|stargan_v2|cut>`` (or ``metrics=<name>``),
``metrics.fid_impl=<torch_fidelity|pytorch_fid|clean|stargan_v2>`` (the FID lineage: whose code's
FID and KID to reproduce, see ``imtrans.metrics.lineages``; default: the protocol's), any other
``metrics.<key>=...`` of the ``metrics`` config group (``metrics.weights_dir=...``,
``+metrics.overrides.num_inputs=50``), ``out=<file.json>`` (default ``evaluation.json``),
``device=cpu|cuda``, ``trust=true`` (read a ``ckpt`` holding Python objects other than tensors
with full unpickling, which runs any code in it: only for one's own older files; see
:mod:`imtrans.load`).

- ``ckpt``: a run directory or checkpoint (or the ``.safetensors`` file of ``imtrans export
  formats=safetensors``); the model and, unless ``data=``/``data.*`` say
  otherwise, the data set come from the checkpoint's own config. So does the protocol: the run's
  own ``metrics`` config (its ``protocol``, ``fid_impl``, protocol ``overrides`` and score switches
  ``fid``, ``kid``, ``lpips``, ``paired``, ``shapes``), unless ``metrics=<name>`` is given; ``metrics.*``
  keys of the command line apply on top of it. Every direction of the method is scored
  (``directions=a2b`` picks), on ``split`` (default: the protocol's, ``test``).
- ``fake`` / ``real``: two folders of images (png, jpg, jpeg; not recursive; sorted by path, as
  torch-fidelity reads them), decoded by PIL as RGB and given to the lineage's network as the
  lineage's package reads them: the same FID as ``python -m pytorch_fid real fake``
  (``metrics.fid_impl=pytorch_fid``) or clean-fid's ``compute_fid`` (``metrics.fid_impl=clean``)
  when the images are at the protocol's ``image_size`` (or it has none, as ``quick``), which
  they are otherwise resized to first.
- ``samples``: what ``imtrans.translate ... num_samples=S output=<folder>`` writes: files
  ``<input>_<task>_<k>.png`` (k = 0 .. S-1; ``<task>`` a direction or a target domain), in
  sub-folders mirroring the input folder, searched recursively; one input is one (sub-folder,
  input, task). Its grid, attention and interpolation files are skipped. Also read: flat files
  ``<input>_<k>.png``, and sub-folders holding one input's samples under names without ``_``
  (``in0/000.png``, ``in0/001.png``, ...). Pairs follow the protocol's pairing; each input needs
  the protocol's ``samples_per_input`` samples (the first ones are used; with fewer, one line
  says how many more to write, or which ``metrics.overrides`` key scores fewer). Scores:
  ``lpips_div`` over every input, and ``<task>/lpips_div`` per task when there are several.

Prints which protocol is used and where it came from, a table, and writes a JSON file with the
scores, the protocol record and any notice. Exit status: 0 on success, 2 with one line on stderr
for a wrong command line, a checkpoint or folder that cannot be read, too few samples, or a
metric weight file that is not the published one (its SHA-256 differs: delete it and download
it again).
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from imtrans.metrics.evaluator import (
    Evaluator,
    evaluate_domain_tasks,
    evaluate_module_direction,
    module_domain_names,
)
from imtrans.metrics.protocols import get_protocol

OWN_KEYS = ("ckpt", "fake", "real", "samples", "out", "split", "device", "directions", "trust")
IMAGE_EXTS = (".png", ".jpg", ".jpeg")
HELP = "see python -m imtrans.evaluate --help"

#: What ``imtrans.translate`` writes beside the samples (``grid=true``, ``attention=true``,
#: ``interpolate=k``): ``<input>_<task>_<suffix>.png`` (and ``_interp.gif``), never samples.
EXTRA_SUFFIXES = {"_grid": "grid", "_attention": "attention", "_interp": "interpolation"}

#: The keys of a run's stored ``metrics`` config that decide its scores. The others
#: (``weights_dir``, ``download``, ``batch_size``, ...) describe the machine that trained, so
#: this command's own values are kept for them.
RUN_METRICS_KEYS = ("protocol", "fid_impl", "overrides", "fid", "kid", "lpips", "paired", "shapes")


class UsageExit(SystemExit):
    """A mistake the user can fix: one line on stderr (printed by :func:`main`), exit status 2.

    ``str()`` is the message, so callers (and tests) read it as from ``SystemExit(message)``;
    the status is 2, as for the other imtrans tools, where ``SystemExit(message)`` gives 1.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).splitlines()))
        self.code = 2


def fail(message: str) -> UsageExit:
    """The :class:`UsageExit` for ``message``, prefixed with the tool's name (``raise fail(...)``)."""
    return UsageExit(f"imtrans.evaluate: {message}")


def _split_args(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    own, overrides = {}, []
    for arg in argv:
        key, eq, value = arg.partition("=")
        if not eq:
            raise fail(f"arguments are key=value, got {arg!r} ({HELP})")
        if key in OWN_KEYS:
            own[key] = value
        else:
            overrides.append(arg)
    return own, overrides


def _override_key(override: str) -> str:
    """The config key a Hydra override sets: ``+metrics.overrides.x=1`` -> ``metrics.overrides.x``."""
    return override.partition("=")[0].lstrip("+~")


def compose_run_config(overrides: list[str]):
    """The imtrans config with ``overrides`` (the ``metrics`` group added if the defaults lack it).

    Hydra's composition errors (an unknown group option, a key that does not exist) become one
    line (:class:`UsageExit`).
    """
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    import imtrans  # noqa: F401  (resolvers)

    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(config_module="imtrans.conf", version_base="1.3"):
            base = compose(config_name="config")
            if "metrics" not in base:
                choice = next(
                    (o.split("=", 1)[1] for o in overrides if _override_key(o) == "metrics"), "quick"
                )
                overrides = [o for o in overrides if _override_key(o) != "metrics"] + [f"+metrics={choice}"]
            cfg = compose(config_name="config", overrides=overrides, return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as err:
        raise fail(f"{type(err).__name__}: {err}") from None
    HydraConfig.instance().set_config(cfg)
    return cfg


def command_line_source(cfg, overrides: list[str]) -> str:
    """Where the composed ``metrics`` config came from, in words (no checkpoint involved)."""
    keys = [_override_key(o) for o in overrides]
    choices = cfg.hydra.runtime.choices if "hydra" in cfg else {}
    group = choices.get("metrics", "quick")
    if "metrics" in keys:
        return f"metrics={group} on the command line"
    on_top = (
        ", with the command line's metrics.* on top" if any(k.startswith("metrics.") for k in keys) else ""
    )
    return f"the default metrics group ({group}){on_top}"


def apply_run_metrics(cfg, stored: Any, overrides: list[str], ckpt: str) -> str:
    """Put the run's own ``metrics`` config (``stored``, from the checkpoint) into ``cfg.metrics``
    where the command line does not decide; returns where the protocol came from, in words.

    The command line decides everything with ``metrics=<name>``, and the keys it sets with
    ``metrics.<key>=`` (and below them); the run's config gives the rest of
    :data:`RUN_METRICS_KEYS`. A run without a metrics config (``metrics=none``, an older or
    imported checkpoint) is scored with the composed default.
    """
    from omegaconf import open_dict

    keys = [_override_key(o) for o in overrides]
    if "metrics" in keys:
        return command_line_source(cfg, overrides)
    if not isinstance(stored, dict) or not stored.get("protocol"):
        return f"{command_line_source(cfg, overrides)}; the checkpoint {ckpt} stores no metrics protocol"
    dotted = [k for k in keys if k.startswith("metrics.")]

    def given(key: str) -> bool:  # the command line sets key, a key below it or one above it
        return any(k == key or k.startswith(key + ".") or key.startswith(k + ".") for k in dotted)

    with open_dict(cfg.metrics):
        for key in RUN_METRICS_KEYS:
            if key not in stored:
                continue
            if key == "overrides":  # field by field: a command-line field replaces only itself
                if cfg.metrics.get("overrides") is None:
                    cfg.metrics.overrides = {}
                for name, value in (stored["overrides"] or {}).items():
                    if not given(f"metrics.overrides.{name}"):
                        cfg.metrics.overrides[name] = value
            elif not given(f"metrics.{key}"):
                cfg.metrics[key] = stored[key]
    on_top = ", with the command line's metrics.* on top" if dotted else ""
    return f"the run's config in {ckpt} (metrics.protocol={stored['protocol']}){on_top}"


def build_evaluator(metrics_cfg, device: str) -> Evaluator:
    """An :class:`Evaluator` from a ``metrics`` config node (the callback's arguments).

    An unknown protocol or protocol field, or an invalid value, is one line (:class:`UsageExit`).
    """
    from omegaconf import OmegaConf, open_dict

    node = metrics_cfg.copy()
    with open_dict(node):
        node.pop("best_checkpoint", None)
    m = OmegaConf.to_container(node, resolve=True)
    try:
        protocol = get_protocol(m.get("protocol", "quick"), m.get("overrides") or {}, m.get("fid_impl"))
    except (KeyError, TypeError, ValueError) as err:  # ConfigError is a ValueError
        raise fail(err.args[0] if err.args else repr(err)) from None
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
        raise fail(f"{folder}: no such folder")
    files = sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS),
        key=lambda p: os.path.realpath(p),
    )
    if not files:
        raise fail(f"{folder}: no png/jpg images")
    return files


def read_image(path: Path) -> torch.Tensor:
    """uint8 3 x H x W (RGB)."""
    try:
        with Image.open(path) as img:
            return torch.from_numpy(np.asarray(img.convert("RGB")).transpose(2, 0, 1).copy())
    except (OSError, ValueError) as err:  # truncated, corrupt, not an image
        raise fail(f"{path}: cannot be read as an image ({err})") from None


# ---------------------------------------------------------------------- sample folders
@dataclass
class SampleSet:
    """The samples found under a ``samples=`` folder.

    ``groups``: one entry per input, ``"<sub-folder>/<input>_<task>"`` (``"<sub-folder>/"`` for
    a folder holding one input's samples) -> its sample files, sample 0 first. ``skipped``:
    kind (``grid``, ``attention``, ``interpolation``, ``single``) -> how many files were left out.
    """

    groups: dict[str, list[Path]] = field(default_factory=dict)
    skipped: Counter = field(default_factory=Counter)

    def tasks(self) -> dict[str, list[str]] | None:
        """Task -> its inputs (keys of ``groups``) when every input's name ends in ``_<task>``
        (``<task>`` not a number) and there are at least two tasks; None otherwise.

        The task is the name's last ``_`` part, so a domain name with ``_`` in it is read as its
        last part; this only splits the scores, never the samples of an input.
        """
        tasks: dict[str, list[str]] = defaultdict(list)
        for key in self.groups:
            stem, sep, task = key.rpartition("/")[2].rpartition("_")
            if not (sep and stem and task) or task.isdigit():
                return None
            tasks[task].append(key)
        return dict(sorted(tasks.items())) if len(tasks) > 1 else None

    def skipped_line(self) -> str | None:
        """One line saying what was skipped, or None."""
        if not self.skipped:
            return None
        names = {"single": "single output(s) beside numbered samples of the same input"}
        parts = [f"{n} {names.get(kind, kind)}" for kind, n in sorted(self.skipped.items())]
        total = sum(self.skipped.values())
        return f"imtrans.evaluate: skipped {total} file(s) that are not samples: {', '.join(parts)}"


def find_samples(folder: str | os.PathLike) -> SampleSet:
    """Group the sample files under ``folder`` (recursively) per input; see the module docstring.

    A file named ``<key>_<k>`` (k digits) is sample k of input ``<key>`` of its folder (translate's
    ``<input>_<task>_<k>``, or a flat ``<input>_<k>``); another name with ``_`` is the one output
    of an input (translate's ``<input>_<task>`` with S = 1); a name without ``_`` in a sub-folder
    is one sample of that folder's input (one folder per input). Grid, attention and
    interpolation files (``*_grid.png``, ``*_attention.png``, ``*_interp.png``/``.gif``) are
    skipped; so is an S = 1 output whose input also has numbered samples (an earlier translate
    into the same folder). Hidden files and folders are ignored.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise fail(f"samples={folder}: no such folder")
    numbered: dict[str, dict[int, Path]] = defaultdict(dict)
    singles: dict[str, Path] = {}
    per_folder: dict[str, list[Path]] = defaultdict(list)
    found = SampleSet()
    for path in sorted(folder.rglob("*"), key=str):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        ext = path.suffix.lower()
        extra = next((kind for end, kind in EXTRA_SUFFIXES.items() if path.stem.endswith(end)), None)
        if extra and ext in (*IMAGE_EXTS, ".gif"):
            found.skipped[extra] += 1
            continue
        if ext not in IMAGE_EXTS:
            continue
        sub = "" if rel.parent == Path(".") else f"{rel.parent.as_posix()}/"
        key, sep, k = path.stem.rpartition("_")
        if sep and key and k.isdigit():
            samples = numbered[sub + key]
            if int(k) in samples:
                raise fail(f"{path}: sample {int(k)} of {sub + key} is also {samples[int(k)]}")
            samples[int(k)] = path
        elif "_" in path.stem:
            singles[sub + path.stem] = path
        elif sub:
            per_folder[sub].append(path)
        else:
            raise fail(
                f"{path}: not a sample name; expected <input>_<task>_<k>{ext} (imtrans.translate), "
                f"<input>_<k>{ext}, or one sub-folder per input"
            )
    groups = {key: [samples[k] for k in sorted(samples)] for key, samples in numbered.items()}
    for key, path in singles.items():
        if key in groups:
            found.skipped["single"] += 1
        else:
            groups[key] = [path]
    for sub, paths in per_folder.items():
        groups[sub] = sorted(paths, key=lambda p: os.path.realpath(p))
    found.groups = dict(sorted(groups.items()))
    return found


def check_sample_counts(found: SampleSet, protocol, folder: str) -> int:
    """The samples per input the protocol's pairing reads (0: none); too few is one line
    (:class:`UsageExit`) naming the numbers and the two fixes: more samples at translate, or the
    protocol override that reads fewer (recorded with the scores)."""
    pairs = protocol.pairs
    need = max(max(p) for p in pairs) + 1 if pairs else 0
    short = {key: len(paths) for key, paths in found.groups.items() if len(paths) < need}
    if not short:
        return need
    have = min(short.values())
    example = min(short, key=short.get)
    fix = f"write {need} per input (num_samples={need} at imtrans.translate)"
    # the most samples the pairing can use among those present: disjoint pairs need an even number
    fewer = have - have % 2 if protocol.pairing == "disjoint" else have
    if fewer >= 2:
        lower = f"+metrics.overrides.samples_per_input={fewer}"
        if protocol.fid_samples_per_input > fewer:
            lower += f" +metrics.overrides.fid_samples_per_input={fewer}"
        fix += f", or score {fewer} per input with {lower} (recorded as a protocol override)"
    raise fail(
        f"samples={folder}: protocol {protocol.name} needs {need} samples per input "
        f"(pairing {protocol.pairing}), found {have} for {len(short)} of {len(found.groups)} input(s) "
        f"(e.g. {example}); {fix}"
    )


def read_group(name: str, paths: list[Path]) -> torch.Tensor:
    """The samples of one input as S x 3 x H x W uint8; samples of different sizes are one line."""
    images = [read_image(p) for p in paths]
    sizes = {tuple(im.shape[1:]) for im in images}
    if len(sizes) > 1:
        raise fail(f"{paths[0].parent}: the samples of {name} differ in size ({sorted(sizes)})")
    return torch.stack(images)


def sample_groups(folder: str | os.PathLike, count: int | None = None) -> list[torch.Tensor]:
    """One S x 3 x H x W uint8 tensor per input of :func:`find_samples` (its first ``count``
    samples when given)."""
    return [read_group(name, paths[:count]) for name, paths in find_samples(folder).groups.items()]


def score_samples(ev: Evaluator, found: SampleSet, need: int) -> dict[str, float]:
    """LPIPS diversity over every input, and per task (``<task>/lpips_div``) when the folder
    holds several (translate writes every task of a model by default: both directions, every
    target domain); only the first ``need`` samples of each input are read."""
    if not need:
        return {}
    tasks = found.tasks()
    if tasks is None:
        return ev.diversity([read_group(k, paths[:need]) for k, paths in found.groups.items()])
    scores: dict[str, float] = {}
    total = weighted = 0.0
    for task, keys in tasks.items():
        part = ev.diversity([read_group(k, found.groups[k][:need]) for k in keys])
        if not part:  # LPIPS weights missing (the notice said so)
            return {}
        scores.update({f"{task}/{name}": value for name, value in part.items()})
        # every input adds the same number of pairs: the mean over all is the input-weighted mean
        total += part["n_inputs"]
        weighted += part["n_inputs"] * part["lpips_div"]
    return {"lpips_div": weighted / total, "n_inputs": total, **scores}


# ---------------------------------------------------------------------- checkpoints
def load_checkpoint(spec: str, device: str, trust: bool = False):
    """The module of ``ckpt=`` (a checkpoint file or a run folder); every way it can fail to be
    read (missing, not a checkpoint, corrupt, from an incompatible version, holding Python
    objects that would run code unless ``trust``: :mod:`imtrans.load`) is one line."""
    from imtrans.load import load_model

    path = Path(spec).expanduser()
    if path.is_dir():
        last = path / "checkpoints" / "last.ckpt"
        if not last.is_file():
            others = sorted((path / "checkpoints").glob("*.ckpt")) if (path / "checkpoints").is_dir() else []
            hint = (
                f"it has {', '.join(p.name for p in others)}: give ckpt={others[0]}"
                if others
                else "give a run folder of imtrans.run or a .ckpt file"
            )
            raise fail(f"ckpt={spec}: {last} not found; {hint}")
        path = last
    elif not path.is_file():
        raise fail(f"ckpt={spec}: no such file or folder")
    from imtrans.errors import CheckpointError

    try:
        return load_model(path, map_location=device, trust=trust).to(device)
    except CheckpointError as err:  # empty, unreadable, not imtrans's, weights that do not fit
        raise fail(str(err).replace(f"ckpt={path}", f"ckpt={spec}", 1)) from None
    except Exception as err:  # noqa: BLE001  (a config the installed imtrans cannot build)
        first = next(iter(str(err).splitlines()), "")
        raise fail(
            f"ckpt={spec}: {path} cannot be read as an imtrans checkpoint ({type(err).__name__}: {first})"
        ) from None


def evaluate_checkpoint(
    ev: Evaluator, model, ckpt: str, cfg, own: dict, overrides: list[str]
) -> dict[str, Any]:
    import hydra
    from omegaconf import OmegaConf

    if any(_override_key(o) == "data" for o in overrides) or not (model.imtrans_config or {}).get("data"):
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
            raise fail(
                f"directions={own['directions']}: the model translates {model.directions}, not {direction}"
            )
        paired = bool(getattr(dm, "paired", False))
        result = evaluate_module_direction(ev, model, direction, inputs, reference, ref_split, paired)
        if result is not None:
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


# ---------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the command line ``argv``; returns the result written to ``out``.

    A user's mistake raises :class:`UsageExit` (exit status 2) after printing its line to stderr.
    """
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        raise SystemExit(0 if argv else 2)
    try:
        return _main(argv)
    except UsageExit as err:
        print(err, file=sys.stderr)
        raise


def _main(argv: list[str]) -> dict[str, Any]:
    from imtrans.data.errors import DataError
    from imtrans.errors import ConfigError
    from imtrans.pretrained import WeightsMismatchError

    own, overrides = _split_args(argv)
    modes = [k for k in ("ckpt", "fake", "samples") if k in own]
    if len(modes) != 1 or ("fake" in own) != ("real" in own):
        raise fail(f"give exactly one of ckpt=, fake= with real=, samples= ({HELP})")
    device = own.get("device", "cuda" if torch.cuda.is_available() else "cpu")
    # the checkpoint first: a wrong path fails at once, and its config chooses the protocol
    trust = own.get("trust", "false").lower()
    if trust not in ("true", "false"):
        raise fail(f"trust={own['trust']}: expected true or false")
    model = load_checkpoint(own["ckpt"], device, trust == "true") if "ckpt" in own else None
    cfg = compose_run_config(overrides)
    if model is not None:
        stored = (model.imtrans_config or {}).get("metrics")
        source = apply_run_metrics(cfg, stored, overrides, own["ckpt"])
    else:
        source = command_line_source(cfg, overrides)
    ev = build_evaluator(cfg.metrics, device)
    print(f"imtrans.evaluate: protocol {ev.protocol.name}, from {source}")

    found = need = None
    if "samples" in own:  # counted before any network loads: too few samples fail at once
        found = find_samples(own["samples"])
        if line := found.skipped_line():
            print(line)
        if not found.groups:
            raise fail(f"samples={own['samples']}: no samples found")
        need = check_sample_counts(found, ev.protocol, own["samples"])
    try:
        ev.prepare()  # a weight file that is not the published one: no score from it
    except WeightsMismatchError as err:
        raise fail(str(err)) from None

    try:
        if model is not None:
            result = evaluate_checkpoint(ev, model, own["ckpt"], cfg, own, overrides)
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
            if not need:
                ev.notices.append(
                    f"imtrans.evaluate: protocol {ev.protocol.name} pairs no samples (pairing "
                    f"{ev.protocol.pairing}): no LPIPS diversity"
                )
                print(ev.notices[-1], file=sys.stderr)
            result = {"mode": "samples", "samples": own["samples"], "scores": score_samples(ev, found, need)}
    except (DataError, ConfigError, WeightsMismatchError) as err:  # the run's data not here, a bad data.* key
        raise fail(str(err)) from None

    # the lineage behind every "fid" and "kid" above, its weights file, and the older name of its network
    result["fid_impl"] = ev.protocol.fid_impl
    result["fid_weights"] = str(ev.paths[ev.fid_key]) if ev.paths.get(ev.fid_key) else None
    result["fid_features"] = ev.protocol.fid_features
    result["protocol"] = ev.protocol.record()
    result["protocol_source"] = source
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
