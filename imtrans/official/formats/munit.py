"""MUNIT checkpoints of NVlabs/MUNIT (``MUNIT_Trainer``), and the reading logic UNIT shares.

The official trainer saves, every ``snapshot_save_iter`` iterations, into
``outputs/<name>/checkpoints/``:

- ``gen_%08d.pt`` = ``{'a': gen_a.state_dict(), 'b': gen_b.state_dict()}`` (``AdaINGen``),
- ``dis_%08d.pt`` = the same for ``dis_a``/``dis_b`` (``MsImageDis``),
- ``optimizer.pt`` = ``{'gen', 'dis'}`` Adam states, overwritten at every snapshot.

The number in the names is ``iterations + 1``; it is recorded as ``Imported.iteration`` (the
imported run itself starts at iteration 0, with fresh optimizers: ``optimizer.pt`` is not
imported). Nothing is DataParallel-wrapped; key names are ours (identity rules), only their
order differs (the official ``Conv2dBlock`` creates ``norm`` before ``conv``), so keys are
mapped by name.

PATH is

- the snapshot folder ``outputs/<name>/checkpoints/`` (or ``outputs/<name>/`` holding it): the
  newest ``gen_*.pt`` by lexicographic sort, as the official resume picks it
  (``utils.get_model_list``; the numbers are zero-padded), and ``dis_*.pt`` of the *same*
  number when present (the official resume takes the newest ``dis`` on its own, which is the
  same file unless a snapshot is incomplete; a mismatched pair is not mixed here);
- a ``gen_%08d.pt`` file (its ``dis_%08d.pt`` sibling is taken when present);
- any other file holding ``{'a', 'b'}`` generator dicts, e.g. the published ``edges2shoes.pt``
  (gen only): the discriminators are then initialised fresh.

PyTorch 0.3 files (the published ``edges2shoes.pt``) carry InstanceNorm ``running_mean/var``
in ``enc_content``; they are dropped as ``utils.pytorch03_to_pytorch04`` drops them. The AdaIN
layers' ``running_mean/var`` of ``dec`` are unused official buffers that our AdaIN layers also
hold: they are loaded, not dropped.

Architecture options read from the shapes, as Hydra overrides of ``conf/model/munit.yaml``:
``gen.dim``, ``style_dim``, ``mlp_dim``, ``n_downsample``, ``n_res`` (and the style encoder's
stride-2 convolutions, 4 officially), the input channels of each domain (``data.input_nc``
for A, ``data.output_nc`` for B), ``dis.dim``, ``n_layer``, ``num_scales`` and ``dis.norm`` where it
leaves tensors (``ln``; ``in`` only in PyTorch 0.3 files, by its statistics). Not in any
tensor, hence the preset's values (relu, reflect, as every official config): ``gen.activ``,
``gen.pad_type``, ``dis.activ``, ``dis.pad_type``, ``dis.gan_type``; a discriminator trained with
``norm: in`` under PyTorch >= 0.4 stores no trace of it and is imported with ``norm: none``.
Override them on the command line (``model.generator.activ=lrelu``) where a config differs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path

import torch

from imtrans.official import (
    IDENTITY,
    Imported,
    Network,
    OfficialFormatError,
    entry,
    newest,
    read_file,
    state_dict_in,
)
from imtrans.official.layers import indices, tensor

OPTIONS: dict[str, str] = {}

_GEN = re.compile(r"gen_(\d+)\.pt")
_HINT = " (an official MUNIT/UNIT checkpoint is {'a': state dict, 'b': state dict})"
SDS = dict[str, dict[str, torch.Tensor]]


def _where(file: Path, what: str) -> str:
    return f"{file} [{what!r}]"


# ----------------------------------------------------------------------------- files
def find_snapshot(path: Path) -> tuple[Path, Path | None, int | None, list[str]]:
    """(gen file, dis file or None, the number in the gen file's name or None, notes)."""
    notes: list[str] = []
    if path.is_dir():
        folder = path
        if not any(folder.glob("gen_*.pt")) and (folder / "checkpoints").is_dir():
            folder = folder / "checkpoints"  # outputs/<name>/ given instead of its checkpoints/
        gen = newest(folder, "gen_*.pt", "generator snapshot")
        if (folder / "optimizer.pt").is_file():
            notes.append("optimizer.pt not imported: the imported run starts with fresh optimizers")
    else:
        gen = path
    m = _GEN.fullmatch(gen.name)
    number = int(m.group(1)) if m else None
    dis = None
    if m:
        sibling = gen.with_name(f"dis_{m.group(1)}.pt")
        if sibling.is_file():
            dis = sibling
        elif any(gen.parent.glob("dis_*.pt")):
            notes.append(
                f"no {sibling.name} of the same snapshot as {gen.name}: discriminators initialised fresh"
            )
    if number is not None:
        notes.append(
            f"official snapshot {gen.name}: file number {number} = the official trainer's iterations + 1 "
            "(where its resume continues); the imported run starts at iteration 0"
        )
    return gen, dis, number, notes


def read_pair(file: Path, kind: str) -> SDS:
    """``{'a': state dict, 'b': state dict}`` of an official gen/dis file (``kind`` names it)."""
    obj = read_file(file)
    if isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        first = next(iter(obj))
        raise OfficialFormatError(
            f"{file}: a single state dict (first key {first!r}), not MUNIT/UNIT {kind} "
            "{'a': state dict, 'b': state dict} (the wrong METHOD for this file?)"
        )
    return {d: state_dict_in(entry(obj, d, file, _HINT), file, d) for d in ("a", "b")}


def _not_generators(sd: Mapping[str, torch.Tensor], file: Path, what: str) -> None:
    """A discriminator file given where the generators are expected."""
    if any(k.startswith("cnns.") for k in sd):
        raise OfficialFormatError(
            f"{_where(file, what)}: holds discriminators ('cnns.*' keys), not generators; "
            "give the gen_%08d.pt file or the checkpoints folder"
        )


# ----------------------------------------------------------------------------- shapes
def content_encoder_options(sd: Mapping[str, torch.Tensor], prefix: str, file: Path, what: str) -> dict:
    """``dim``, ``input_dim``, ``n_downsample``, ``n_res`` of an official ``ContentEncoder`` at
    ``prefix`` (``enc_content`` in AdaINGen, ``enc`` in VAEGen).

    Layout: ``model.0`` 7x7 conv (dim x input_dim x 7 x 7), ``model.1 .. model.n`` stride-2
    convs, ``model.{n+1}`` the ResBlocks (``model.{n+1}.model.{b}.model.{0,1}``).
    """
    first = tensor(sd, f"{prefix}.model.0.conv.weight", file, what)
    p = re.escape(prefix)
    convs = indices(sd, rf"{p}\.model\.(\d+)\.conv\.weight")
    if convs != list(range(len(convs))):
        raise OfficialFormatError(
            f"{_where(file, what)}: {prefix} convolutions at positions {convs} fit no MUNIT content encoder"
        )
    n_down = len(convs) - 1
    blocks = indices(sd, rf"{p}\.model\.{n_down + 1}\.model\.(\d+)\.model\.0\.conv\.weight")
    if blocks != list(range(len(blocks))):
        raise OfficialFormatError(
            f"{_where(file, what)}: {prefix} residual blocks {blocks} fit no MUNIT content encoder"
        )
    return {
        "dim": int(first.shape[0]),
        "input_dim": int(first.shape[1]),
        "n_downsample": n_down,
        "n_res": len(blocks),
    }


def discriminator_options(sd: Mapping[str, torch.Tensor], file: Path, what: str) -> dict:
    """``dim``, ``n_layer``, ``num_scales``, ``norm``, ``input_dim`` of an official ``MsImageDis``.

    Layout: ``cnns.{s}.{0 .. n_layer-1}.conv`` 4x4 stride-2 convs (the first dim x input_dim),
    ``cnns.{s}.{n_layer}`` the 1x1 conv to one channel. The norm leaves: ``ln`` gamma/beta
    (ours ``layer``), ``bn`` weight/bias and statistics, ``sn`` ``conv.module.weight_bar/u/v``,
    ``in`` statistics in PyTorch 0.3 files only.
    """
    if any(k.startswith(("enc.", "enc_content.", "enc_style.", "dec.")) for k in sd):
        raise OfficialFormatError(
            f"{_where(file, what)}: holds generators (first key {next(iter(sd))!r}), not discriminators"
        )
    first = tensor(sd, "cnns.0.0.conv.weight", file, what)
    scales = indices(sd, r"cnns\.(\d+)\..*")
    layers = indices(sd, r"cnns\.0\.(\d+)\.conv\.(?:module\.)?(?:weight|weight_bar)")
    if not layers or layers != list(range(len(layers))) or scales != list(range(len(scales))):
        raise OfficialFormatError(
            f"{_where(file, what)}: layers {layers} of scales {scales} fit no MsImageDis layout"
        )
    if any(".conv.module." in k for k in sd):
        raise OfficialFormatError(
            f"{_where(file, what)}: spectral-norm discriminator (dis norm sn, key "
            f"{next(k for k in sd if '.conv.module.' in k)!r}) is not supported by imtrans MsImageDis"
        )
    if any(k.endswith(".norm.weight") for k in sd):
        raise OfficialFormatError(
            f"{_where(file, what)}: batch-norm discriminator (dis norm bn, key "
            f"{next(k for k in sd if k.endswith('.norm.weight'))!r}) is not supported by imtrans MsImageDis"
        )
    if any(k.endswith(".norm.gamma") for k in sd):
        norm = "layer"
    elif any(k.endswith(".norm.running_mean") for k in sd):
        norm = "instance"  # PyTorch 0.3 InstanceNorm statistics (dropped on loading)
    else:
        norm = "none"
    return {
        "dim": int(first.shape[0]),
        "input_dim": int(first.shape[1]),
        "n_layer": len(layers),
        "num_scales": len(scales),
        "norm": norm,
    }


def _same(options: dict[str, dict], file: Path, kind: str) -> dict:
    """The options of the 'a' and 'b' networks, which must agree but for the input channels."""
    a, b = ({k: v for k, v in options[d].items() if k != "input_dim"} for d in ("a", "b"))
    if a != b:
        key = next(k for k in a if a[k] != b.get(k))
        raise OfficialFormatError(
            f"{file}: {kind} 'a' and 'b' differ in {key} ({a[key]} vs {b.get(key)}); "
            "the official trainer builds both from one config"
        )
    return a


# ----------------------------------------------------------------------------- driver
def read_two_domain(
    path: Path,
    model: str,
    generator_options: Callable[[Mapping[str, torch.Tensor], Path, str], dict],
    generator_overrides: Callable[[dict], list[str]],
) -> Imported:
    """What MUNIT and UNIT share: the files, both ``{'a','b'}`` pairs, the discriminator options,
    the input channels of both domains, identity-renamed networks ``gen_a/gen_b/dis_a/dis_b``.

    ``generator_options(sd, file, what)`` reads one generator's options (with ``input_dim``);
    ``generator_overrides(options)`` turns the agreed ones into ``model.generator.*`` overrides.
    """
    gen_file, dis_file, number, notes = find_snapshot(path)
    gens = read_pair(gen_file, "generators")
    gen_opts = {}
    for d, sd in gens.items():
        _not_generators(sd, gen_file, d)
        gen_opts[d] = generator_options(sd, gen_file, d)
    gen = _same(gen_opts, gen_file, "generators")
    nc = {d: gen_opts[d]["input_dim"] for d in ("a", "b")}
    networks = {f"gen_{d}": Network(sd, IDENTITY, gen_file, d) for d, sd in gens.items()}
    options: dict = {"input_dim_a": nc["a"], "input_dim_b": nc["b"], "gen": gen}
    overrides = [
        f"model={model}",
        f"data.input_nc={nc['a']}",
        f"data.output_nc={nc['b']}",
        *generator_overrides(gen),
    ]
    sources = [gen_file]
    if dis_file is not None:
        dises = read_pair(dis_file, "discriminators")
        dis_opts = {d: discriminator_options(sd, dis_file, d) for d, sd in dises.items()}
        for d in ("a", "b"):
            if dis_opts[d]["input_dim"] != nc[d]:
                raise OfficialFormatError(
                    f"{_where(dis_file, d)}: takes {dis_opts[d]['input_dim']} channels, gen {d!r} of "
                    f"{gen_file.name} {nc[d]} (files of different models?)"
                )
        dis = _same(dis_opts, dis_file, "discriminators")
        options["dis"] = dis
        overrides += [f"model.discriminator.{k}={dis[k]}" for k in ("dim", "n_layer", "num_scales", "norm")]
        networks.update({f"dis_{d}": Network(sd, IDENTITY, dis_file, d) for d, sd in dises.items()})
        sources.append(dis_file)
    else:
        notes.append("no discriminator file: dis_a and dis_b are initialised fresh (the preset's options)")
    notes.append("activ and pad_type are not stored in the files: the preset's relu / reflect are used")
    return Imported(
        overrides=overrides,
        networks=networks,
        sources=sources,
        official_options=options,
        iteration=number,
        notes=notes,
    )


# ----------------------------------------------------------------------------- MUNIT
def adain_gen_options(sd: Mapping[str, torch.Tensor], file: Path, what: str) -> dict:
    """Options of an official ``AdaINGen``: the content encoder's, ``style_dim`` (the style
    encoder's last 1x1 conv, style_dim x C x 1 x 1), ``mlp_dim`` (the MLP's first linear,
    mlp_dim x style_dim) and the style encoder's stride-2 convs (``enc_style.model.1 .. k``)."""
    if "enc_content.model.0.conv.weight" not in sd and "enc.model.0.conv.weight" in sd:
        raise OfficialFormatError(
            f"{_where(file, what)}: holds UNIT generators (VAEGen: 'enc.*' keys, no style encoder), "
            "not MUNIT's AdaINGen; import it with METHOD unit"
        )
    opts = content_encoder_options(sd, "enc_content", file, what)
    style_convs = indices(sd, r"enc_style\.model\.(\d+)\.conv\.weight")
    if not style_convs or style_convs != list(range(len(style_convs))):
        raise OfficialFormatError(
            f"{_where(file, what)}: style encoder convolutions at {style_convs} fit no MUNIT style encoder"
        )
    n = len(style_convs) - 1
    # after the stride-2 convs: the global pool (no tensors), then the 1x1 conv to style_dim
    style = tensor(sd, f"enc_style.model.{n + 2}.weight", file, what)
    mlp = tensor(sd, "mlp.model.0.fc.weight", file, what)
    opts.update(style_dim=int(style.shape[0]), mlp_dim=int(mlp.shape[0]), style_downsample=n)
    return opts


def _munit_overrides(gen: dict) -> list[str]:
    keys = ("dim", "style_dim", "mlp_dim", "n_downsample", "n_res", "style_downsample")
    return [f"model.generator.{k}={gen[k]}" for k in keys]


def read(path: Path) -> Imported:
    return read_two_domain(path, "munit", adain_gen_options, _munit_overrides)
