"""pix2pix checkpoints of junyanz/pytorch-CycleGAN-and-pix2pix.

The official code saves one raw state dict per network, ``<epoch>_net_G.pth`` and
``<epoch>_net_D.pth`` (``latest``, ``5``, ``iter_20000`` ...), without any prefix or optimizer
state. PATH is one such file (a downloaded ``<name>.pth`` counts as a generator) or the
``checkpoints/<name>/`` folder, whose newest snapshot is taken as ``--continue_train`` takes it
(``latest`` when present, else the highest number; ``epoch=`` picks another). The published
models are a generator only (``checkpoints/<name>_pretrained/latest_net_G.pth``: unet_256,
BatchNorm, dropout), the discriminator is then initialised fresh.

The U-Net keys are ours unchanged; the conditional PatchGAN (input_nc + output_nc channels)
is renamed by rule R2 with its BatchNorm tensors. Read from the shapes: U-Net depth
(num_downs: 8 = unet_256, 7 = unet_128), ngf, input/output channels, BatchNorm or
InstanceNorm, ndf and n_layers_D. Dropout leaves no tensor: it is assumed on, as in every
published model; a ``--no_dropout`` model takes ``model.generator.dropout=0``. The data
crop is set to 2**num_downs, the size the official network is trained at.

Inference mode: the official ``test.py`` without ``--eval`` keeps BatchNorm on batch
statistics and dropout active, which is our default ``model.test_mode=train``; the Hydra
override ``model.test_mode=eval`` matches ``--eval`` (running statistics, no dropout), the
deterministic mode in which outputs equal the official ones. A BatchNorm state dict saved
before PyTorch 0.4.1 has no ``num_batches_tracked``; it is filled with 0, the value PyTorch
itself gives such a file (it only matters to cumulative-average BatchNorm, not used here).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from imtrans.official import IDENTITY, Imported, Network, OfficialFormatError, read_file, state_dict_in
from imtrans.official.layers import (
    find_snapshot,
    patch_discriminator_options,
    patch_discriminator_rules,
    tensor,
)

OPTIONS = {
    "epoch": "which snapshot of a checkpoint folder: latest (default), an epoch number or iter_<N>",
}
NETWORKS = ("G", "D")


def fill_num_batches_tracked(sd: dict[str, torch.Tensor]) -> list[str]:
    """Add ``num_batches_tracked`` (0) to BatchNorm layers saved without it (PyTorch < 0.4.1):
    PyTorch fills the same value when it loads such a file itself. Returns the keys added."""
    added = []
    for key in list(sd):
        if key.endswith(".running_mean"):
            prefix = key[: -len("running_mean")]
            if f"{prefix}weight" in sd and f"{prefix}num_batches_tracked" not in sd:
                sd[f"{prefix}num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
                added.append(f"{prefix}num_batches_tracked")
    return added


def unet_options(sd: dict[str, torch.Tensor], path: Path) -> dict:
    """``ngf``, ``num_downs``, ``input_nc``, ``output_nc``, ``norm`` of a junyanz UnetGenerator.

    Level 1 is ``model.model`` (down conv ``.0``, inner level ``.1``, up conv ``.3``); every
    deeper level sits at ``.model.3`` of the one above, with its down conv at ``.model.1``.
    """
    first = tensor(sd, "model.model.0.weight", path)  # ngf x input_nc x 4 x 4
    last = tensor(sd, "model.model.3.weight", path)  # ConvTranspose2d: 2 ngf x output_nc x 4 x 4
    inner = [k for k in sd if re.fullmatch(r"model\.model\.1(\.model\.3)*\.model\.1\.weight", k)]
    if not inner:
        raise OfficialFormatError(
            f"{path}: no inner U-Net levels ('model.model.1.model.1.weight'): not a UnetGenerator "
            "(the wrong METHOD for this file?)"
        )
    batch = "model.model.1.model.2.weight" in sd
    if not batch and "model.model.1.model.1.bias" not in sd:
        raise OfficialFormatError(
            f"{path}: U-Net level 2 has neither BatchNorm tensors (model.model.1.model.2.weight) nor a "
            "conv bias (InstanceNorm): a norm layer this importer does not know"
        )
    return {
        "ngf": int(first.shape[0]),
        "input_nc": int(first.shape[1]),
        "output_nc": int(last.shape[1]),
        "num_downs": 1 + len(inner),
        "norm": "batch" if batch else "instance",
    }


def read(path: Path, epoch: str | None = None) -> Imported:
    files, _ = find_snapshot(path, NETWORKS, epoch)
    if "G" not in files:
        raise OfficialFormatError(f"{path}: no generator file (<epoch>_net_G.pth) in this snapshot")
    networks, notes = {}, []
    g_file = files["G"]
    g_sd = state_dict_in(read_file(g_file), g_file)
    g = unet_options(g_sd, g_file)
    if g["num_downs"] < 5:
        raise OfficialFormatError(f"{g_file}: a U-Net of {g['num_downs']} levels; pix2pix's has at least 5")
    filled = fill_num_batches_tracked(g_sd)
    networks["G"] = Network(g_sd, IDENTITY, g_file)
    options = {
        "netG": f"unet_{2 ** g['num_downs']}",
        "num_downs": g["num_downs"],
        "ngf": g["ngf"],
        "input_nc": g["input_nc"],
        "output_nc": g["output_nc"],
        "norm": g["norm"],
        "no_dropout": "unknown (no tensor); assumed False as published",
    }
    size = 2 ** min(g["num_downs"], 8)
    overrides = [
        "model=pix2pix",
        f"data.input_nc={g['input_nc']}",
        f"data.output_nc={g['output_nc']}",
        f"data.size={size}",
        f"data.crop_size={size}",
        f"model.generator.num_downs={g['num_downs']}",
        f"model.generator.ngf={g['ngf']}",
        f"model.generator.norm={g['norm']}",
    ]
    if "D" in files:
        d_file = files["D"]
        d_sd = state_dict_in(read_file(d_file), d_file)
        if "model.model.0.weight" in d_sd:
            raise OfficialFormatError(f"{d_file}: holds a U-Net generator, but its name says discriminator D")
        d = patch_discriminator_options(d_sd, d_file)
        if d["input_nc"] != g["input_nc"] + g["output_nc"]:
            raise OfficialFormatError(
                f"{d_file}: D reads {d['input_nc']} channels, the conditional D of this G reads "
                f"input_nc + output_nc = {g['input_nc'] + g['output_nc']} (another model's D?)"
            )
        d_norm = "batch" if d["norm_tensors"] else "instance"
        if d_norm != g["norm"]:
            raise OfficialFormatError(
                f"{d_file}: D has {d_norm} norm layers, G {g['norm']} (one --norm for both)"
            )
        filled += fill_num_batches_tracked(d_sd)
        networks["D"] = Network(
            d_sd, patch_discriminator_rules(d["n_layers"], norm_tensors=d["norm_tensors"]), d_file
        )
        options.update(
            netD="basic" if d["n_layers"] == 3 else "n_layers", ndf=d["ndf"], n_layers_D=d["n_layers"]
        )
        overrides += [
            f"model.discriminator.ndf={d['ndf']}",
            f"model.discriminator.n_layers={d['n_layers']}",
            f"model.discriminator.norm={d_norm}",
        ]
    else:
        overrides.append(f"model.discriminator.norm={g['norm']}")
    if filled:
        notes.append(
            f"filled {len(filled)} BatchNorm num_batches_tracked (0), absent in files of PyTorch < 0.4.1"
        )
    return Imported(
        overrides=overrides,
        networks=networks,
        sources=[files[n] for n in NETWORKS if n in files],
        official_options=options,
        notes=notes,
    )
