"""Key renaming for the flat ``nn.Sequential`` networks of junyanz's code (CycleGAN, pix2pix,
BicycleGAN) and NVIDIA/pix2pixHD, which share that layout, and shape readers for them.

The official networks are one flat ``model`` Sequential whose index is a *layer position*:
pads, norms and activations count, a ResnetBlock counts one. Ours group the layers of a
level into a :class:`imtrans.nets.ConvBlock` (``[pad,] conv, norm, act``), so an official
position becomes a (block, layer) pair. The functions here compute that arithmetic once from
the architecture options. Rule labels, as the format modules cite them: R1 junyanz's
``ResnetGenerator`` and H1 pix2pixHD's ``GlobalGenerator`` (the same layout), R2 junyanz's
``NLayerDiscriminator``; H2, H3 (pix2pixHD's ``LocalEnhancer``, ``MultiscaleDiscriminator``) and
B1-B3 (BicycleGAN's G, D, E) are defined in their format modules.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from imtrans.official import OfficialFormatError, Rules


def _weight_norm_pairs(prefix_official: str, prefix_ours: str) -> Rules:
    """``weight``/``bias`` (and BatchNorm's statistics) of one layer."""
    return [
        (
            re.escape(prefix_official) + r"\.(weight|bias|running_mean|running_var|num_batches_tracked)",
            prefix_ours + r".\1",
        )
    ]


def resnet_generator_rules(
    n_down: int,
    n_blocks: int,
    dropout: bool = False,
    final: bool = True,
    norm_tensors: bool = False,
    prefix: str = "model",
) -> Rules:
    """Rules for junyanz's ``ResnetGenerator`` / pix2pixHD's ``GlobalGenerator`` (R1, H1).

    Official positions: pad 0, conv 1, norm 2, relu 3; down level i: conv 4+3i; residual block b
    at s = 4 + 3 n_down; up level i: conv u + 3i with u = s + n_blocks; final pad u + 3 n_down,
    conv + 1. Ours: ``model.0`` (conv ``.1``), ``model.{1+i}`` (conv ``.0``), residual blocks
    ``model.{1+n_down+b}.body``, ups ``model.{1+n_down+n_blocks+i}``, final conv
    ``model.{1+2 n_down+n_blocks}.1``. Inside a block, official ``conv_block.{1,5}`` (``6`` with
    dropout) are our ``body.{0,1}.1`` (``body.2.1``). ``final=False``: the trunk of pix2pixHD's
    local enhancer, without the output layers. ``norm_tensors``: BatchNorm weights at conv + 1.
    """
    p = re.escape(prefix)
    rules: list = []

    def layer(official: int, ours: str, conv_at: int):
        rules.extend(_weight_norm_pairs(f"{prefix}.{official}", f"{prefix}.{ours}.{conv_at}"))
        if norm_tensors:
            rules.extend(_weight_norm_pairs(f"{prefix}.{official + 1}", f"{prefix}.{ours}.{conv_at + 1}"))

    layer(1, "0", 1)
    for i in range(n_down):
        layer(4 + 3 * i, str(1 + i), 0)
    s = 4 + 3 * n_down
    second = 6 if dropout else 5
    for b in range(n_blocks):
        ours = f"{prefix}.{1 + n_down + b}.body"
        rules += [
            (rf"{p}\.{s + b}\.conv_block\.1\.(weight|bias)", ours + r".0.1.\1"),
            (
                rf"{p}\.{s + b}\.conv_block\.{second}\.(weight|bias)",
                ours + (r".2.1.\1" if dropout else r".1.1.\1"),
            ),
        ]
        if norm_tensors:
            rules += [
                (rf"{p}\.{s + b}\.conv_block\.2\.(.*)", ours + r".0.2.\1"),
                (
                    rf"{p}\.{s + b}\.conv_block\.{second + 1}\.(.*)",
                    ours + (r".2.2.\1" if dropout else r".1.2.\1"),
                ),
            ]
    u = s + n_blocks
    for i in range(n_down):
        layer(u + 3 * i, str(1 + n_down + n_blocks + i), 0)
    if final:
        rules.extend(
            _weight_norm_pairs(f"{prefix}.{u + 3 * n_down + 1}", f"{prefix}.{1 + 2 * n_down + n_blocks}.1")
        )
    return rules


def patch_discriminator_rules(
    n_layers: int, norm_tensors: bool = False, official: str = "model", ours: str = "model"
) -> Rules:
    """Rules for junyanz's ``NLayerDiscriminator`` (R2): official conv positions 0, then
    2 + 3(n - 1) for n = 1 .. n_layers (norm at + 1), the last conv at 2 + 3 n_layers; ours
    ``model.0.0``, ``model.n.0`` (norm ``model.n.1``), ``model.{n_layers+1}``."""
    rules = list(_weight_norm_pairs(f"{official}.0", f"{ours}.0.0"))
    for n in range(1, n_layers + 1):
        pos = 2 + 3 * (n - 1)
        rules += _weight_norm_pairs(f"{official}.{pos}", f"{ours}.{n}.0")
        if norm_tensors:
            rules += _weight_norm_pairs(f"{official}.{pos + 1}", f"{ours}.{n}.1")
    rules += _weight_norm_pairs(f"{official}.{2 + 3 * n_layers}", f"{ours}.{n_layers + 1}")
    return rules


# ----------------------------------------------------------------------------- files
def _epoch_order(label: str) -> tuple[int, int]:
    """Sort key of a snapshot label: ``latest`` last, then numbers (``5``, ``iter_20000``)."""
    if label == "latest":
        return (2, 0)
    m = re.fullmatch(r"(?:iter_)?(\d+)", label)
    return (1, int(m.group(1))) if m else (0, 0)


def find_snapshot(
    path: Path, names: Sequence[str], epoch: str | None = None, renamed: str | None = None
) -> tuple[dict[str, Path], str | None]:
    """``({network name: file}, snapshot label)`` of one snapshot ``<epoch>_net_<name>.pth``,
    the layout of junyanz's code bases and of pix2pixHD.

    ``path`` a file: that network alone; a file named otherwise is taken as ``renamed``
    (default ``names[0]``, the generator: downloaded models are often renamed), label None.
    ``path`` a folder: the snapshot ``epoch``, by default the newest, ``latest`` first (what the
    official ``--continue_train`` loads), then the highest epoch or ``iter_<N>``.
    """
    pattern = re.compile(rf"(.+)_net_({'|'.join(sorted(names, key=len, reverse=True))})\.pth")
    if path.is_file():
        m = pattern.fullmatch(path.name)
        return ({m.group(2): path}, m.group(1)) if m else ({renamed or names[0]: path}, None)
    found = [(pattern.fullmatch(p.name), p) for p in sorted(path.iterdir()) if p.is_file()]
    found = [(m.group(1), m.group(2), p) for m, p in found if m]
    if not found:
        raise OfficialFormatError(f"{path}: no <epoch>_net_<{'|'.join(names)}>.pth files in this folder")
    labels = sorted({label for label, _, _ in found}, key=_epoch_order)
    label = str(epoch) if epoch is not None else labels[-1]
    chosen = {name: p for lab, name, p in found if lab == label}
    if not chosen:
        raise OfficialFormatError(f"{path}: no snapshot {label!r}; snapshots: {', '.join(labels)}")
    return chosen, label


# ----------------------------------------------------------------------------- shape readers
def tensor(sd: Mapping[str, torch.Tensor], key: str, path: Path, what: str = "") -> torch.Tensor:
    """``sd[key]``, or an OfficialFormatError saying the file lacks the key this method expects."""
    if key not in sd:
        where = f"{path}" + (f" [{what!r}]" if what else "")
        first = next(iter(sd), None)
        raise OfficialFormatError(
            f"{where}: no key {key!r}, which this method's network has (first key of the file: {first!r}; "
            "the wrong METHOD for this file?)"
        )
    return sd[key]


def indices(sd: Mapping[str, torch.Tensor], pattern: str) -> list[int]:
    """Sorted distinct integers captured by ``pattern``'s first group over the keys."""
    regex = re.compile(pattern)
    return sorted({int(m.group(1)) for k in sd if (m := regex.fullmatch(k))})


def resnet_generator_options(sd: Mapping[str, torch.Tensor], path: Path, what: str = "") -> dict:
    """``ngf``, ``n_down``, ``n_blocks``, ``dropout``, ``input_nc``, ``output_nc`` and whether
    the norms hold tensors (BatchNorm), read from a flat junyanz/pix2pixHD ResnetGenerator."""
    first = tensor(sd, "model.1.weight", path, what)
    blocks = indices(sd, r"model\.(\d+)\.conv_block\..*")
    if not blocks:
        raise OfficialFormatError(
            f"{path}: no residual blocks ('model.<i>.conv_block.*' keys): not a ResNet generator "
            f"(first key {next(iter(sd))!r}; the wrong METHOD for this file?)"
        )
    s = blocks[0]
    if (s - 4) % 3 or blocks != list(range(s, s + len(blocks))):
        raise OfficialFormatError(
            f"{path}: residual blocks at positions {blocks} fit no ResNet generator layout"
        )
    dropout = any(re.fullmatch(r"model\.\d+\.conv_block\.6\.weight", k) for k in sd) and not any(
        re.fullmatch(r"model\.\d+\.conv_block\.5\.weight", k) for k in sd
    )
    n_down = (s - 4) // 3
    last = max(indices(sd, r"model\.(\d+)\.weight"))
    return {
        "ngf": int(first.shape[0]),
        "input_nc": int(first.shape[1]),
        "output_nc": int(sd[f"model.{last}.weight"].shape[0]),
        "n_down": n_down,
        "n_blocks": len(blocks),
        "dropout": dropout,
        "final_position": last,
    }


def patch_discriminator_options(
    sd: Mapping[str, torch.Tensor], path: Path, official: str = "model", what: str = ""
) -> dict:
    """``ndf``, ``n_layers``, ``input_nc`` and whether norms hold tensors, of an NLayerDiscriminator."""
    first = tensor(sd, f"{official}.0.weight", path, what)
    convs = [
        i
        for i in indices(sd, rf"{re.escape(official)}\.(\d+)\.weight")
        if sd[f"{official}.{i}.weight"].dim() == 4
    ]
    n_layers = len(convs) - 2
    expected = [0] + [2 + 3 * (n - 1) for n in range(1, n_layers + 1)] + [2 + 3 * n_layers]
    if n_layers < 1 or convs != expected:
        raise OfficialFormatError(
            f"{path}: convolutions at positions {convs} fit no NLayerDiscriminator layout"
        )
    return {
        "ndf": int(first.shape[0]),
        "input_nc": int(first.shape[1]),
        "n_layers": n_layers,
        "norm_tensors": f"{official}.3.weight" in sd,
    }
