"""StarGAN v2 checkpoints of clovaai/stargan-v2.

The official ``CheckpointIO`` saves, per snapshot step, ``<step:06d>_nets_ema.ckpt`` (the EMA
``generator``, ``mapping_network``, ``style_encoder``: what the official sampling and evaluation
use, and what the authors publish), ``<step:06d>_nets.ckpt`` (the trained networks and the
``discriminator``) and ``<step:06d>_optims.ckpt``; each a dict of state dicts without the
DataParallel prefix. With w_hpf > 0 both nets files also hold ``fan`` (the frozen landmark
network loaded from ``wing.ckpt``), which is not imported: imtrans builds it from
``model.fan`` (a local ``wing.ckpt``).

PATH is such a file or the checkpoint folder (the newest ``*_nets_ema.ckpt``, or with
``nets=train`` the newest ``*_nets.ckpt``). The keys are ours (the networks mirror the official
modules). Options read from the shapes: number of domains, w_hpf (the high-pass kernel's centre
is 8 / w_hpf), image size (from the number of down-sampling levels), latent and style sizes,
widths.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

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

OPTIONS = {"nets": "ema (default: <step>_nets_ema.ckpt) or train (<step>_nets.ckpt, with the discriminator)"}
NETWORKS = ("generator", "mapping_network", "style_encoder")


def find_file(path: Path, nets: str) -> Path:
    if path.is_file():
        return path
    if not path.is_dir():
        raise OfficialFormatError(f"{path}: no such file or folder")
    pattern = "*_nets_ema.ckpt" if nets == "ema" else "*_nets.ckpt"
    return newest(path, pattern, "StarGAN v2 checkpoint")


def _shape(sd: dict, key: str, file: Path, name: str) -> tuple[int, ...]:
    if key not in sd:
        raise OfficialFormatError(f"{file} [{name!r}]: no key {key!r}: not a StarGAN v2 {name}")
    return tuple(sd[key].shape)


def _indices(sd: dict, pattern: str) -> list[int]:
    return sorted({int(m[1]) for k in sd if (m := re.match(pattern, k))})


def _trunk_options(sd: dict, prefix: str, file: Path, name: str) -> tuple[int, int, int]:
    """(img_size, dim_in, max_conv_dim) of a style-encoder / discriminator trunk."""
    dim_in = _shape(sd, f"{prefix}.0.weight", file, name)[0]
    blocks = [i for i in _indices(sd, rf"{re.escape(prefix)}\.(\d+)\.conv1\.weight")]
    widths = [_shape(sd, f"{prefix}.{i}.conv2.weight", file, name)[0] for i in blocks]
    return 2 ** (len(blocks) + 2), dim_in, max(widths + [dim_in])


def read(path: Path, nets: str = "ema") -> Imported:
    if nets not in ("ema", "train"):
        raise OfficialFormatError(f"nets={nets}: choose ema or train")
    file = find_file(Path(path), nets)
    obj = read_file(file)
    names = NETWORKS + (("discriminator",) if isinstance(obj, dict) and "discriminator" in obj else ())
    sds = {n: state_dict_in(entry(obj, n, file), file, n) for n in names}
    unknown = sorted(set(obj) - set(names) - {"fan"})
    if unknown:
        raise OfficialFormatError(f"{file}: unexpected entries {unknown}: not a StarGAN v2 nets file")

    gen = sds["generator"]
    dim_in = _shape(gen, "from_rgb.weight", file, "generator")[0]
    levels = len(_indices(gen, r"encode\.(\d+)\.conv1\.weight")) - 2  # minus the 2 bottleneck blocks
    w_hpf = 0.0
    if "hpf.filter" in gen:
        w_hpf = 8.0 / float(gen["hpf.filter"][1, 1])
        w_hpf = round(w_hpf) if abs(w_hpf - round(w_hpf)) < 1e-6 else w_hpf
    img_size = 2 ** (levels + 4 - (1 if w_hpf > 0 else 0))
    style_dim = _shape(gen, "decode.0.norm1.fc.weight", file, "generator")[1]
    max_conv = max(_shape(gen, f"encode.{i}.conv2.weight", file, "generator")[0] for i in range(levels + 2))

    mapping = sds["mapping_network"]
    hidden, latent_dim = _shape(mapping, "shared.0.weight", file, "mapping_network")
    num_domains = len(_indices(mapping, r"unshared\.(\d+)\.0\.weight"))

    e_size, e_dim, e_max = _trunk_options(sds["style_encoder"], "shared", file, "style_encoder")
    checks = [("style_encoder", e_size)]
    overrides = [
        "model=stargan_v2",
        f"model.num_domains={num_domains}",
        f"model.img_size={img_size}",
        f"model.w_hpf={w_hpf}",
        f"model.latent_dim={latent_dim}",
        f"model.style_dim={style_dim}",
        f"model.generator.max_conv_dim={max_conv}",
        f"model.mapping_network.hidden_dim={hidden}",
        f"model.style_encoder.max_conv_dim={e_max}",
    ]
    # official widths come from the image size; a file with others gets them explicitly
    if dim_in != 2**14 // img_size:
        overrides.append(f"model.generator.dim_in={dim_in}")
    if e_dim != 2**14 // img_size:
        overrides.append(f"model.style_encoder.dim_in={e_dim}")
    options = {
        "img_size": img_size,
        "num_domains": num_domains,
        "w_hpf": w_hpf,
        "latent_dim": latent_dim,
        "style_dim": style_dim,
        "dim_in": dim_in,
        "max_conv_dim": max_conv,
        "mapping_hidden": hidden,
    }
    if "discriminator" in sds:
        d_size, d_dim, d_max = _trunk_options(sds["discriminator"], "main", file, "discriminator")
        checks.append(("discriminator", d_size))
        overrides.append(f"model.discriminator.max_conv_dim={d_max}")
        if d_dim != 2**14 // img_size:
            overrides.append(f"model.discriminator.dim_in={d_dim}")
    else:
        # the fresh discriminator of an EMA import: the generator's widths
        overrides.append(f"model.discriminator.max_conv_dim={e_max}")
        if e_dim != 2**14 // img_size:
            overrides.append(f"model.discriminator.dim_in={e_dim}")
    for name, size in checks:
        if size != img_size:
            raise OfficialFormatError(
                f"{file} [{name!r}]: down-sampling for {size} px, the generator for {img_size} px"
            )
    if w_hpf > 0:
        overrides.append("model.fan=null")
    notes = []
    if "fan" in obj:
        notes.append(
            "the file's 'fan' entry (the frozen landmark network, wing.ckpt) was not imported: "
            "imtrans loads it from model.fan (a local wing.ckpt)"
        )
    if w_hpf > 0:
        notes.append(
            "w_hpf > 0: imported with model.fan=null (no high-pass masks, not the official sampling); "
            "pass model.fan={_target_:imtrans.nets.stargan_v2.load_fan,path:<wing.ckpt>} for the masks"
        )
    if nets == "ema" and "discriminator" not in sds:
        notes.append(
            "an EMA file: the imported G, F, E are the averaged networks; the discriminator is fresh"
        )
    step = re.match(r"(\d+)_nets", file.name)
    if not math.log2(img_size).is_integer():
        raise OfficialFormatError(f"{file}: image size {img_size} is not a power of two")
    return Imported(
        overrides=overrides,
        networks={n: Network(sds[n], IDENTITY, file, n) for n in names},
        sources=[file],
        official_options=options,
        iteration=int(step[1]) if step else None,
        notes=notes,
    )
