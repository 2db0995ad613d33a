"""Shared pieces of the inference tools (``imtrans.translate``, ``imtrans.export``, ``imtrans.data.check``).

Loading for inference (:func:`load_for_inference`)
    A checkpoint or a run directory (``<run>/checkpoints/last.ckpt``) is rebuilt from the config
    stored in it, as :func:`imtrans.load.load_model` does. Generator EMA weights are expected in
    the checkpoint's ``state_dict`` under ``ema.<name>.<parameter>`` where ``<name>`` is a key of
    the method's ``generator_modules()`` (e.g. ``ema.G_A.model.0.conv.weight`` for CycleGAN);
    when present (and ``ema`` is not ``false``) they replace the raw generator weights. The
    ``.safetensors`` file of ``imtrans export formats=safetensors`` is rebuilt the same way.
    Checkpoints are read without running code (:mod:`imtrans.load`); ``trust=true`` on a
    tool's command line reads one's own older files that hold other Python objects.

What a model takes (:func:`spec_of`, :func:`size_multiple`, :func:`train_size`)
    Read from the method's declaration, ``TranslationModule.inference_spec()``
    (:mod:`imtrans.methods.spec`): its tasks (directions or target domains), style codes,
    references, attention maps, label maps, size multiple and fixed size. No tool here names a
    method.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from imtrans.load import load_model, safetensors_ema
from imtrans.methods.base import TranslationModule
from imtrans.methods.spec import InferenceSpec, generator_size_multiple

EMA_PREFIX = "ema."


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file (or ``.safetensors`` file), or ``<run dir>/checkpoints/last.ckpt``;
    FileNotFoundError otherwise."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / "checkpoints" / "last.ckpt"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint (give a .ckpt file or a run directory)")
    return path


def load_for_inference(
    path: str | Path, ema: str | bool = "auto", map_location: str | torch.device = "cpu", trust: bool = False
) -> tuple[TranslationModule, bool]:
    """Rebuild a trained module for inference; returns ``(module in eval mode, EMA used)``.

    ``ema``: ``auto`` uses EMA weights when the checkpoint has them, ``true`` requires them,
    ``false`` ignores them. The chosen weights are put into the generator modules themselves,
    so exporting ``generator_modules()`` exports them too. A ``.safetensors`` file of
    ``imtrans export`` holds one set of generator weights, the EMA ones when its run kept them.
    ``trust``: read a checkpoint holding other Python objects than tensors with full
    unpickling (:mod:`imtrans.load`; the tools' ``trust=true``).
    """
    use = str(ema).lower()
    if use not in ("auto", "true", "false"):
        raise ValueError(f"ema: {ema!r} is not one of auto, true, false")
    ckpt_path = resolve_checkpoint(path)
    model = load_model(ckpt_path, map_location, trust=trust)
    if ckpt_path.suffix == ".safetensors":
        averaged = safetensors_ema(ckpt_path)
        if use != "auto" and (use == "true") != averaged:
            raise ValueError(
                f"ema={use}: {ckpt_path} holds the {'EMA' if averaged else 'raw'} generator weights only; "
                "export the run with the ema= you want"
            )
        return model, averaged
    if use == "true" and model.ema is None:
        raise ValueError(
            f"{ckpt_path}: ema=true but the checkpoint has no '{EMA_PREFIX}<generator>.*' weights"
        )
    used = model.ema is not None and use != "false"
    if used:
        for name, averaged in model.ema.items():
            getattr(model, name).load_state_dict(averaged.state_dict())
    model.ema, model.use_ema = None, False
    return model, used


def run_config(model: TranslationModule) -> dict[str, Any]:
    """The run config stored with the module (``{}`` when unknown)."""
    return dict(model.imtrans_config or {})


def spec_of(model: TranslationModule) -> InferenceSpec:
    """The model's :class:`~imtrans.methods.spec.InferenceSpec`."""
    return model.inference_spec()


def train_size(model: TranslationModule) -> int | None:
    """The square crop the model was trained on (``data.crop_size`` or ``data.size``), if known."""
    data = run_config(model).get("data", {}) or {}
    for key in ("crop_size", "size"):
        if data.get(key):
            return int(data[key])
    return None


def size_multiple(model: nn.Module) -> int:
    """What H and W must be divisible by: the declaration's ``size_multiple`` (modules that
    are not translation methods: 2**(their stride-2 convolutions))."""
    if isinstance(model, TranslationModule):
        return int(model.inference_spec().size_multiple)
    return generator_size_multiple({"": model})


# ---------------------------------------------------------------------- fitting sizes
def padding_for(height: int, width: int, multiple: int) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) padding that makes H and W multiples of ``multiple``, centred."""
    ph = (-height) % multiple
    pw = (-width) % multiple
    return pw // 2, pw - pw // 2, ph // 2, ph - ph // 2


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Pad N x C x H x W symmetrically (reflect, or replicate where reflect cannot) to multiples."""
    pad = padding_for(x.shape[-2], x.shape[-1], multiple)
    if not any(pad):
        return x, pad
    left, right, top, bottom = pad
    reflect_ok = max(left, right) < x.shape[-1] and max(top, bottom) < x.shape[-2]
    return F.pad(x, pad, mode="reflect" if reflect_ok else "replicate"), pad


def unpad(y: torch.Tensor, pad: tuple[int, int, int, int]) -> torch.Tensor:
    left, right, top, bottom = pad
    return y[..., top : y.shape[-2] - bottom, left : y.shape[-1] - right]


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bicubic, antialiased resize of N x C x H x W (or C x H x W) in [-1, 1] to ``size`` = (H, W)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    squeeze = x.dim() == 3
    x = x[None] if squeeze else x
    y = F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(-1, 1)
    return y[0] if squeeze else y


# ---------------------------------------------------------------------- key=value command lines
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


class UsageError(ValueError):
    """A wrong command line: printed as one line, exit status 2."""


def parse_key_values(argv: list[str], spec: dict[str, tuple[type, Any]]) -> dict[str, Any]:
    """``key=value`` arguments (Hydra-like, without the config tree) against ``spec``.

    ``spec``: ``{key: (type, default)}`` with type ``str``, ``int``, ``float`` or ``bool``
    (``true/false``, ``1/0``, ``yes/no``); a default of ``...`` marks a required key; ``null``
    gives None, and so does ``none`` except for string keys with a default (``fit=none``). Unknown keys, repeated keys and missing required keys raise UsageError.
    """
    values: dict[str, Any] = {}
    for arg in argv:
        key, sep, raw = arg.partition("=")
        key = key.strip().lstrip("+")
        if not sep or not key:
            raise UsageError(f"{arg!r}: arguments are key=value (keys: {', '.join(spec)})")
        if key not in spec:
            raise UsageError(f"unknown key {key!r}; keys: {', '.join(spec)}")
        if key in values:
            raise UsageError(f"{key} given twice")
        kind = spec[key][0]
        # "none" is a value of some string keys (fit=none); it means None only for keys whose
        # default is None
        if raw.lower() in ("null", "") or (raw.lower() == "none" and not (kind is str and spec[key][1])):
            values[key] = None
        elif kind is bool:
            if raw.lower() not in _TRUE + _FALSE:
                raise UsageError(f"{key}={raw}: expected true or false")
            values[key] = raw.lower() in _TRUE
        else:
            try:
                values[key] = kind(raw)
            except ValueError:
                raise UsageError(f"{key}={raw}: expected {kind.__name__}") from None
    for key, (_, default) in spec.items():
        if key not in values:
            if default is ...:
                raise UsageError(f"{key}=... is required")
            values[key] = default
    return values


def pick_device(name: str | None) -> torch.device:
    """``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:1``, ..."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device={name}: CUDA is not available on this machine")
    return device
