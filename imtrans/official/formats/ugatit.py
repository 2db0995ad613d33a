"""U-GAT-IT checkpoints of znxlwm/UGATIT-pytorch.

The official code saves one file per snapshot, ``<dataset>_params_<step:07d>.pt`` (and
``<dataset>_params_latest.pt``), a dict of six state dicts: ``genA2B``, ``genB2A``, ``disGA``,
``disGB`` (global, 7 layers), ``disLA``, ``disLB`` (local, 5 layers). PATH is such a file or the
folder holding them (the newest by name is taken, ``latest`` when present). Architecture options
read from the shapes: ch (ngf = ndf), n_res, light (the MLP's input width; the full MLP also
gives img_size), input/output channels, the layers of each discriminator. Discriminator keys
are spectral-norm ``weight_orig``/``weight_u``/``weight_v``, as ours.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from imtrans.official import Imported, Network, OfficialFormatError, entry, newest, read_file, state_dict_in

OPTIONS: dict[str, str] = {}
NETWORKS = ("genA2B", "genB2A", "disGA", "disGB", "disLA", "disLB")
N_DOWN = 2  # hard-coded in the official ResnetGenerator


def find_file(path: Path) -> Path:
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise OfficialFormatError(f"{path}: no such file or folder")
    latest = sorted(path.glob("*_params_latest.pt"))
    return latest[-1] if latest else newest(path, "*_params_*.pt", "U-GAT-IT snapshot")


def generator_rules(n_blocks: int):
    final = 5 * N_DOWN + 1

    def down(m):
        i = int(m[1])
        if i in (1, 5, 9):
            return f"encoder.{(i - 1) // 4}.1.weight"
        return None

    def res(m):
        conv = {"1": 0, "5": 1}.get(m[2])
        return None if conv is None else f"encoder.{int(m[1]) - 12 + 3}.body.{conv}.1.weight"

    def up(m):
        i, rest = int(m[1]), m[2]
        if i == final and rest == "weight":
            return f"decoder.{4 * N_DOWN}.1.weight"
        j, r = divmod(i, 5)
        if r == 2 and rest == "weight":
            return f"decoder.{4 * j + 1}.1.weight"
        if r == 3 and rest in ("rho", "gamma", "beta"):
            return f"decoder.{4 * j + 2}.{rest}"
        return None

    return [
        (r"DownBlock\.(\d+)\.conv_block\.(\d+)\.weight", res),
        (r"DownBlock\.(\d+)\.weight", down),
        (r"(gap_fc|gmp_fc|conv1x1)\.(.*)", r"cam.\1.\2"),
        (r"FC\.(\d+)\.weight", r"mlp.\1.weight"),
        (r"(gamma|beta)\.weight", r"\1.weight"),
        (r"UpBlock1_(\d+)\.(conv|norm)(\d)\.(.*)", lambda m: _block(m)),
        (r"UpBlock2\.(\d+)\.(.*)", up),
    ]


def _block(m):
    k, kind, n, rest = int(m[1]) - 1, m[2], m[3], m[4]
    return f"blocks.{k}.{kind}{n}.{'1.' if kind == 'conv' else ''}{rest}"


def discriminator_rules():
    return [
        (r"model\.(\d+)\.(.*)", lambda m: f"body.{(int(m[1]) - 1) // 3}.1.{m[2]}"),
        (r"(gap_fc|gmp_fc|conv1x1)\.(.*)", r"cam.\1.\2"),
        (r"conv\.(.*)", r"head.1.\1"),
    ]


def _shape(sd, key, file, name):
    if key not in sd:
        raise OfficialFormatError(f"{file} [{name!r}]: no key {key!r}: not a U-GAT-IT {name}")
    return tuple(sd[key].shape)


def read(path: Path) -> Imported:
    file = find_file(path)
    obj = read_file(file)
    sds = {n: state_dict_in(entry(obj, n, file), file, n) for n in NETWORKS}
    gen = sds["genA2B"]
    ngf, input_nc = _shape(gen, "DownBlock.1.weight", file, "genA2B")[:2]
    output_nc = _shape(gen, f"UpBlock2.{5 * N_DOWN + 1}.weight", file, "genA2B")[0]
    n_blocks = len({m[1] for k in gen if (m := re.match(r"UpBlock1_(\d+)\.", k))})
    ch = ngf * 2**N_DOWN
    mlp_in = _shape(gen, "FC.0.weight", file, "genA2B")[1]
    light = mlp_in == ch
    overrides = [
        "model=ugatit",
        f"data.input_nc={input_nc}",
        f"data.output_nc={output_nc}",
        f"model.generator.ngf={ngf}",
        f"model.generator.n_blocks={n_blocks}",
        f"model.generator.light={str(light).lower()}",
    ]
    options = {"ch": ngf, "n_res": n_blocks, "light": light, "img_ch": input_nc}
    if not light:
        side = math.isqrt(mlp_in // ch)
        if side * side * ch != mlp_in:
            raise OfficialFormatError(f"{file} ['genA2B']: FC.0.weight input {mlp_in} fits no image size")
        options["img_size"] = side * 2**N_DOWN
        overrides.append(f"model.generator.img_size={options['img_size']}")
    networks = {n: Network(sds[n], generator_rules(n_blocks), file, n) for n in ("genA2B", "genB2A")}
    for scope, names in (("global", ("disGA", "disGB")), ("local", ("disLA", "disLB"))):
        sd = sds[names[0]]
        ndf = _shape(sd, "model.1.weight_orig", file, names[0])[0]
        n_layers = len([k for k in sd if re.fullmatch(r"model\.\d+\.weight_orig", k)]) + 1
        overrides += [
            f"model.{scope}_discriminator.ndf={ndf}",
            f"model.{scope}_discriminator.n_layers={n_layers}",
        ]
        options[f"{scope}_n_layers"] = n_layers
        networks.update({n: Network(sds[n], discriminator_rules(), file, n) for n in names})
    step = re.search(r"_params_(\d+)\.pt$", file.name)
    return Imported(
        overrides=overrides,
        networks=networks,
        sources=[file],
        official_options=options,
        iteration=int(step[1]) if step else None,
    )
