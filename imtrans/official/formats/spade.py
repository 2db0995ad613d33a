"""SPADE / GauGAN checkpoints of NVlabs/SPADE.

The official code saves one raw state dict per network in ``checkpoints/<name>/``:
``<epoch>_net_G.pth`` (``SPADEGenerator``), ``<epoch>_net_D.pth`` (``MultiscaleDiscriminator``)
and, with ``--use_vae``, ``<epoch>_net_E.pth`` (``ConvEncoder``); ``<epoch>`` is ``latest`` or an
epoch number. ``train.py`` also writes ``opt.txt`` (every option, one per line) and ``iter.txt``
(epoch, epoch_iter). The published ``checkpoints/{cityscapes,ade20k,coco}_pretrained/`` hold
``latest_net_G.pth`` alone: D (and E) then start fresh. No optimizer states are saved.

The keys are imtrans' (:mod:`imtrans.nets.spade` mirrors the official modules), spectral norm
included: ``weight_orig`` / ``weight_u`` / ``weight_v`` are loaded as stored, and eval mode uses
the stored u, v without a power iteration, as the official test does. SPADE's parameter-free
BatchNorm keeps ``num_batches_tracked`` 0 (SynchronizedBatchNorm2d never counts); it is loaded as
it is (our BatchNorm uses momentum 0.1, never that count).

Read from the tensors: ngf, semantic_nc (G input channels), SPADE's hidden width and kernel, the
param-free norm (running statistics: batch), spectral norm, use_vae (``fc`` a Linear) and z_dim,
``most`` (an ``up_4`` block), output_nc; ndf, n_layers_D, num_D and the norm of D; E's width and
layers. Not in the files, so taken from the options below, else from the folder's ``opt.txt``
(which states them all), else from the ``dataset_mode`` presets of the official dataset classes:

- ``num_upsampling_layers``: normal and more hold the same tensors (Cityscapes is ``more``); a
  VAE generator tells it from its ``fc`` size when crop_size and aspect_ratio are known;
- ``crop_size`` and ``aspect_ratio``: the latent size and so the output size;
- how semantic_nc splits into ``label_nc``, the dontcare channel and the instance-edge channel.

An option that contradicts ``opt.txt`` or the tensors is refused in one line, as is an option
that is needed and missing: nothing is guessed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from imtrans.official import (
    IDENTITY,
    Imported,
    Network,
    OfficialFormatError,
    check_state_dict,
    read_file,
    state_dict_in,
)
from imtrans.official.formats.pix2pixhd import read_iter
from imtrans.official.layers import find_snapshot, indices, tensor

OPTIONS = {
    "epoch": "which snapshot of a checkpoint folder: latest (default) or an epoch number",
    "dataset_mode": "cityscapes, ade20k or coco: the official dataset defaults for the options below",
    "num_upsampling_layers": "normal, more (Cityscapes) or most: not in a generator file",
    "crop_size": "the official --crop_size (with aspect_ratio, the output size): not in the files",
    "aspect_ratio": "the official --aspect_ratio (width / height; Cityscapes 2.0)",
    "label_nc": "number of label classes (the G input is label_nc + dontcare + instance channels)",
    "contain_dontcare_label": "true or false: whether the labels have the dontcare channel (id label_nc)",
    "no_instance": "true or false: whether the G input lacks the instance-edge channel",
}
NETWORKS = ("G", "D", "E")
#: our module's attribute per official network (the method imtrans.methods.spade.SPADE)
ATTRIBUTES = {"G": "netG", "D": "netD", "E": "netE"}
#: the options that are not in the tensors
UNREAD = (
    "label_nc",
    "contain_dontcare_label",
    "no_instance",
    "num_upsampling_layers",
    "crop_size",
    "aspect_ratio",
)
#: what the official dataset classes set (data/{cityscapes,ade20k,coco}_dataset.py,
#: modify_commandline_options; test-time values)
DATASETS = {
    "cityscapes": dict(
        label_nc=35,
        contain_dontcare_label=False,
        no_instance=False,
        num_upsampling_layers="more",
        crop_size=512,
        aspect_ratio=2.0,
    ),
    "ade20k": dict(
        label_nc=150,
        contain_dontcare_label=True,
        no_instance=True,
        num_upsampling_layers="normal",
        crop_size=256,
        aspect_ratio=1.0,
    ),
    "coco": dict(
        label_nc=182,
        contain_dontcare_label=True,
        no_instance=False,
        num_upsampling_layers="normal",
        crop_size=256,
        aspect_ratio=1.0,
    ),
}
#: the official defaults of the training-only network options (a fresh D when no D file is there)
D_DEFAULTS = {"ndf": 64, "n_layers_D": 4, "num_D": 2, "norm": "instance", "spectral": True}
NETS = "imtrans.nets.spade"


# ----------------------------------------------------------------------------- option values
def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in ("true", "false", "1", "0", "yes", "no"):
        raise OfficialFormatError(f"{name}={value}: expected true or false")
    return text in ("true", "1", "yes")


def _int(name: str, value: Any) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise OfficialFormatError(f"{name}={value}: expected an integer") from None


def _float(name: str, value: Any) -> float:
    try:
        return float(str(value).strip())
    except ValueError:
        raise OfficialFormatError(f"{name}={value}: expected a number") from None


def _choice(name: str, value: Any, choices) -> str:
    text = str(value).strip()
    if text not in choices:
        raise OfficialFormatError(f"{name}={value}: expected one of {', '.join(choices)}")
    return text


def typed(name: str, value: Any) -> Any:
    """An option value (command-line or opt.txt text) as the official parser types it."""
    if name in ("contain_dontcare_label", "no_instance", "use_vae"):
        return _bool(name, value)
    if name in ("label_nc", "crop_size", "ngf", "ndf", "n_layers_D", "num_D", "z_dim"):
        return _int(name, value)
    if name == "aspect_ratio":
        return _float(name, value)
    if name == "num_upsampling_layers":
        return _choice(name, value, ("normal", "more", "most"))
    if name == "dataset_mode":
        return _choice(name, value, tuple(DATASETS))
    return str(value).strip()


def _literal(text: str) -> Any:
    """An opt.txt value as its Python type (True, 0.0002, 50) when it reads as one, else the text."""
    if text in ("True", "False"):
        return text == "True"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_opt_txt(path: Path) -> dict[str, str]:
    """``opt.txt`` of ``BaseOptions.save_options``: ``'{:>25}: {:<30}{}'.format(key, value,
    '\\t[default: ...]' when not the default)`` per line -> ``{key: value text}``."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise OfficialFormatError(f"{path}: not a readable opt.txt ({type(err).__name__})") from None
    out = {}
    for line in lines:
        key, sep, rest = line.partition(":")
        if not sep or not key.strip() or key.strip().startswith("-"):
            continue  # print_options' ---- Options ---- frame, blank lines
        out[key.strip()] = rest.split("\t[default:")[0].strip()
    if "netG" not in out:
        raise OfficialFormatError(f"{path}: no 'netG: ...' line: not the opt.txt of an NVlabs/SPADE run")
    return out


# ----------------------------------------------------------------------------- shape readers
def _sn_weight(sd, prefix: str) -> tuple[str | None, bool]:
    """(key of the conv weight at ``prefix``, spectral) or (None, False) when absent."""
    if f"{prefix}.weight_orig" in sd:
        return f"{prefix}.weight_orig", True
    if f"{prefix}.weight" in sd:
        return f"{prefix}.weight", False
    return None, False


def _norm_layer(sd, prefix: str) -> tuple[str | None, bool, str]:
    """(conv weight key, spectral, norm) of an official ``get_nonspade_norm_layer`` conv at
    ``prefix``: ``Sequential(conv, norm)`` (``<prefix>.0``) or the bare conv (norm ``none``)."""
    key, spectral = _sn_weight(sd, f"{prefix}.0")
    if key is not None:
        return key, spectral, "batch" if f"{prefix}.1.weight" in sd else "instance"
    key, spectral = _sn_weight(sd, prefix)
    return key, spectral, "none"


def _foreign(sd, file: Path, own: str) -> None:
    """Refuse another network's file under this name (the keys say what it holds)."""
    kinds = {
        "G": ("head_0.", "SPADEGenerator"),
        "D": ("discriminator_0.", "MultiscaleDiscriminator"),
        "E": ("fc_mu.", "ConvEncoder"),
    }
    for name, (prefix, cls) in kinds.items():
        if name != own and any(k.startswith(prefix) for k in sd):
            raise OfficialFormatError(f"{file}: holds a {cls} ({prefix}* keys), but its name says {own}")


def generator_options(sd: Mapping[str, torch.Tensor], file: Path) -> dict:
    """What a ``SPADEGenerator`` state dict tells: ngf, semantic_nc, use_vae, z_dim (VAE),
    fc_out (VAE: 16 ngf * sh * sw), most, output_nc, nhidden, spade_kernel, param_free_norm,
    spectral."""
    _foreign(sd, file, "G")
    conv_key, spectral = _sn_weight(sd, "head_0.conv_0")
    if conv_key is None:
        raise OfficialFormatError(
            f"{file}: no key 'head_0.conv_0.weight_orig': not a SPADEGenerator (first key "
            f"{next(iter(sd), None)!r}; the wrong METHOD for this file?)"
        )
    width = int(sd[conv_key].shape[0])
    shared = tensor(sd, "head_0.norm_0.mlp_shared.0.weight", file)
    fc = tensor(sd, "fc.weight", file)
    img = tensor(sd, "conv_img.weight", file)
    if width % 16:
        raise OfficialFormatError(f"{file}: head_0 has {width} channels, a SPADEGenerator's have 16 x ngf")
    semantic_nc = int(shared.shape[1])
    opts = {
        "ngf": width // 16,
        "semantic_nc": semantic_nc,
        "use_vae": fc.dim() == 2,
        "most": any(k.startswith("up_4.") for k in sd),
        "output_nc": int(img.shape[0]),
        "nhidden": int(shared.shape[0]),
        "spade_kernel": int(shared.shape[-1]),
        "param_free_norm": "batch" if "head_0.norm_0.param_free_norm.running_mean" in sd else "instance",
        "spectral": spectral,
    }
    if opts["use_vae"]:
        opts.update(z_dim=int(fc.shape[1]), fc_out=int(fc.shape[0]))
    elif int(fc.shape[1]) != semantic_nc:
        raise OfficialFormatError(
            f"{file}: 'fc.weight' reads {int(fc.shape[1])} channels, the SPADE layers {semantic_nc}"
        )
    return opts


def discriminator_options(sd: Mapping[str, torch.Tensor], file: Path) -> dict:
    """input_nc, ndf, n_layers_D, num_D, norm and spectral of a ``MultiscaleDiscriminator``."""
    _foreign(sd, file, "D")
    scales = indices(sd, r"discriminator_(\d+)\..*")
    stray = next((k for k in sd if not re.match(r"discriminator_\d+\.model\d+\.", k)), None)
    if not scales or stray is not None or scales != list(range(len(scales))):
        raise OfficialFormatError(
            f"{file}: key {stray or next(iter(sd), None)!r}: not a SPADE MultiscaleDiscriminator "
            "('discriminator_<i>.model<n>.*' keys; the wrong METHOD for this file?)"
        )
    stages = indices(sd, r"discriminator_0\.model(\d+)\..*")
    first = tensor(sd, "discriminator_0.model0.0.weight", file)
    opts = {
        "input_nc": int(first.shape[1]),
        "ndf": int(first.shape[0]),
        "n_layers_D": len(stages) - 1,
        "num_D": len(scales),
        **{k: D_DEFAULTS[k] for k in ("norm", "spectral")},
    }
    if stages != list(range(len(stages))) or len(stages) < 2:
        raise OfficialFormatError(f"{file}: stages model{stages} fit no NLayerDiscriminator")
    if len(stages) > 2:  # the middle stages carry the norm (n_layers_D 1 has none)
        key, opts["spectral"], opts["norm"] = _norm_layer(sd, "discriminator_0.model1.0")
        if key is None:
            raise OfficialFormatError(f"{file}: no conv weight at 'discriminator_0.model1.0'")
    return opts


def encoder_options(sd: Mapping[str, torch.Tensor], file: Path) -> dict:
    """ngf, n_layers (6 when trained with crop_size >= 256), z (fc outputs), norm, spectral of
    a ``ConvEncoder``."""
    _foreign(sd, file, "E")
    layers = indices(sd, r"layer(\d+)\..*")
    key, spectral, norm = _norm_layer(sd, "layer1")
    fc = tensor(sd, "fc_mu.weight", file)
    if key is None or layers != list(range(1, len(layers) + 1)):
        raise OfficialFormatError(f"{file}: layers {layers} fit no ConvEncoder (layer1 .. layer6)")
    return {
        "ngf": int(sd[key].shape[0]),
        "input_nc": int(sd[key].shape[1]),
        "n_layers": len(layers),
        "z": int(fc.shape[0]),
        "norm": norm,
        "spectral": spectral,
    }


def fill_num_batches_tracked(sd: dict[str, torch.Tensor]) -> list[str]:
    """Add ``num_batches_tracked`` (0) to SPADE norms saved without it (PyTorch < 0.4.1), as
    PyTorch itself fills it when it loads such a file. Returns the keys added."""
    added = []
    for key in [k for k in sd if k.endswith(".param_free_norm.running_mean")]:
        count = key[: -len("running_mean")] + "num_batches_tracked"
        if count not in sd:
            sd[count] = torch.tensor(0, dtype=torch.long)
            added.append(count)
    return added


# ----------------------------------------------------------------------------- resolution
@dataclass
class Resolved:
    """The official options of a checkpoint, as read and resolved.

    Attributes:
        options: the official options (official names) that define the networks and the input.
        config: the model config (``_target_``s of :mod:`imtrans.nets.spade` with their keyword
            arguments; see :func:`model_config`).
        notes: facts for ``import.json`` (where an option came from, fresh networks).
    """

    options: dict[str, Any]
    config: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def _given(options: Mapping[str, Any], opt_txt: Mapping[str, str] | None, opt_file: Path | None):
    """The options as given on the command line, checked against ``opt.txt``; then the values
    ``opt.txt`` adds; then the dataset presets. Returns ``({name: value}, {name: source})``."""
    values, sources = {}, {}
    for name, value in options.items():
        if value is None:
            continue
        values[name], sources[name] = typed(name, value), "option"
    if opt_txt:
        for name in ("dataset_mode", *UNREAD):
            if name not in opt_txt:
                continue
            if name == "dataset_mode" and opt_txt[name] not in DATASETS:
                stated = opt_txt[name]  # a custom dataset: its options stand on their own
            else:
                stated = typed(name, opt_txt[name])
            if name in values and values[name] != stated:
                raise OfficialFormatError(
                    f"{name}={values[name]}: {opt_file} says {stated}; drop the option (the run was "
                    "trained with opt.txt's value) or import the .pth file from another folder"
                )
            if name not in values:
                values[name], sources[name] = stated, "opt.txt"
    preset = DATASETS.get(values.get("dataset_mode"), {})
    for name, value in preset.items():
        if name not in values:
            values[name], sources[name] = value, f"dataset_mode={values['dataset_mode']}"
    return values, sources


def _split_semantics(semantic_nc: int, values: dict, file: Path) -> tuple[int, bool, bool]:
    """(label_nc, contain_dontcare_label, no_instance) with label_nc + dontcare + instance =
    semantic_nc, from what is given; refused when the extra channels stay ambiguous."""
    label_nc = values.get("label_nc")
    dontcare = values.get("contain_dontcare_label")
    no_instance = values.get("no_instance")
    rest = None if label_nc is None else semantic_nc - label_nc
    if rest is not None and rest not in (0, 1, 2):
        raise OfficialFormatError(
            f"label_nc={label_nc}: {file} has a G input of {semantic_nc} channels = label_nc + dontcare + "
            "instance (0 to 2 extra channels); give the run's label_nc"
        )
    if rest in (0, 2):
        dontcare, no_instance = (
            dontcare if dontcare is not None else rest == 2,
            (no_instance if no_instance is not None else rest == 0),
        )
    elif rest == 1 and (dontcare is None) != (no_instance is None):
        if dontcare is None:
            dontcare = no_instance
        else:
            no_instance = dontcare
    if dontcare is None or no_instance is None:
        told = "" if label_nc is None else f" = label_nc {label_nc} + {rest}"
        raise OfficialFormatError(
            f"{file}: the G input has {semantic_nc} channels{told}, the files do not say which are the "
            "dontcare and instance-edge channels; give dataset_mode=cityscapes|ade20k|coco, or label_nc=, "
            "contain_dontcare_label= and no_instance="
        )
    if label_nc is None:
        label_nc = semantic_nc - int(dontcare) - int(not no_instance)
    if label_nc < 1 or label_nc + int(dontcare) + int(not no_instance) != semantic_nc:
        raise OfficialFormatError(
            f"label_nc={label_nc}: with contain_dontcare_label {dontcare} and no_instance {no_instance} the "
            f"G input would have {label_nc + int(dontcare) + int(not no_instance)} channels, {file} has "
            f"{semantic_nc}; set them to the run's options"
        )
    return label_nc, dontcare, no_instance


def _latent(ngf: int, crop_size: int, aspect_ratio: float, up: str) -> int:
    from imtrans.nets.spade import latent_size

    sh, sw = latent_size(crop_size, aspect_ratio, up)
    return 16 * ngf * sh * sw


def _upsampling(g: dict, values: dict, file: Path, notes: list[str]) -> str:
    """num_upsampling_layers: ``most`` from an up_4 block; normal or more from the options, or
    for a VAE G from the size of its fc."""
    given = values.get("num_upsampling_layers")
    if g["most"] or given == "most":
        if not (g["most"] and given in (None, "most")):
            has = "has" if g["most"] else "has no"
            raise OfficialFormatError(
                f"num_upsampling_layers={given}: {file} {has} up_4 block, which only 'most' builds; "
                "drop the option or give the run's value"
            )
        return "most"
    if given is not None:
        return given
    if g["use_vae"] and "crop_size" in values and "aspect_ratio" in values:
        fits = [
            up
            for up in ("normal", "more")
            if _try_latent(g["ngf"], values["crop_size"], values["aspect_ratio"], up) == g["fc_out"]
        ]
        if len(fits) == 1:
            notes.append(f"num_upsampling_layers {fits[0]}: the only one whose latent size fits the VAE fc")
            return fits[0]
    raise OfficialFormatError(
        f"{file}: num_upsampling_layers is not in the files ('normal' and 'more' hold the same tensors "
        "and give different images); give num_upsampling_layers=normal|more (Cityscapes: more) or dataset_mode="
    )


def _try_latent(ngf: int, crop_size: int, aspect_ratio: float, up: str) -> int | None:
    try:
        return _latent(ngf, crop_size, aspect_ratio, up)
    except ValueError:
        return None


def model_config(options: Mapping[str, Any]) -> dict[str, Any]:
    """The imtrans model config of resolved official options: the method's label options and
    one ``_target_`` per network (instantiable with ``hydra.utils.instantiate``), with full
    keyword arguments of :class:`~imtrans.nets.spade.SPADEGenerator`,
    :class:`~imtrans.nets.spade.SPADEMultiscaleDiscriminator` and
    :class:`~imtrans.nets.spade.SPADEEncoder` (``encoder`` None without ``use_vae``)."""
    o = options
    generator = {
        "_target_": f"{NETS}.SPADEGenerator",
        "semantic_nc": o["semantic_nc"],
        "ngf": o["ngf"],
        "num_upsampling_layers": o["num_upsampling_layers"],
        "crop_size": o["crop_size"],
        "aspect_ratio": o["aspect_ratio"],
        "use_vae": o["use_vae"],
        "z_dim": o["z_dim"],
        "output_nc": o["output_nc"],
        "spectral": o["spectral_G"],
        "nhidden": o["nhidden"],
        "spade_kernel": o["spade_kernel"],
        "param_free_norm": o["param_free_norm"],
    }
    discriminator = {
        "_target_": f"{NETS}.SPADEMultiscaleDiscriminator",
        "input_nc": o["semantic_nc"] + o["output_nc"],
        "ndf": o["ndf"],
        "n_layers_D": o["n_layers_D"],
        "num_D": o["num_D"],
        "norm": o["norm_D"],
        "spectral": o["spectral_D"],
    }
    encoder = None
    if o["use_vae"]:
        encoder = {
            "_target_": f"{NETS}.SPADEEncoder",
            "ngf": o["ngf"],
            "crop_size": o["crop_size"],
            "norm": o["norm_E"],
            "spectral": o["spectral_E"],
        }
    return {
        "label_nc": o["label_nc"],
        "contain_dontcare_label": o["contain_dontcare_label"],
        "no_instance": o["no_instance"],
        "generator": generator,
        "discriminator": discriminator,
        "encoder": encoder,
    }


def resolve(
    state_dicts: Mapping[str, Mapping[str, torch.Tensor]],
    options: Mapping[str, Any] | None = None,
    opt_txt: Mapping[str, str] | None = None,
    files: Mapping[str, Path] | None = None,
    opt_file: Path | None = None,
) -> Resolved:
    """The official options of ``state_dicts`` (``{"G": sd, "D": sd, "E": sd}``, G required):
    read from the tensors, the rest from ``options`` (command-line values), ``opt_txt`` (the
    parsed ``opt.txt``) and the dataset presets; everything cross-checked."""
    files = {n: (files or {}).get(n, Path(f"<{n}>")) for n in NETWORKS}
    unknown = set(options or {}) - set(OPTIONS) - {"epoch"}
    if unknown:
        raise OfficialFormatError(
            f"spade: unknown option(s) {sorted(unknown)}; options: {', '.join(OPTIONS)}"
        )
    if "G" not in state_dicts:
        raise OfficialFormatError("spade: no generator (latest_net_G.pth); a SPADE import needs G")
    g = generator_options(state_dicts["G"], files["G"])
    d = discriminator_options(state_dicts["D"], files["D"]) if "D" in state_dicts else None
    e = encoder_options(state_dicts["E"], files["E"]) if "E" in state_dicts else None
    opt_file = opt_file or Path("opt.txt")
    values, sources = _given({k: v for k, v in (options or {}).items() if k != "epoch"}, opt_txt, opt_file)
    notes: list[str] = []

    if opt_txt:
        _check_opt_txt(opt_txt, opt_file, g, d, e, files)
    label_nc, dontcare, no_instance = _split_semantics(g["semantic_nc"], values, files["G"])
    for name in ("crop_size", "aspect_ratio"):
        if name not in values:
            raise OfficialFormatError(
                f"{files['G']}: {name} is not in the files (crop_size and aspect_ratio set the latent and the "
                "output size); give crop_size= and aspect_ratio= (the training run's) or dataset_mode="
            )
    up = _upsampling(g, values, files["G"], notes)
    crop_size, aspect_ratio = values["crop_size"], values["aspect_ratio"]
    try:
        latent = _latent(g["ngf"], crop_size, aspect_ratio, up)
    except ValueError as err:
        raise OfficialFormatError(str(err)) from None
    if g["use_vae"] and latent != g["fc_out"]:
        raise OfficialFormatError(
            f"crop_size={crop_size}: with aspect_ratio {aspect_ratio} and num_upsampling_layers {up} the latent "
            f"map has {latent} values, the VAE fc of {files['G']} makes {g['fc_out']}; give the run's options"
        )
    if d is not None and d["input_nc"] != g["semantic_nc"] + g["output_nc"]:
        raise OfficialFormatError(
            f"{files['D']}: D reads {d['input_nc']} channels, this G's pairs have semantic_nc + output_nc = "
            f"{g['semantic_nc'] + g['output_nc']} (another model's D?)"
        )
    if e is not None:
        if not g["use_vae"]:
            raise OfficialFormatError(
                f"{files['E']}: an encoder, but the G takes no z (a conv fc: no --use_vae)"
            )
        if e["ngf"] != g["ngf"] or e["z"] != g["z_dim"]:
            raise OfficialFormatError(
                f"{files['E']}: encoder of width {e['ngf']} with {e['z']} outputs, the G has ngf {g['ngf']} and "
                f"z_dim {g['z_dim']} (the official encoder uses ngf and 256 outputs)"
            )
        if e["n_layers"] != 6:
            raise OfficialFormatError(
                f"{files['E']}: {e['n_layers']} encoder layers (trained with crop_size < 256): the official "
                "encoder works only with 6 (its 5-layer form fails at the first forward)"
            )

    def training(name: str, default):
        """A training-only option: the D file's, else opt.txt's, else the official default."""
        return typed(name, opt_txt[name]) if opt_txt and name in opt_txt else default

    e_norm = _nonspade(opt_txt.get("norm_E") if opt_txt else None)
    resolved = {
        **values,
        "netG": "spade",
        "label_nc": label_nc,
        "contain_dontcare_label": dontcare,
        "no_instance": no_instance,
        "semantic_nc": g["semantic_nc"],
        "num_upsampling_layers": up,
        "crop_size": crop_size,
        "aspect_ratio": aspect_ratio,
        "latent_size_sh_sw": list(_hw(crop_size, aspect_ratio, up)),
        "ngf": g["ngf"],
        "use_vae": g["use_vae"],
        "z_dim": g.get("z_dim", training("z_dim", 256)),
        "output_nc": g["output_nc"],
        "norm_G": _norm_g_word(g),
        "spectral_G": g["spectral"],
        "param_free_norm": g["param_free_norm"],
        "spade_kernel": g["spade_kernel"],
        "nhidden": g["nhidden"],
        "ndf": d["ndf"] if d else training("ndf", D_DEFAULTS["ndf"]),
        "n_layers_D": d["n_layers_D"] if d else training("n_layers_D", D_DEFAULTS["n_layers_D"]),
        "num_D": d["num_D"] if d else training("num_D", D_DEFAULTS["num_D"]),
        "norm_D": d["norm"] if d else _nonspade(opt_txt.get("norm_D") if opt_txt else None)[1],
        "spectral_D": d["spectral"] if d else _nonspade(opt_txt.get("norm_D") if opt_txt else None)[0],
        "norm_E": e["norm"] if e else e_norm[1],
        "spectral_E": e["spectral"] if e else e_norm[0],
    }
    for name in UNREAD:
        source = sources.get(name, "the G input channels")
        if source != "option":
            notes.append(f"{name} {resolved[name]} from {source}")
    if opt_txt:  # the training options, for the record (fine-tuning reads them from import.json)
        for name in (
            "gan_mode",
            "lambda_feat",
            "lambda_vgg",
            "lambda_kld",
            "no_ganFeat_loss",
            "no_vgg_loss",
            "lr",
            "beta1",
            "beta2",
            "no_TTUR",
            "niter",
            "niter_decay",
            "batchSize",
            "init_type",
            "init_variance",
            "preprocess_mode",
            "load_size",
            "dataset_mode",
        ):
            if name in opt_txt and name not in resolved:
                resolved[name] = _literal(opt_txt[name])
    if d is None:
        notes.append(
            "no D file: the discriminator starts fresh (ndf, n_layers_D, num_D from opt.txt or the defaults)"
        )
    if g["use_vae"] and e is None:
        notes.append("no E file: the encoder starts fresh; translate without reference= draws z ~ N(0, I)")
    return Resolved(resolved, model_config(resolved), notes)


def _norm_g_word(g: Mapping[str, Any]) -> str:
    """The official ``norm_G`` of a generator read from its tensors (``spectralspadesyncbatch3x3``)."""
    norm = "syncbatch" if g["param_free_norm"] == "batch" else "instance"
    return f"{'spectral' if g['spectral'] else ''}spade{norm}{g['spade_kernel']}x{g['spade_kernel']}"


def _parse_norm_g(word: str) -> tuple[bool, str, int] | None:
    """(spectral, param-free norm, kernel) of an official ``norm_G`` word, None if not SPADE's."""
    m = re.fullmatch(r"(spectral)?spade(syncbatch|batch|instance)(\d+)x\d+", word)
    if m is None:
        return None
    return bool(m[1]), "instance" if m[2] == "instance" else "batch", int(m[3])


def _check_opt_txt(opt_txt, opt_file: Path, g: dict, d: dict | None, e: dict | None, files) -> None:
    """The folder's opt.txt must describe the tensors read (else it is another run's): the
    network options it states are compared with the shapes."""
    pairs = [  # (option, stated value, value read, file)
        ("netG", opt_txt.get("netG"), "spade", files["G"]),
        ("ngf", opt_txt.get("ngf"), g["ngf"], files["G"]),
        ("use_vae", opt_txt.get("use_vae"), g["use_vae"], files["G"]),
    ]
    if g["use_vae"]:
        pairs.append(("z_dim", opt_txt.get("z_dim"), g["z_dim"], files["G"]))
    if "norm_G" in opt_txt:
        read = (g["spectral"], g["param_free_norm"], g["spade_kernel"])
        pairs.append(("norm_G", _parse_norm_g(opt_txt["norm_G"]), read, files["G"]))
    if d is not None:
        pairs += [(k, opt_txt.get(k), d[k], files["D"]) for k in ("ndf", "n_layers_D", "num_D")]
        if "norm_D" in opt_txt:
            pairs.append(("norm_D", _nonspade(opt_txt["norm_D"]), (d["spectral"], d["norm"]), files["D"]))
    if e is not None and "norm_E" in opt_txt:
        pairs.append(("norm_E", _nonspade(opt_txt["norm_E"]), (e["spectral"], e["norm"]), files["E"]))
    for name, stated, read, file in pairs:
        if stated is None:
            continue
        if isinstance(stated, str):
            stated = typed(name, stated)
        if stated != read:
            raise OfficialFormatError(
                f"{opt_file}: says {name} {opt_txt[name]}, but {file} does not fit it ({read}); opt.txt is "
                "of another run: import the .pth files from a folder without it"
            )


def _hw(crop_size: int, aspect_ratio: float, up: str) -> tuple[int, int]:
    from imtrans.nets.spade import latent_size

    return latent_size(crop_size, aspect_ratio, up)


def _nonspade(norm: str | None) -> tuple[bool, str]:
    """(spectral, norm) of an official ``norm_D`` / ``norm_E`` word (default spectralinstance)."""
    norm = norm or "spectralinstance"
    spectral = norm.startswith("spectral")
    sub = norm[len("spectral") :] if spectral else norm
    sub = {"": "none", "sync_batch": "batch", "syncbatch": "batch"}.get(sub, sub)
    if sub not in ("instance", "batch", "none"):
        raise OfficialFormatError(f"norm {norm!r} (opt.txt): not a norm imtrans' SPADE networks build")
    return spectral, sub


# ----------------------------------------------------------------------------- networks
def build_networks(config: Mapping[str, Any], device: str | torch.device = "meta") -> dict[str, nn.Module]:
    """Our networks of a :func:`model_config` (``{"netG", "netD"[, "netE"]}``), built on
    ``device`` (``meta``: shapes only, instantly)."""
    import hydra

    out = {}
    with torch.device(device):
        for attr, key in (("netG", "generator"), ("netD", "discriminator"), ("netE", "encoder")):
            if config.get(key) is not None:
                out[attr] = hydra.utils.instantiate(dict(config[key]))
    return out


def convert(
    state_dicts: Mapping[str, Mapping[str, torch.Tensor]],
    options: Mapping[str, Any] | None = None,
    opt_txt: Mapping[str, str] | None = None,
    files: Mapping[str, Path] | None = None,
) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, Any]]:
    """Official state dicts (``{"G": ..., "D": ..., "E": ...}``, as ``torch.load`` gives them)
    -> (``{"netG": sd, "netD": sd, "netE": sd}`` in imtrans keys, the :func:`model_config`).

    The keys are the official ones (spectral-norm u and v kept as stored); each state dict is
    checked, key by key and shape by shape, against our network built from the config.
    """
    resolved = resolve(state_dicts, options, opt_txt, files)
    return _convert(state_dicts, resolved, files), resolved.config


def _convert(state_dicts, resolved: Resolved, files=None) -> dict[str, dict[str, torch.Tensor]]:
    nets = build_networks(resolved.config)
    out = {}
    for name, sd in state_dicts.items():
        sd = dict(sd)
        fill_num_batches_tracked(sd)
        check_state_dict(
            nets[ATTRIBUTES[name]], sd, (files or {}).get(name, Path(f"<{name}>")), ATTRIBUTES[name]
        )
        out[ATTRIBUTES[name]] = sd
    return out


# ----------------------------------------------------------------------------- run folder
def model_overrides(config: Mapping[str, Any]) -> list[str]:
    """Hydra overrides that give ``model=spade`` the networks of ``config``: the label
    options and every network argument (``model.generator.ngf=64`` ...). A VAE model without a
    discriminator file still gets the D of its options, fresh."""

    def value(v) -> str:
        if isinstance(v, bool):
            return str(v).lower()
        return "null" if v is None else str(v)

    out = ["model=spade"]
    for key in ("label_nc", "contain_dontcare_label", "no_instance"):
        out.append(f"model.{key}={value(config[key])}")
    for net in ("generator", "discriminator", "encoder"):
        args = config.get(net)
        if args is None:
            out.append(f"model.{net}=null")
            continue
        out += [f"model.{net}.{k}={value(v)}" for k, v in args.items()]
    return out


def read(
    path: Path,
    epoch: str | None = None,
    dataset_mode: str | None = None,
    num_upsampling_layers: str | None = None,
    crop_size: str | None = None,
    aspect_ratio: str | None = None,
    label_nc: str | None = None,
    contain_dontcare_label: str | None = None,
    no_instance: str | None = None,
) -> Imported:
    files, label = find_snapshot(path, NETWORKS, epoch)
    if "G" not in files:
        raise OfficialFormatError(f"{path}: no generator file (<epoch>_net_G.pth) in this snapshot")
    folder = path if path.is_dir() else path.parent
    opt_file = folder / "opt.txt"
    opt_txt = read_opt_txt(opt_file) if opt_file.is_file() else None
    if opt_txt is not None and opt_txt.get("netG") != "spade":
        raise OfficialFormatError(
            f"{opt_file}: netG {opt_txt.get('netG')}: imtrans imports the SPADE generator"
        )
    state_dicts = {n: state_dict_in(read_file(f), f) for n, f in files.items()}
    given = dict(
        dataset_mode=dataset_mode,
        num_upsampling_layers=num_upsampling_layers,
        crop_size=crop_size,
        aspect_ratio=aspect_ratio,
        label_nc=label_nc,
        contain_dontcare_label=contain_dontcare_label,
        no_instance=no_instance,
    )
    resolved = resolve(state_dicts, given, opt_txt, files, opt_file)
    ours = _convert(state_dicts, resolved, files)
    options, notes = resolved.options, resolved.notes
    if opt_txt is not None:
        notes.insert(0, f"options from {opt_file.name}")
    if label is not None:
        options["which_epoch"] = label
    iter_txt = folder / "iter.txt"
    if label == "latest" and iter_txt.is_file():
        options["epoch"], options["epoch_iter"] = read_iter(iter_txt)
        notes.append(f"iter.txt: epoch {options['epoch']}, epoch_iter {options['epoch_iter']}")
    overrides = [
        *model_overrides(resolved.config),
        # label maps (+ instance maps) -> photos (a named preset, data=ade20k ..., given on the
        # command line replaces it; these values stay, as the files' own)
        "data=labels",
        f"data.label_nc={options['label_nc']}",
        f"data.contain_dontcare_label={str(options['contain_dontcare_label']).lower()}",
        f"data.use_instance={str(not options['no_instance']).lower()}",
        f"data.output_nc={options['output_nc']}",
    ]
    return Imported(
        overrides=overrides,
        networks={ATTRIBUTES[n]: Network(ours[ATTRIBUTES[n]], IDENTITY, files[n]) for n in files},
        sources=[files[n] for n in NETWORKS if n in files],
        official_options=options,
        notes=notes,
    )
