"""Checks of a run's configuration before any work, each failure one line naming the key.

- :func:`check_values`: sizes, counts and lengths (``iters``, ``data.batch_size``,
  ``trainer.max_epochs``, ...) of the right type and range, before anything is built;
- :func:`override_error`: a mistyped key on the command line (``trainer.max_step=3``) answered
  with the keys that exist, spelled as an override that works;
- :func:`config_differences`: what differs between two runs' model, loss, data and augment
  settings (``ckpt_path=auto`` resumes only a run of the same configuration).

The checks that need the networks or the data (crops the networks cannot take, domain counts)
are the methods' (:meth:`imtrans.methods.base.TranslationModule.check_data`).
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from imtrans.errors import ConfigError

# key -> (rule, what the value means): the sizes, counts and lengths a run reads. ``null`` is
# accepted where the key's default is null (no value: the method's or the data's own).
#   "positive": a whole number >= 1; "count": a whole number >= 0;
#   "limit": a whole number >= 1, or -1 for no limit (Lightning's convention);
#   "fraction": a fraction of the batches in (0, 1], or a whole number of batches >= 0.
VALUE_RULES: dict[str, tuple[str, str]] = {
    "iters": ("positive", "the run's length in iterations (null: by trainer.max_epochs)"),
    "seed": ("integer", "the random seed"),
    "data.batch_size": ("positive", "images per batch and process"),
    "data.num_workers": ("count", "data-loading processes per training process"),
    "data.size": ("positive", "the image size in pixels"),
    "data.load_size": ("positive", "the size images are resized to, in pixels"),
    "data.crop_size": ("positive", "the training crop size in pixels"),
    "data.num_fixed": ("count", "the fixed images of the sample grids"),
    "data.train_size": ("positive", "the number of training images"),
    "data.val_size": ("positive", "the number of validation images"),
    "data.test_size": ("positive", "the number of test images"),
    "data.val_from_train": ("count", "the training items of each domain held out as the val split"),
    "trainer.max_epochs": ("limit", "the run's length in epochs"),
    "trainer.max_steps": ("limit", "the run's length in optimizer steps"),
    "trainer.devices": ("devices", "devices per node"),
    "trainer.num_nodes": ("positive", "nodes"),
    "trainer.log_every_n_steps": ("positive", "iterations between logged losses"),
    "trainer.check_val_every_n_epoch": ("positive", "epochs between validations"),
    "trainer.limit_val_batches": ("fraction", "the validation batches per evaluation"),
    "trainer.limit_test_batches": ("fraction", "the test batches"),
}

_RANGES = {
    "positive": "a whole number of at least 1",
    "count": "a whole number, 0 or more",
    "integer": "a whole number",
    "limit": "a whole number of at least 1, or -1 for no limit",
    "fraction": "a fraction in (0, 1] of the batches or a whole number of them",
    "devices": "a whole number of at least 1, a list of device indices, or auto",
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _valid(rule: str, value: Any) -> bool:
    if rule == "integer":
        return _is_int(value)
    if rule == "positive":
        return _is_int(value) and value >= 1
    if rule == "count":
        return _is_int(value) and value >= 0
    if rule == "limit":
        return _is_int(value) and (value >= 1 or value == -1)
    if rule == "fraction":
        if _is_int(value):
            return value >= 0
        return isinstance(value, float) and 0.0 < value <= 1.0
    if rule == "devices":
        if value == "auto" or (_is_int(value) and (value >= 1 or value == -1)):
            return True
        return isinstance(value, (list, tuple)) and len(value) > 0 and all(_is_int(v) for v in value)
    raise ValueError(rule)


def check_values(cfg: DictConfig) -> None:
    """Every key of :data:`VALUE_RULES` that the config has is of its type and range, else one
    :class:`~imtrans.errors.ConfigError` such as ``data.batch_size=-1: images per batch and
    process must be a whole number of at least 1``. Null is accepted (the default of the optional ones)."""
    for key, (rule, meaning) in VALUE_RULES.items():
        value = OmegaConf.select(cfg, key, default=None)
        if value is None:
            continue
        if OmegaConf.is_config(value):  # a list (trainer.devices=[0,1]) or a mapping
            value = OmegaConf.to_object(value)
        if not _valid(rule, value):
            shown = repr(value) if isinstance(value, str) else value
            raise ConfigError(f"{key}={shown}: {meaning} must be {_RANGES[rule]}")


# ---------------------------------------------------------------------------- typo hints
def _target_parameters(node: Any) -> list[str]:
    """The keyword arguments the node's ``_target_`` accepts (a Lightning Trainer's
    ``max_steps``), which a config may add with ``+key=value``."""
    target = node.get("_target_") if isinstance(node, Mapping | DictConfig) else None
    if not isinstance(target, str):
        return []
    from hydra.utils import get_object

    try:
        obj = get_object(target)
        params = inspect.signature(obj).parameters
    except Exception:  # an import that fails here fails again, with its own message, at the run
        return []
    return [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def override_error(cfg: DictConfig, key: str, value: str) -> str | None:
    """One line for an override ``key=value`` whose key the config does not have, with the
    closest keys spelled as overrides that work: ``trainer.max_steps`` is a parameter of
    Lightning's Trainer that the preset does not set, hence ``+trainer.max_steps=3``.
    None when ``key``'s parent is not in the config (nothing to suggest from)."""
    parent_key, _, leaf = key.rpartition(".")
    parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
    if not isinstance(parent, DictConfig):
        return None
    existing = [str(k) for k in parent.keys()]
    addable = [p for p in _target_parameters(parent) if p not in existing]
    prefix = f"{parent_key}." if parent_key else ""
    close = difflib.get_close_matches(leaf, existing + addable, n=3, cutoff=0.6)
    where = f"{parent_key} has no key {leaf!r}" if parent_key else f"the config has no key {leaf!r}"
    if close:
        spelled = [f"{'' if c in existing else '+'}{prefix}{c}={value}" for c in close]
        return f"{key}={value}: {where}; did you mean {' or '.join(spelled)}?"
    keys = ", ".join(sorted(existing)[:20])
    adds = f"; a parameter of its _target_ is added with +{key}=..." if addable else ""
    return f"{key}={value}: {where} (it has {keys}){adds}"


# ---------------------------------------------------------------------------- same configuration
#: the groups whose settings make two runs the same training (``ckpt_path=auto``)
COMPARED_GROUPS = ("model", "loss", "data", "augment")
#: keys that change how fast a run goes or where its files are, not what it trains; and the
#: model's copies of the loss and augment groups (compared as groups)
UNCOMPARED_KEYS = frozenset({"data.num_workers", "data.verify", "model.detect_nonfinite"})
UNCOMPARED_PREFIXES = ("model.loss.", "model.augment.")


def _flatten(obj: Any, prefix: str) -> dict[str, Any]:
    if isinstance(obj, Mapping):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: obj}


def config_differences(ours: Mapping, theirs: Mapping) -> list[str]:
    """``key: theirs -> ours`` for every setting of :data:`COMPARED_GROUPS` that the sibling's
    config (``theirs``) has and that differs in ours (both resolved plain dicts, as
    ``config.yaml`` holds them)."""
    a = {k: v for g in COMPARED_GROUPS for k, v in _flatten(theirs.get(g), g).items()}
    b = {k: v for g in COMPARED_GROUPS for k, v in _flatten(ours.get(g), g).items()}
    # a key only ours has is a setting added to imtrans after the sibling ran: the sibling ran
    # without it (as its default does), so it does not count
    keys = sorted(
        k
        for k in a
        if k not in UNCOMPARED_KEYS and not k.startswith(UNCOMPARED_PREFIXES) and a.get(k) != b.get(k)
    )
    return [f"{k}: {a.get(k, '(absent)')} -> {b.get(k, '(absent)')}" for k in keys]


# ---------------------------------------------------------------------------- the command line
def check_command_line(argv: list[str]) -> str | None:
    """The first mistake of a run's command line in one line, or None, before Hydra creates the
    run folder: an override of a key the config lacks (with the keys that exist, as overrides
    that work), a config group option that does not exist (with the closest), or a value of
    :data:`VALUE_RULES` out of its range.

    Sweeps (``--multirun``) and Hydra's own flags (``--cfg``, ``--help``, another config) are
    left to Hydra: their overrides are lists and sweeps, checked job by job by :func:`check_values`.
    """
    if any(arg.startswith("-") for arg in argv):
        return None
    from hydra import compose, initialize_config_module
    from hydra.errors import ConfigCompositionException, MissingConfigException

    with initialize_config_module("imtrans.conf", version_base="1.3"):
        try:
            cfg = compose("config", overrides=argv, return_hydra_config=True)
        except MissingConfigException as err:
            return _missing_option(err, argv)
        except ConfigCompositionException as err:
            return _failed_override(err, argv, compose)
        except Exception:  # anything else: Hydra reports it as it does
            return None
        try:
            check_values(cfg)
            for group in ("data", "model", "loss"):  # the resolvers that derive network depths
                OmegaConf.to_container(cfg.get(group), resolve=True)
        except ConfigError as err:
            return str(err)
        except Exception as err:  # noqa: BLE001 - an interpolation Hydra reports, unless it is ours
            cause = resolver_error(err)
            if cause is not None:
                return str(cause)
    return None


def resolver_error(err: BaseException) -> ConfigError | None:
    """The :class:`~imtrans.errors.ConfigError` that one of imtrans's resolvers raised (a crop
    size a U-Net cannot take), which OmegaConf wraps as the context of its interpolation error."""
    from omegaconf.errors import OmegaConfBaseException

    seen = 0
    while isinstance(err, OmegaConfBaseException) and seen < 10:
        err = err.__cause__ or err.__context__
        seen += 1
    return err if isinstance(err, ConfigError) else None


def _missing_option(err, argv: list[str]) -> str | None:
    """``model=cycelgan``: the options of the group, the closest first."""
    options = [str(o) for o in (getattr(err, "options", None) or [])]
    missing = str(getattr(err, "missing_cfg_file", "") or "")
    group, _, option = missing.rpartition("/")
    if not options or not group:
        return None
    close = difflib.get_close_matches(option, options, n=1, cutoff=0.5)
    hint = f"did you mean {group}={close[0]}? " if close else ""
    return f"{group}={option}: no such {group} config; {hint}(options: {', '.join(sorted(options))})"


def _failed_override(err, argv: list[str], compose) -> str | None:
    """``trainer.max_step=3``: the key that could not be set, and the keys to use instead."""
    import re

    found = re.search(r"Could not override '([^']+)'", str(err))
    if not found:
        return None
    key = found.group(1)
    value = next((a.partition("=")[2] for a in argv if a.partition("=")[0] == key), "...")
    others = [a for a in argv if a.partition("=")[0] != key]
    try:
        cfg = compose("config", overrides=others, return_hydra_config=True)
    except Exception:
        return None
    return override_error(cfg, key, value)
