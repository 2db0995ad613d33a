"""CUT / FastCUT checkpoints of taesungp/contrastive-unpaired-translation.

The official code saves one raw state dict per network (``BaseModel.save_networks``),
``<epoch>_net_<name>.pth`` with name ``G``, ``D`` and ``F`` (``latest``, ``5``, ``iter_20000`` ...);
the published models are ``latest_net_G.pth`` alone. PATH is one such file (a generator) or the
``checkpoints/<name>/`` folder (``latest`` when present, else the highest epoch). A missing D or
F is initialised fresh. The anti-aliasing blur kernels are saved (``model.<i>.filt``); they are
constants and equal ours.

Read from the shapes: ngf, number of residual blocks, dropout, whether down- and up-sampling are
anti-aliased, input/output channels; ndf and n_layers_D; the MLP width of F (``netF_nc``) and its
number of layers. Not recorded in any tensor, so taken from ``mode=`` (default ``cut``) and the
preset: ``--CUT_mode``, ``nce_layers`` (0,4,8,12,16; F's MLP input widths must fit them, which the
strict load checks), ``num_patches``, ``nce_T``.
"""

from __future__ import annotations

import re
from pathlib import Path

from imtrans.official import IDENTITY, Imported, Network, OfficialFormatError, read_file, state_dict_in
from imtrans.official.layers import find_snapshot, indices, tensor

OPTIONS = {
    "mode": "cut (default) or fastcut: the --CUT_mode the model was trained with (no tensor records it)",
    "epoch": "which snapshot of a checkpoint folder: latest (default), an epoch number or iter_<N>",
}
NETWORKS = ("G", "D", "F")


def generator_rules(dropout: bool):
    """Official ResnetBlock ``conv_block.{1,5}`` (``6`` after a dropout) are our ResBlock's
    ``body.{0,1}.1`` (``body.2.1``); every other layer has the official index and keys."""
    second = "6" if dropout else "5"
    return [
        (r"model\.(\d+)\.conv_block\.1\.(weight|bias)", r"model.\1.body.0.1.\2"),
        (
            rf"model\.(\d+)\.conv_block\.{second}\.(weight|bias)",
            r"model.\1.body.2.1.\2" if dropout else r"model.\1.body.1.1.\2",
        ),
        (r"(model\.\d+\.(?:weight|bias|filt))", r"\1"),
    ]


def generator_options(sd, file: Path) -> dict:
    first = tensor(sd, "model.1.weight", file, "G")
    blocks = indices(sd, r"model\.(\d+)\.conv_block\..*")
    if not blocks:
        raise OfficialFormatError(
            f"{file}: no residual blocks ('model.<i>.conv_block.*' keys): not a CUT generator "
            f"(first key {next(iter(sd))!r}; the wrong METHOD for this file?)"
        )
    filters = {i: tuple(sd[f"model.{i}.filt"].shape[2:]) for i in indices(sd, r"model\.(\d+)\.filt")}
    down = [i for i in filters if i < blocks[0]]
    up = [i for i in filters if i > blocks[-1]]
    if len(down) not in (0, 2) or len(up) not in (0, 2) or bool(down) != bool(up):
        raise OfficialFormatError(
            f"{file}: blur filters at {sorted(filters)}: imtrans builds CUT with anti-aliasing on both "
            "sides (default) or on neither (--no_antialias --no_antialias_up), not one side alone"
        )
    antialias = bool(down)
    expected_start = 12 if antialias else 10
    if blocks[0] != expected_start or blocks != list(range(blocks[0], blocks[0] + len(blocks))):
        raise OfficialFormatError(
            f"{file}: residual blocks at positions {blocks} fit no CUT generator layout"
        )
    last = max(indices(sd, r"model\.(\d+)\.weight"))
    return {
        "ngf": int(first.shape[0]),
        "input_nc": int(first.shape[1]),
        "output_nc": int(sd[f"model.{last}.weight"].shape[0]),
        "n_blocks": len(blocks),
        "dropout": any(re.fullmatch(r"model\.\d+\.conv_block\.6\.weight", k) for k in sd),
        "antialias": antialias,
    }


def discriminator_options(sd, file: Path) -> dict:
    first = tensor(sd, "model.0.weight", file, "D")
    if any("conv_block" in k for k in sd):
        raise OfficialFormatError(f"{file}: holds a generator, but its name says discriminator D")
    convs = [i for i in indices(sd, r"model\.(\d+)\.weight") if sd[f"model.{i}.weight"].dim() == 4]
    antialias = "model.2.filt" in sd
    step = 4 if antialias else 3
    n_layers = len(convs) - 2
    first_mid = 3 if antialias else 2
    mids = [first_mid + step * (n - 1) for n in range(1, n_layers)]
    final = (mids[-1] + step) if mids else first_mid
    expected = [0, *mids, final, final + 3]
    if n_layers < 1 or convs != expected:
        raise OfficialFormatError(f"{file}: convolutions at positions {convs} fit no CUT PatchGAN layout")
    return {"ndf": int(first.shape[0]), "n_layers_D": n_layers, "antialias_D": antialias}


def feature_options(sd, file: Path) -> dict:
    mlps = indices(sd, r"mlp_(\d+)\..*")
    if not mlps or mlps != list(range(len(mlps))):
        raise OfficialFormatError(
            f"{file}: no PatchSampleF MLPs ('mlp_<i>.*' keys; first key {next(iter(sd), None)!r}): "
            "not a CUT F network (an F file saved before its first forward is empty)"
        )
    return {"netF_nc": int(tensor(sd, "mlp_0.0.weight", file, "F").shape[0]), "nce_layer_count": len(mlps)}


def read(path: Path, mode: str | None = None, epoch: str | None = None) -> Imported:
    mode = mode or "cut"
    if mode not in ("cut", "fastcut"):
        raise OfficialFormatError(f"mode={mode}: expected cut or fastcut (the official --CUT_mode)")
    files, label = find_snapshot(Path(path), NETWORKS, epoch)
    if "G" not in files:
        raise OfficialFormatError(f"{path}: no generator file (latest_net_G.pth ...)")
    sds = {name: state_dict_in(read_file(file), file) for name, file in files.items()}
    gen = generator_options(sds["G"], files["G"])
    options = {"CUT_mode": "CUT" if mode == "cut" else "FastCUT", **gen}
    overrides = [
        "model=cut",
        f"model.mode={mode}",
        f"data.input_nc={gen['input_nc']}",
        f"data.output_nc={gen['output_nc']}",
        f"model.generator.ngf={gen['ngf']}",
        f"model.generator.n_blocks={gen['n_blocks']}",
        f"model.generator.dropout={0.5 if gen['dropout'] else 0.0}",
        f"model.generator.antialias={str(gen['antialias']).lower()}",
    ]
    networks = {"G": Network(sds["G"], generator_rules(gen["dropout"]), files["G"])}
    if "D" in sds:
        d = discriminator_options(sds["D"], files["D"])
        if d["antialias_D"] != gen["antialias"]:
            raise OfficialFormatError(
                f"{files['D']}: anti-aliasing {'on' if d['antialias_D'] else 'off'} in D but not in G; "
                "imtrans builds both alike"
            )
        options.update(ndf=d["ndf"], n_layers_D=d["n_layers_D"])
        overrides += [
            f"model.discriminator.ndf={d['ndf']}",
            f"model.discriminator.n_layers={d['n_layers_D']}",
        ]
        networks["D"] = Network(sds["D"], IDENTITY, files["D"])
    if "F" in sds:
        f = feature_options(sds["F"], files["F"])
        options.update(f)
        overrides.append(f"model.feature_net.nc={f['netF_nc']}")
        networks["F"] = Network(sds["F"], IDENTITY, files["F"])
    step = re.fullmatch(r"(?:iter_)?(\d+)", label or "")
    return Imported(
        overrides=overrides,
        networks=networks,
        sources=[files[n] for n in NETWORKS if n in files],
        official_options=options,
        iteration=int(step[1]) if step and label.startswith("iter_") else None,
        notes=[f"mode={mode}: the --CUT_mode is not recorded in the files"],
    )
