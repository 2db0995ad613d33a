"""DRIT / DRIT++ checkpoints of HsinYingLee/DRIT (two domains).

The official ``DRIT.save`` writes one ``torch.save`` dict per snapshot: the state dicts of
``disA, disA2, disB, disB2, disContent, enc_c, enc_a, gen``, their eight Adam states
``<net>_opt`` (ignored: the imported run starts with fresh optimizers, as every import does),
``ep`` (0-based epoch) and ``total_it`` (kept as :attr:`Imported.iteration`). ``saver.py`` names
it ``results/<name>/%05d.pth`` % ep every ``model_save_freq`` (10) epochs, and ``last.pth`` when
``total_it`` reaches 500,000 (that path of ``train.py`` lacks an argument, so in practice it is
never written). Our DRIT's attributes carry the official dict keys.

PATH is one such file (any name: ``00009.pth``, ``last.pth``, the published ``example.pth``,
which holds ``enc_c``, ``enc_a`` and ``gen``) or the results folder, where the snapshot with the
highest number is taken (option ``epoch`` picks another), else ``last.pth``, else
``example.pth``. The official resume (``--resume FILE``) always names a file; the numbering is
the only order the folder records (``last.pth`` may be older: once written, training goes on
saving numbered snapshots). Networks absent from the file are initialised fresh.

Layouts: ``--concat 1`` (``E_attr_concat`` + ``G_concat``) or ``--concat 0`` (``E_attr`` + ``G``),
detected from the keys (``model.concat``). Read from the shapes: input channels of both domains,
the base width ``dim`` (``E_content``'s first conv; the content code has 4 * dim channels), ``nz``,
``mlp_dim`` (concat 0), and ``dis_dim``, ``dis_scale``, ``dis_n_layer`` of the image discriminators.
The official widths are literals (64 / 256); ours tie ``E_attr``'s width and the content
discriminator's to ``dim`` as the official literals do, so a file whose widths are not in those
proportions fails the strict load on the first unequal shape.

Not supported by imtrans DRIT, refused with one line: ``--dis_spectral_norm`` discriminators
(``weight_orig``/``weight_u`` keys) and ``--dis_scale 1`` (the single-scale ``Dis``, ``model.*``
keys). ``--dis_norm`` never adds tensors (the official ``'norm' == 'Instance'`` test is always
false). ``--no_ms`` leaves no trace in the file: pass ``loss=drit_no_ms`` to fine-tune without
mode seeking.
"""

from __future__ import annotations

import re
from pathlib import Path

from imtrans.official import (
    Imported,
    Network,
    OfficialFormatError,
    Rules,
    entry,
    read_file,
    state_dict_in,
)
from imtrans.official.layers import indices, tensor

OPTIONS = {
    "epoch": "which %05d.pth of a results folder, by its number (default: the highest)",
}
#: the file's network entries; ours are attributes of the same names
GENERATORS = ("enc_c", "enc_a", "gen")
DISCRIMINATORS = ("disA", "disA2", "disB", "disB2", "disContent")
_NUMBERED = re.compile(r"(\d+)\.pth")


# ----------------------------------------------------------------------------- rules
def _ab(match: re.Match, group: int = 1) -> str:
    """Official domain letter ``A``/``B`` (or ``a``/``b``) as ours: ``a``/``b``."""
    return match.group(group).lower()


#: D1 E_content: the per-domain LeakyReLUConv2d / ReLUINSConv2d wrappers (layers 0-2) are
#: dropped; the residual blocks 3-5 and the shared block keep their ``model`` Sequential.
ENC_C_RULES: Rules = [
    (r"conv([AB])\.([0-2])\.model\.(\d+\.\w+)", lambda m: f"conv_{_ab(m)}.{m[2]}.{m[3]}"),
    (r"conv([AB])\.([3-5])\.model\.(\d+\.\w+)", lambda m: f"conv_{_ab(m)}.{m[2]}.model.{m[3]}"),
    (r"conv_share\.0\.model\.(\d+\.\w+)", r"conv_share.0.model.\1"),
]
#: D2 E_attr_concat: ``conv_A`` / ``fc_A.0`` / ``fcVar_A.0`` -> ``branch_a.conv`` / ``.fc`` / ``.fc_var``.
ENC_A_CONCAT_RULES: Rules = [
    (r"conv_([AB])\.(.+)", lambda m: f"branch_{_ab(m)}.conv.{m[2]}"),
    (r"fc_([AB])\.0\.(weight|bias)", lambda m: f"branch_{_ab(m)}.fc.{m[2]}"),
    (r"fcVar_([AB])\.0\.(weight|bias)", lambda m: f"branch_{_ab(m)}.fc_var.{m[2]}"),
]
#: D6 E_attr (concat 0): one flat Sequential per domain, same positions.
ENC_A_RULES: Rules = [(r"model_([ab])\.(\d+\.\w+)", r"branch_\1.model.\2")]
#: D3 G_concat: shared block unwrapped; ``decA{1..4}`` -> ``dec_a.dec{1..4}``, the transposed-conv
#: wrappers of 2 and 3 dropped.
GEN_CONCAT_RULES: Rules = [
    (r"dec_share\.0\.(model\.\d+\.\w+)", r"dec_share.\1"),
    (r"dec([AB])1\.(\d\.model\.\d+\.\w+)", lambda m: f"dec_{_ab(m)}.dec1.{m[2]}"),
    (r"dec([AB])([23])\.0\.model\.(\d+\.\w+)", lambda m: f"dec_{_ab(m)}.dec{m[2]}.{m[3]}"),
    (r"dec([AB])4\.(0\.\w+)", lambda m: f"dec_{_ab(m)}.dec4.{m[2]}"),
]
#: D7 G (concat 0): ``decA{1..4}`` -> ``branch_a.blocks.{0..3}``; ``decA5`` -> ``branch_a.up``
#: (its two transposed-conv wrappers dropped); ``mlpA`` -> ``branch_a.mlp``.
GEN_RULES: Rules = [
    (
        r"dec([AB])([1-4])\.((?:conv[12]\.0\.1|blk[12]\.[02])\.\w+)",
        lambda m: f"branch_{_ab(m)}.blocks.{int(m[2]) - 1}.{m[3]}",
    ),
    (r"dec([AB])5\.([01])\.model\.([01]\.\w+)", lambda m: f"branch_{_ab(m)}.up.{m[2]}.{m[3]}"),
    (r"dec([AB])5\.2\.(\w+)", lambda m: f"branch_{_ab(m)}.up.2.{m[2]}"),
    (r"mlp([AB])\.([024]\.\w+)", lambda m: f"branch_{_ab(m)}.mlp.{m[2]}"),
]
#: D4 MultiScaleDis: ``Diss.s.l.model.k`` -> ``diss.s.l.k``; the final 1x1 conv ``Diss.s.L``.
DIS_RULES: Rules = [
    (r"Diss\.(\d+)\.(\d+)\.model\.(\d+\.\w+)", r"diss.\1.\2.\3"),
    (r"Diss\.(\d+)\.(\d+)\.(weight|bias)", r"diss.\1.\2.\3"),
]
#: D5 Dis_content: ``model.i.model.k`` -> ``model.i.k``; the final 1x1 conv ``model.4``.
DIS_CONTENT_RULES: Rules = [
    (r"model\.([0-3])\.model\.(\d+\.\w+)", r"model.\1.\2"),
    (r"model\.4\.(weight|bias)", r"model.4.\1"),
]


def rules_for(name: str, concat: bool) -> Rules:
    """The rename rules of the file entry ``name`` in the ``concat`` layout."""
    if name == "enc_c":
        return ENC_C_RULES
    if name == "enc_a":
        return ENC_A_CONCAT_RULES if concat else ENC_A_RULES
    if name == "gen":
        return GEN_CONCAT_RULES if concat else GEN_RULES
    return DIS_CONTENT_RULES if name == "disContent" else DIS_RULES


# ----------------------------------------------------------------------------- files
def find_file(path: Path, epoch: str | None = None) -> Path:
    """The snapshot file of ``path`` (a file, or a results folder: see the module docstring)."""
    if path.is_file():
        if epoch is not None:
            raise OfficialFormatError(
                f"{path}: epoch={epoch} chooses a snapshot of a folder; PATH is one file"
            )
        return path
    numbered = sorted(
        (int(m.group(1)), p) for p in path.iterdir() if p.is_file() and (m := _NUMBERED.fullmatch(p.name))
    )
    if epoch is not None:
        if not re.fullmatch(r"\d+", str(epoch)):
            raise OfficialFormatError(f"epoch={epoch}: expected the number of a %05d.pth snapshot")
        chosen = [p for n, p in numbered if n == int(epoch)]
        if not chosen:
            found = ", ".join(p.name for _, p in numbered) or "none"
            raise OfficialFormatError(f"{path}: no snapshot {int(epoch):05d}.pth (snapshots: {found})")
        return chosen[0]
    if numbered:
        return numbered[-1][1]
    for name in ("last.pth", "example.pth"):
        if (path / name).is_file():
            return path / name
    raise OfficialFormatError(f"{path}: no DRIT snapshot (%05d.pth, last.pth or example.pth) in this folder")


def _network(obj, name: str, file: Path) -> dict:
    sd = state_dict_in(obj, file, name)
    for key in sd:
        if key.endswith(("weight_orig", "weight_u")):
            raise OfficialFormatError(
                f"{file} [{name!r}]: key {key!r} is a --dis_spectral_norm discriminator, which imtrans DRIT "
                "does not support (its discriminators have no spectral norm)"
            )
    return sd


# ----------------------------------------------------------------------------- shape readers
def concat_layout(enc_a: dict, gen: dict, file: Path) -> bool:
    """True for E_attr_concat + G_concat (``--concat 1``), False for E_attr + G, from the keys."""
    if "fc_A.0.weight" in enc_a:
        a = True
    elif "model_a.1.weight" in enc_a:
        a = False
    else:
        raise OfficialFormatError(
            f"{file} ['enc_a']: neither E_attr_concat ('fc_A.0.weight') nor E_attr ('model_a.1.weight') keys "
            f"(first key {next(iter(enc_a))!r}; the wrong METHOD for this file?)"
        )
    if "dec_share.0.model.1.weight" in gen:
        g = True
    elif "mlpA.0.weight" in gen:
        g = False
    else:
        raise OfficialFormatError(
            f"{file} ['gen']: neither G_concat ('dec_share.0.model.1.weight') nor G ('mlpA.0.weight') keys "
            f"(first key {next(iter(gen))!r}; the wrong METHOD for this file?)"
        )
    if a != g:
        raise OfficialFormatError(
            f"{file}: enc_a is {'E_attr_concat' if a else 'E_attr'} (concat {int(a)}) but gen is "
            f"{'G_concat' if g else 'G'} (concat {int(g)}); a DRIT model has one layout"
        )
    return a


def generator_options(enc_c: dict, enc_a: dict, gen: dict, concat: bool, file: Path) -> dict:
    """``input_dim_a``, ``input_dim_b``, ``dim``, ``nz`` (and ``mlp_dim`` for concat 0).

    ``E_content``'s first convs are ``dim x input_dim x 7 x 7``; the attribute heads are
    ``nz x 4*dim`` (Linear, concat 1) or ``nz x 4*dim x 1 x 1`` (last conv of E_attr); G's MLP
    starts ``mlp_dim x nz``.
    """
    first_a = tensor(enc_c, "convA.0.model.1.weight", file, "enc_c")
    first_b = tensor(enc_c, "convB.0.model.1.weight", file, "enc_c")
    options = {
        "input_dim_a": int(first_a.shape[1]),
        "input_dim_b": int(first_b.shape[1]),
        "dim": int(first_a.shape[0]),
    }
    if concat:
        options["nz"] = int(tensor(enc_a, "fc_A.0.weight", file, "enc_a").shape[0])
    else:
        last = max(indices(enc_a, r"model_a\.(\d+)\.weight"))
        options["nz"] = int(enc_a[f"model_a.{last}.weight"].shape[0])
        options["mlp_dim"] = int(tensor(gen, "mlpA.0.weight", file, "gen").shape[0])
    return options


def discriminator_options(sd: dict, file: Path, name: str) -> dict:
    """``dis_dim`` (first conv's outputs), ``dis_scale`` (``Diss.<s>``), ``dis_n_layer`` (the
    LeakyReLUConv2d layers of a scale, before its final 1x1 conv) of a MultiScaleDis."""
    if "Diss.0.0.model.1.weight" not in sd:
        if "model.0.model.1.weight" in sd:
            raise OfficialFormatError(
                f"{file} [{name!r}]: a single-scale Dis (--dis_scale 1, 'model.*' keys), which imtrans DRIT "
                "does not support (its image discriminators are MultiScaleDis, dis_scale >= 2)"
            )
        tensor(sd, "Diss.0.0.model.1.weight", file, name)
    scales = indices(sd, r"Diss\.(\d+)\..*")
    layers = indices(sd, r"Diss\.0\.(\d+)\.model\.1\.weight")
    if scales != list(range(len(scales))) or layers != list(range(len(layers))):
        raise OfficialFormatError(
            f"{file} [{name!r}]: scales {scales} / layers {layers} fit no MultiScaleDis layout"
        )
    return {
        "dis_dim": int(sd["Diss.0.0.model.1.weight"].shape[0]),
        "dis_scale": len(scales),
        "dis_n_layer": len(layers),
    }


def read(path: Path, epoch: str | None = None) -> Imported:
    file = find_file(path, epoch)
    obj = read_file(file)
    hint = " (not a DRIT snapshot: DRIT.save writes enc_c, enc_a, gen, the discriminators, ep, total_it)"
    sds = {name: _network(entry(obj, name, file, hint), name, file) for name in GENERATORS}
    sds.update({name: _network(obj[name], name, file) for name in DISCRIMINATORS if name in obj})

    concat = concat_layout(sds["enc_a"], sds["gen"], file)
    options = {
        "concat": int(concat),
        **generator_options(sds["enc_c"], sds["enc_a"], sds["gen"], concat, file),
    }
    dis = next((n for n in ("disA", "disA2", "disB", "disB2") if n in sds), None)
    if dis is not None:
        options.update(discriminator_options(sds[dis], file, dis))
        for other in ("disA", "disA2", "disB", "disB2"):
            if other in sds and other != dis:
                discriminator_options(sds[other], file, other)  # the same refusals for each

    def counter(key: str):
        value = obj.get(key) if isinstance(obj, dict) else None
        return int(value) if isinstance(value, int) and not isinstance(value, bool) else None

    options.update(ep=counter("ep"), total_it=counter("total_it"))
    overrides = [
        "model=drit",
        f"data.input_nc={options['input_dim_a']}",
        f"data.output_nc={options['input_dim_b']}",
        f"model.concat={str(concat).lower()}",
        f"model.dim={options['dim']}",
        f"model.nz={options['nz']}",
    ]
    if not concat:
        overrides.append(f"model.mlp_dim={options['mlp_dim']}")
    if dis is not None:
        overrides += [f"model.{k}={options[k]}" for k in ("dis_dim", "dis_scale", "dis_n_layer")]
    networks = {name: Network(sd, rules_for(name, concat), file, name) for name, sd in sds.items()}
    notes = [f"official snapshot {file.name}: ep {options['ep']}, total_it {options['total_it']}"]
    missing = [n for n in DISCRIMINATORS if n not in sds]
    if missing:
        notes.append(f"not in the file (initialised fresh): {', '.join(missing)}")
    return Imported(
        overrides=overrides,
        networks=networks,
        sources=[file],
        official_options=options,
        iteration=options["total_it"],
        notes=notes,
    )
