"""CycleGAN checkpoints of junyanz/pytorch-CycleGAN-and-pix2pix.

The official code saves one raw state dict per network, ``<epoch>_net_<name>.pth`` with
name ``G_A``, ``G_B``, ``D_A``, ``D_B`` (``latest``, ``5``, ``iter_20000`` ...). PATH is one such
file or the ``checkpoints/<name>/`` folder (``latest`` is taken when present, else the
highest epoch). The published pretrained models are a single generator of one direction,
``checkpoints/<name>_pretrained/latest_net_G.pth``: ``direction=a2b`` (default) or ``b2a`` says
which one it is; the other direction is then not available (``translate`` says so), and the
other networks are initialised fresh. Files written before Oct 2018 carry InstanceNorm
statistics, dropped as the official loader drops them. Architecture options read from the
shapes: ngf, number of residual blocks, input/output channels, dropout, ndf, n_layers_D.
"""

from __future__ import annotations

from pathlib import Path

from imtrans.official import Imported, Network, OfficialFormatError, read_file, state_dict_in
from imtrans.official.layers import (
    find_snapshot,
    patch_discriminator_options,
    patch_discriminator_rules,
    resnet_generator_options,
    resnet_generator_rules,
)

OPTIONS = {
    "direction": "a2b (default) or b2a: which way a single published generator (latest_net_G.pth) translates",
    "epoch": "which snapshot of a checkpoint folder: latest (default), an epoch number or iter_<N>",
}
NETWORKS = ("G_A", "G_B", "D_A", "D_B")


def find_files(path: Path, epoch: str | None = None) -> dict[str, Path]:
    """``{network name: file}``; a single-generator file (``latest_net_G.pth`` as published, or
    renamed) is keyed ``G``."""
    return find_snapshot(path, (*NETWORKS, "G"), epoch, renamed="G")[0]


def read(path: Path, direction: str | None = None, epoch: str | None = None) -> Imported:
    if direction not in (None, "a2b", "b2a"):
        raise OfficialFormatError(f"direction={direction}: expected a2b or b2a")
    files = find_files(path, epoch)
    if "G" in files:
        if len(files) > 1:
            raise OfficialFormatError(
                f"{path}: both a single latest_net_G.pth and G_A/G_B files; give one file"
            )
        # one published generator: G_A translates A -> B, so a b2a file becomes G_B
        files = {"G_A" if (direction or "a2b") == "a2b" else "G_B": files.pop("G")}
    elif direction is not None and {"G_A", "G_B"} & set(files) != {"G_A" if direction == "a2b" else "G_B"}:
        raise OfficialFormatError(
            f"{path}: direction={direction} names one generator, but the files hold "
            f"{', '.join(sorted({'G_A', 'G_B'} & set(files)))} (G_A translates a2b, G_B b2a)"
        )
    present = [d for d, g in (("a2b", "G_A"), ("b2a", "G_B")) if g in files]
    single = len(present) == 1
    direction = present[0] if single else None
    networks, options, overrides = {}, {}, ["model=cyclegan"]
    gen = None
    for name in NETWORKS:
        if name not in files:
            continue
        file = files[name]
        sd = state_dict_in(read_file(file), file)
        if name.startswith("G"):
            opts = resnet_generator_options(sd, file)
            if gen is not None and {k: v for k, v in opts.items() if k not in ("input_nc", "output_nc")} != {
                k: v for k, v in gen.items() if k not in ("input_nc", "output_nc")
            }:
                raise OfficialFormatError(
                    f"{file}: generator options {opts} differ from the other generator's {gen}"
                )
            gen = opts
            rules = resnet_generator_rules(opts["n_down"], opts["n_blocks"], opts["dropout"])
            nc = (
                (opts["input_nc"], opts["output_nc"])
                if name == "G_A"
                else (opts["output_nc"], opts["input_nc"])
            )
            options.update({"input_nc": nc[0], "output_nc": nc[1]})
        else:
            if any(k.startswith("model.") and "conv_block" in k for k in sd):
                raise OfficialFormatError(
                    f"{file}: holds a generator, but its name says discriminator {name}"
                )
            d = patch_discriminator_options(sd, file)
            options.update({"ndf": d["ndf"], "n_layers_D": d["n_layers"]})
            rules = patch_discriminator_rules(d["n_layers"])
        networks[name] = Network(sd, rules, file)
    if gen is None:
        raise OfficialFormatError(f"{path}: no generator file (latest_net_G_A.pth, latest_net_G.pth ...)")
    if gen["n_down"] != 2:
        raise OfficialFormatError(
            f"{files.get('G_A', files.get('G_B'))}: {gen['n_down']} down levels; CycleGAN has 2"
        )
    options.update(ngf=gen["ngf"], n_blocks=gen["n_blocks"], no_dropout=not gen["dropout"])
    options["netG"] = f"resnet_{gen['n_blocks']}blocks"
    overrides += [
        f"data.input_nc={options['input_nc']}",
        f"data.output_nc={options['output_nc']}",
        f"model.generator.ngf={gen['ngf']}",
        f"model.generator.n_blocks={gen['n_blocks']}",
        f"model.generator.dropout={0.5 if gen['dropout'] else 0.0}",
    ]
    if "ndf" in options:
        overrides += [
            f"model.discriminator.ndf={options['ndf']}",
            f"model.discriminator.n_layers={options['n_layers_D']}",
        ]
    notes = []
    if single:
        overrides.append(f"+model.directions=[{direction}]")
        notes.append(
            f"one published generator: this model translates {direction} only (direction={direction})"
        )
    return Imported(
        overrides=overrides,
        networks=networks,
        sources=[files[n] for n in NETWORKS if n in files],
        official_options=options,
        notes=notes,
    )
