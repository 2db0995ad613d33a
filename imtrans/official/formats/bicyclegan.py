"""BicycleGAN checkpoints of junyanz/BicycleGAN.

The official code saves one raw state dict per network, ``<epoch>_net_<name>.pth`` with name
``G``, ``D``, ``D2`` and ``E`` (``latest``, ``5`` ...; no prefix, no optimizer state). PATH is one
such file or the checkpoint folder, whose newest snapshot is taken as the official resume takes
it (``latest`` when present, else the highest number; ``epoch=`` picks another). The published
models are ``pretrained_models/<name>/latest_net_{G,E}.pth``: the discriminators are then
initialised fresh (and E too for a ``--no_encode`` model such as maps, which has no E file;
example-guided translation then needs an encoder trained first).

Renaming (labels as in :mod:`~imtrans.official.layers`): B1, G ``G_Unet_add_all`` (z added at every
down block): each ``submodule`` is our ``inner``; B2, D/D2 ``D_NLayersMulti``: scale ``model_<s>``
is our ``scales.<s>.model`` by rule R2; B3, E ``E_ResNet``: ``fc.0``/``fcVar.0`` are our
``mu``/``logvar``, ``conv.<n>.conv.{2,5.0}`` our ``conv.<n>.body.{2,5}``. Read from the shapes:
nz, ngf, input/output channels (edges are 1 channel), U-Net depth (7 = unet_128, 8 =
unet_256), nef and the encoder's blocks (3 = resnet_128, 4 = resnet_256), ndf, n_layers
(2 = basic_128_multi, 3 = basic_256_multi) and the number of D scales. Dropout leaves no
tensor and is off at test time (``test.py`` calls ``model.eval()``, as our ``translate``):
it is kept on for fine-tuning, as ``--use_dropout`` in the official training scripts.
The data crop is the one the encoder's fixed AvgPool2d(8) needs (128 px for resnet_128),
else 2**num_downs. InstanceNorm statistics of files of PyTorch <= 0.3 are dropped.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from imtrans.official import Imported, Network, OfficialFormatError, read_file, state_dict_in
from imtrans.official.layers import (
    find_snapshot,
    indices,
    patch_discriminator_options,
    patch_discriminator_rules,
    tensor,
)

OPTIONS = {
    "epoch": "which snapshot of a checkpoint folder: latest (default), an epoch number",
}
NETWORKS = ("G", "E", "D", "D2")

#: B1: ``model(.submodule)*.{down,up}.<i>`` -> ``model(.inner)*.{down,up}.<i>``
G_RULES = [
    (
        r"model((?:\.submodule)*)\.((?:down|up)\.\d+\.(?:weight|bias))",
        lambda m: "model" + m.group(1).replace("submodule", "inner") + "." + m.group(2),
    )
]
#: B3, E_ResNet's linear heads and down-sampling residual blocks
E_RULES = [
    (r"fc\.0\.(weight|bias)", r"mu.\1"),
    (r"fcVar\.0\.(weight|bias)", r"logvar.\1"),
    (r"conv\.0\.(weight|bias)", r"conv.0.\1"),
    (r"conv\.(\d+)\.conv\.2\.(weight|bias)", r"conv.\1.body.2.\2"),
    (r"conv\.(\d+)\.conv\.5\.0\.(weight|bias)", r"conv.\1.body.5.\2"),
    (r"conv\.(\d+)\.shortcut\.1\.(weight|bias)", r"conv.\1.shortcut.1.\2"),
]


def d_rules(n_layers: int, num_d: int) -> list:
    """B2: rule R2 per scale, official ``model_<s>`` to our ``scales.<s>.model``."""
    rules: list = []
    for s in range(num_d):
        rules += patch_discriminator_rules(n_layers, official=f"model_{s}", ours=f"scales.{s}.model")
    return rules


def _instance_only(sd: dict[str, torch.Tensor], path: Path, pattern: str, what: str) -> None:
    """Our BicycleGAN networks use InstanceNorm (the official default); a BatchNorm model
    (``--norm batch``) has affine norm weights where the InstanceNorm layers hold nothing."""
    for key in sd:
        if re.fullmatch(pattern, key):
            raise OfficialFormatError(
                f"{path}: BatchNorm tensor {key!r} in {what} (trained with --norm batch); imtrans imports "
                "BicycleGAN models with InstanceNorm (--norm instance, the default) only"
            )


def generator_options(sd: dict[str, torch.Tensor], path: Path) -> dict:
    """``ngf``, ``nz``, ``input_nc``, ``output_nc``, ``num_downs`` of a ``G_Unet_add_all``.

    Level 1 (``model``) has down conv ``down.0``: ngf x (input_nc + nz); level 2
    (``model.submodule``) ``down.1``: 2 ngf x (ngf + nz); the outermost up conv ``up.1`` is a
    ConvTranspose2d 2 ngf x output_nc.
    """
    first = tensor(sd, "model.down.0.weight", path)
    second = tensor(sd, "model.submodule.down.1.weight", path)
    last = tensor(sd, "model.up.1.weight", path)
    ngf = int(first.shape[0])
    nz = int(second.shape[1]) - ngf
    if nz <= 0:
        raise OfficialFormatError(
            f"{path}: level 2 reads {int(second.shape[1])} channels = ngf {ngf} without z: a G that adds z "
            "at the input only (--where_add input); imtrans's BicycleGAN G adds it at every level (all)"
        )
    depth = max(k.count("submodule.") for k in sd if k.startswith("model.")) + 1
    return {
        "ngf": ngf,
        "nz": nz,
        "input_nc": int(first.shape[1]) - nz,
        "output_nc": int(last.shape[1]),
        "num_downs": depth,
    }


def encoder_options(sd: dict[str, torch.Tensor], path: Path) -> dict:
    """``nef``, ``input_nc``, ``nz`` and our ``n_blocks`` of an ``E_ResNet`` (its ``n_blocks``
    option counts the first conv too: resnet_128 = 4 = our 3 residual blocks)."""
    first = tensor(sd, "conv.0.weight", path)
    head = tensor(sd, "fc.0.weight", path)
    blocks = indices(sd, r"conv\.(\d+)\.conv\.2\.weight")
    if not blocks:
        raise OfficialFormatError(
            f"{path}: no residual blocks ('conv.<n>.conv.2.weight'): not an E_ResNet (netE conv_* "
            "encoders are not supported; imtrans's is resnet_128/resnet_256)"
        )
    if blocks != list(range(1, len(blocks) + 1)):
        raise OfficialFormatError(f"{path}: encoder blocks at positions {blocks} fit no E_ResNet layout")
    return {
        "nef": int(first.shape[0]),
        "input_nc": int(first.shape[1]),
        "nz": int(head.shape[0]),
        "n_blocks": len(blocks),
    }


def discriminator_options(sd: dict[str, torch.Tensor], path: Path) -> dict:
    """``ndf``, ``n_layers``, ``num_D``, ``input_nc`` of a ``D_NLayersMulti`` with 2+ scales."""
    if "model.0.weight" in sd:
        raise OfficialFormatError(
            f"{path}: a single-scale D ('model.0.weight': netD basic_* or --num_Ds 1); imtrans's BicycleGAN "
            "D is multi-scale (netD basic_*_multi, keys model_0.*, model_1.*)"
        )
    d = patch_discriminator_options(sd, path, official="model_0")
    scales = indices(sd, r"model_(\d+)\..*")
    if scales != list(range(len(scales))) or len(scales) < 2:
        raise OfficialFormatError(f"{path}: D scales {scales} fit no D_NLayersMulti layout")
    # official: scale s divides the previous scale's width by 2**s (ndf, ndf/2, ndf/8, ...);
    # ours divides ndf by 2**s (ndf, ndf/2, ndf/4), so they agree for two scales (the default) only
    official = [d["ndf"]]
    for s in range(1, len(scales)):
        official.append(int(round(official[-1] / 2**s)))
    ours = [int(round(d["ndf"] / 2**s)) for s in range(len(scales))]
    found = [int(tensor(sd, f"model_{s}.0.weight", path).shape[0]) for s in scales]
    if found != official or official != ours:
        raise OfficialFormatError(
            f"{path}: D scale widths {found}; imtrans's MultiScalePatchGAN has {ours} "
            f"(ndf {d['ndf']}, {len(scales)} scales; only --num_Ds 2 agrees)"
        )
    if d["norm_tensors"]:
        raise OfficialFormatError(
            f"{path}: BatchNorm tensor 'model_0.3.weight' in D (trained with --norm batch); imtrans imports "
            "BicycleGAN models with InstanceNorm (--norm instance, the default) only"
        )
    return {**d, "num_D": len(scales)}


def read(path: Path, epoch: str | None = None) -> Imported:
    files, _ = find_snapshot(path, ("G", "D", "D2", "E"), epoch)
    if "G" not in files:
        raise OfficialFormatError(f"{path}: no generator file (<epoch>_net_G.pth) in this snapshot")
    sds = {name: state_dict_in(read_file(file), file) for name, file in files.items()}
    g_file = files["G"]
    g = generator_options(sds["G"], g_file)
    _instance_only(sds["G"], g_file, r"model(\.submodule)*\.(down|up)\.2\.weight", "G")
    if g["num_downs"] < 6:
        raise OfficialFormatError(
            f"{g_file}: a U-Net of {g['num_downs']} levels; BicycleGAN's has at least 6"
        )
    networks = {"G": Network(sds["G"], G_RULES, g_file)}
    options = {
        "netG": f"unet_{2 ** g['num_downs']}",
        "where_add": "all",
        "num_downs": g["num_downs"],
        "ngf": g["ngf"],
        "nz": g["nz"],
        "input_nc": g["input_nc"],
        "output_nc": g["output_nc"],
        "norm": "instance",
        "use_dropout": "unknown (no tensor); assumed True as in the training scripts",
    }
    overrides = [
        "model=bicyclegan",
        f"data.input_nc={g['input_nc']}",
        f"data.output_nc={g['output_nc']}",
        f"model.nz={g['nz']}",
        f"model.generator.num_downs={g['num_downs']}",
        f"model.generator.ngf={g['ngf']}",
    ]
    size = 2 ** min(g["num_downs"], 8)
    notes = []
    if "E" in files:
        e_file = files["E"]
        if "model.down.0.weight" in sds["E"]:
            raise OfficialFormatError(f"{e_file}: holds a U-Net generator, but its name says encoder E")
        e = encoder_options(sds["E"], e_file)
        _instance_only(sds["E"], e_file, r"conv\.\d+\.conv\.[03]\.weight", "E")
        if e["nz"] != g["nz"] or e["input_nc"] != g["output_nc"]:
            raise OfficialFormatError(
                f"{e_file}: E encodes {e['input_nc']}-channel images to nz {e['nz']}, G makes "
                f"{g['output_nc']}-channel images from nz {g['nz']} (files of two models?)"
            )
        # the fixed AvgPool2d(8) after n_blocks + 1 halvings: the only size E accepts
        size = 8 * 2 ** (e["n_blocks"] + 1)
        if size % 2 ** g["num_downs"]:
            raise OfficialFormatError(
                f"{e_file}: E (resnet_{size}) takes {size} px images, G ({options['netG']}) needs a multiple "
                f"of {2 ** g['num_downs']} px"
            )
        networks["E"] = Network(sds["E"], E_RULES, e_file)
        options.update(netE=f"resnet_{size}", nef=e["nef"])
        overrides += [f"model.encoder.ndf={e['nef']}", f"model.encoder.n_blocks={e['n_blocks']}"]
    else:
        notes.append(
            "no E file (--no_encode?): the encoder is fresh; example-guided translation needs it trained"
        )
    d_opts = None
    for name in ("D", "D2"):
        if name not in files:
            continue
        file = files[name]
        if "model.down.0.weight" in sds[name]:
            raise OfficialFormatError(
                f"{file}: holds a U-Net generator, but its name says discriminator {name}"
            )
        d = discriminator_options(sds[name], file)
        if d["input_nc"] != g["output_nc"]:
            raise OfficialFormatError(
                f"{file}: {name} reads {d['input_nc']} channels, G makes {g['output_nc']} "
                "(a conditional D, --conditional_D, is not supported)"
            )
        if d_opts is not None and d != d_opts:
            raise OfficialFormatError(
                f"{file}: D2 options {d} differ from D's {d_opts}; imtrans builds D and D2 alike"
            )
        d_opts = d
        networks[name] = Network(sds[name], d_rules(d["n_layers"], d["num_D"]), file)
    if d_opts is not None:
        net_d = {2: "basic_128_multi", 3: "basic_256_multi"}.get(d_opts["n_layers"], "basic_*_multi")
        options.update(
            netD=net_d, netD2=net_d, ndf=d_opts["ndf"], n_layers_D=d_opts["n_layers"], num_Ds=d_opts["num_D"]
        )
        overrides += [
            f"model.discriminator.ndf={d_opts['ndf']}",
            f"model.discriminator.n_layers={d_opts['n_layers']}",
            f"model.discriminator.num_D={d_opts['num_D']}",
        ]
    overrides += [f"data.size={size}", f"data.crop_size={size}"]
    return Imported(
        overrides=overrides,
        networks=networks,
        sources=[files[n] for n in ("G", "D", "D2", "E") if n in files],
        official_options=options,
        notes=notes,
    )
