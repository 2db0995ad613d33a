"""``imtrans reproduce NAME``: a zoo model's published numbers, measured again from its official weights.

    imtrans reproduce NAME [root=DIR] [data_root=DIR] [out=DIR] [options]

    imtrans reproduce cut_horse2zebra_cut                     # downloads what is missing
    imtrans reproduce cut_horse2zebra_cut root=~/pretrained data_root=~/datasets

Steps, each as the official code does it:

1. the entry's weight files (``imtrans zoo show NAME`` lists them): downloaded to
   ``root/NAME/<official path>`` (``root`` default ``pretrained``), or taken where they were
   placed (there, or at ``root/<official path>`` in an official checkout), as ``imtrans zoo get``
   does. Offline, one line per missing file says which file to place where, and nothing else runs.
2. the model is imported (the zoo's import command, into ``out/model``).
3. the data set, under ``data_root`` (default ``data``) in the folder its data preset names
   (``horse2zebra/{trainA,trainB,testA,testB}``, ``facades/{train,val,test}``,
   ``afhq/{train,val}/{cat,dog,wild}``, ...), read by that preset's data module: a named data set
   that is not there is downloaded with ``python -m imtrans.data.download``'s helper; offline,
   one line names the folder to place and its layout.
4. translation and scoring, by the kind of data set:

   - **two domains, unpaired** (CycleGAN, CUT): every test input of the entry's direction
     (``options.direction``, default ``a2b``: the preset's A -> B) is translated as the official
     ``test.py`` does: read as RGB, resized to the entry's ``resolution.test`` with PIL's bicubic
     filter (no crop, no flip), the output written as PNG at that size after the official
     ``tensor2im`` quantisation (``uint8((y + 1) / 2 * 255)``, truncated), into
     ``out/translated`` (rewritten); ``out/real`` links the target's test files.
   - **two domains, paired** (pix2pix's side-by-side AB files): the same, the input being the A
     half of each test file (the preset's ``direction`` says which half is A, as ``--direction``),
     and ``out/real`` holding each B half as test.py saves ``real_B`` (bicubic to the test size,
     ``tensor2im``), which pix2pix's results are scored against. pix2pix translates one image per
     forward pass in train mode, as test.py (batch size 1, without ``--eval``).
   - The translations are scored against ``out/real`` with the entry's protocol (``protocol``,
     default ``cut``: one output per test input, FID/KID against the target test images) in each
     reported number's lineage (``metrics.fid_impl``: pytorch-fid, clean-fid, torch-fidelity; see
     ``imtrans.metrics.lineages``), as ``imtrans evaluate fake=DIR real=DIR metrics.fid_impl=...``
     scores them.
   - **a folder per domain** (StarGAN v2): the entry's ``protocol`` (``stargan_v2``: the
     repository's metrics/eval.py) translates and scores every source -> target task in latent and
     reference mode, as ``imtrans evaluate ckpt=RUN metrics=stargan_v2`` does, once per seed
     (``seeds=N``, seeds 0..N-1; the README's numbers are means over 10); each reported number
     names its score key (``score: latent/mean/fid``) and is compared with the mean over the seeds.
5. ``out/reproduce.json`` and ``out/reproduce.md`` (``out`` default ``reproduce/NAME``): per
   reported number the value, its source, the measured value and a verdict, with the SHA-256 of
   every weight file and of the metric's networks.

Verdicts
    ``within the reported spread``  |measured - reported| <= the source's ± (``spread``)
    ``within tolerance <t>``        |measured - reported| <= t * reported; t is the entry's
                                    ``reproduce_tolerance`` (relative), default 0.02 for FID and KID
    ``differs``                     neither
    ``not comparable: <why>``       the metric network is not the published file (a test's
                                    stand-in weights, ``IMTRANS_STAND_IN_WEIGHTS``) or is missing,
                                    the lineage has no implementation here (mmagic's own FID), the
                                    metric is not measured here (AMT, FCN scores), the split is not
                                    the test split, or the protocol was changed

Options
    ``root``         where the weight files are or go (default ``pretrained``)
    ``data_root``    the folder holding ``<data>/testA``, ``<data>/testB`` (default ``data``)
    ``out``          the report folder (default ``reproduce/NAME``)
    ``zoo``          a YAML file of entries (``models: [...]``, zoo.yaml's fields) instead of
                     ``imtrans/official/zoo.yaml``
    ``weights_dir``  a folder holding the metric networks' files, looked in first (as
                     ``metrics.weights_dir``); files that are not the published ones are refused,
                     except declared stand-ins, whose numbers are marked "not comparable"
    ``num_test``     translate the first N test inputs only (the official ``--num_test``;
                     default all, as the reported numbers' splits say; the report records N)
    ``device``       ``auto`` (default), ``cpu``, ``cuda``
    ``batch_size``   images per forward pass (default 8)
    ``seeds``        protocol runs of a multi-domain entry, seeds 0..N-1 (default 1)
    ``metrics.overrides.<field>=V``  change a field of the entry's protocol (quick looks, tests:
                     ``samples_per_input=2``); every number of the report is then "not comparable"

Exit status: 0 when the report is written (whatever the verdicts), 2 with one line per problem
on stderr when a weight file or the data set is missing, or the entry cannot be reproduced here
(label-map data sets and official tests that crop are not handled yet).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from PIL import Image

from imtrans.data.errors import DataError
from imtrans.errors import ConfigError
from imtrans.pretrained import MissingWeightsError

DEFAULT_ROOT = "pretrained"
DEFAULT_DATA_ROOT = "data"
DEFAULT_OUT = "reproduce"
#: the protocol of an entry without a ``protocol`` field: one output per test input, FID/KID
#: against the target domain's test files (CUT's README; the clean-fid leaderboard scores so)
DEFAULT_PROTOCOL = "cut"
#: relative tolerance of FID and KID when the entry gives no ``reproduce_tolerance``: 2% is about
#: the run-to-run change of FID on a few hundred images from thread counts and JPEG decoders
DEFAULT_TOLERANCE = 0.02
KEYS = ("root", "data_root", "out", "zoo", "weights_dir", "num_test", "device", "batch_size", "seeds")
#: the prefix of the options that change a field of the entry's protocol (tests, quick looks);
#: every number of such a report is "not comparable"
PROTOCOL_CHANGE = "metrics.overrides."
MEASURED = {"FID": "fid", "KID": "kid"}


# ----------------------------------------------------------------------------- the entry
def load_entries(zoo: str | None) -> list[dict[str, Any]]:
    """The entries of ``zoo=`` (a YAML file with ``models:``) or of imtrans's own zoo.yaml."""
    from imtrans.official.zoo import ZooError, load_zoo

    if zoo is None:
        return load_zoo()
    path = Path(zoo).expanduser()
    if not path.is_file():
        raise ConfigError(f"zoo={zoo}: no such file; give a YAML file with models: [...] as zoo.yaml")
    try:
        return load_zoo(path)
    except (KeyError, TypeError) as err:
        raise ConfigError(f"zoo={zoo}: not a zoo file ({type(err).__name__}: {err}); see zoo.yaml") from None
    except ZooError as err:
        raise ConfigError(str(err)) from None


def official_size(entry: dict[str, Any]) -> tuple[int, int]:
    """(width, height) of the official test, read from ``resolution.test`` (``'256x256 (...)'``)."""
    text = str((entry.get("resolution") or {}).get("test", ""))
    found = re.match(r"\s*(\d+)\s*x\s*(\d+)", text)
    if not found:
        raise ConfigError(
            f"{entry['name']}: resolution.test={text!r}: no WIDTHxHEIGHT at its start; write the "
            "official test size first, e.g. '256x256 (...)'"
        )
    return int(found.group(1)), int(found.group(2))


def direction_of(entry: dict[str, Any]) -> str:
    """The translated direction: the importer's ``direction`` option (CycleGAN's single G), else a2b."""
    direction = str((entry.get("options") or {}).get("direction", "a2b"))
    if direction not in ("a2b", "b2a"):
        raise ConfigError(f"{entry['name']}: options.direction={direction}: expected a2b or b2a")
    return direction


#: the data modules imtrans reproduce reads, by ``_target_`` suffix, and how it reads them
DATA_KINDS = {
    ".UnpairedDataModule": "unpaired",  # testA/testB (CycleGAN, CUT, U-GAT-IT layouts)
    ".PairedDataModule": "paired",  # pix2pix's side-by-side AB files, or aligned A/B folders
    ".DomainsDataModule": "domains",  # a folder per domain (StarGAN v2), scored by a protocol run
}


def data_kind(entry: dict[str, Any]) -> str:
    """``unpaired``, ``paired`` or ``domains``: how the entry's data preset (its ``data=``
    override) is read; an entry that cannot be reproduced here is refused before any download
    (label maps, an official test that crops, a multi-domain entry without its protocol)."""
    presets = [o.split("=", 1)[1] for o in entry.get("overrides") or [] if o.startswith("data=")]
    file = Path(__file__).with_name("conf") / "data" / f"{presets[-1] if presets else ''}.yaml"
    target = yaml.safe_load(file.read_text()).get("_target_", "") if presets and file.is_file() else ""
    kind = next((k for suffix, k in DATA_KINDS.items() if target.endswith(suffix)), None)
    if kind is None:
        raise ConfigError(
            f"{entry['name']}: data={presets[-1] if presets else None} ({target or 'no data preset'}): imtrans "
            "reproduce reads two-domain (unpaired or paired) and folder-per-domain data sets only so far, "
            "not label maps"
        )
    test = str((entry.get("resolution") or {}).get("test", ""))
    if kind != "domains" and re.search(r"\bcrop\b", test.replace("no crop", "")):  # not "no crop"
        raise ConfigError(
            f"{entry['name']}: resolution.test={test!r}: the official test crops; imtrans reproduce "
            "resizes to the test size without cropping only so far"
        )
    if kind == "domains":
        protocol = entry.get("protocol")
        if protocol is None:
            raise ConfigError(
                f"{entry['name']}: a multi-domain entry without protocol: name the metrics protocol "
                "that scores it as the paper did (protocol: stargan_v2)"
            )
    return kind


# ----------------------------------------------------------------------------- files
def get_weights(plan, timeout: float) -> list[dict[str, Any]]:
    """Every weight file of the plan present (downloaded or placed), hashed; one
    MissingWeightsError line per missing file otherwise."""
    from imtrans.official import zoo
    from imtrans.pretrained import sha256_of

    try:
        zoo.fetch(plan, timeout)
    except zoo.Unreachable as err:
        missing = [f for f in plan.entry["files"] if plan.present(f) is None and plan.unpacked(f) is None]
        reason = " ".join(err.line.rstrip(":").split())
        head, sep, tail = reason.rpartition("; ")
        reason = head if sep and "by hand" in tail else reason  # the line below says what to do
        lines = [
            f"root={plan.root}: {Path(f['path']).name} is not there and cannot be fetched ({reason}); "
            f"place {f['url']} at {plan.target(f)}, then run the same command again"
            for f in missing
            if not f.get("optional")
        ]
        raise MissingWeightsError("\n".join(lines) or reason) from None
    hashed = []
    for f in plan.entry["files"]:
        base = plan.unpacked(f)
        paths = [base / m for m in f["extract"]] if base is not None else [plan.present(f)]
        for path in paths:
            if path is not None:
                hashed.append({"file": str(path), "url": f["url"], "sha256": sha256_of(path)})
    return hashed


@dataclass(frozen=True)
class TestImage:
    """One test image as the official loader reads it: a file, or one half of a side-by-side
    AB file (pix2pix's aligned layout: A on the left, B on the right)."""

    path: Path
    half: str | None = None  # None, "left" or "right"

    def read(self) -> Image.Image:
        with Image.open(self.path) as img:
            rgb = img.convert("RGB")
        if self.half is None:
            return rgb
        width, height = rgb.size
        box = (0, 0, width // 2, height) if self.half == "left" else (width // 2, 0, width, height)
        return rgb.crop(box)

    @property
    def stem(self) -> str:
        return self.path.stem


def data_module(run: Path, data_root: Path):
    """(the imported run's data module reading ``data_root/<its folder>``, the folder, its name);
    a named data set that is not there is downloaded (``python -m imtrans.data.download``), else
    one DataError line says what to place where."""
    import hydra
    from omegaconf import OmegaConf

    from imtrans.data import download
    from imtrans.data.sources import DATASETS

    cfg = OmegaConf.create(yaml.safe_load((run / "config.yaml").read_text())["data"])
    folder = data_root / Path(str(cfg.root)).name
    name = str(cfg.get("name") or folder.name)
    source = DATASETS.get(name)
    if not folder.is_dir() and source is not None and source.url is not None:
        printed = io.StringIO()  # the helper's several lines of instructions: one line below instead
        with contextlib.redirect_stderr(printed):
            download.download(name, data_root)
    cfg.root = str(folder)
    dm = hydra.utils.instantiate(cfg)
    if not folder.is_dir():
        get = ""
        if source is not None and source.url is not None:
            get = f" (from {source.url}: python -m imtrans.data.download {name} --root {data_root})"
        layout = dm.expected_layout.removeprefix("expected ").replace("<root>", str(folder))
        raise DataError(
            folder, f"not found; place the {name} data set as {layout}{get}, or give data_root=DIR"
        )
    return dm, folder


def get_data(
    run: Path, data_root: Path, direction: str
) -> tuple[list[TestImage], list[TestImage], dict[str, Any]]:
    """(test inputs, the target's test images, record) of a two-domain run's data set, read by its
    data module from ``data_root/<its folder>`` (:func:`data_module`). Unpaired: the two test
    folders; paired: the A and B of each test pair (the data preset's ``direction`` decides which
    half is A, as the official ``--direction``)."""
    dm, folder = data_module(run, data_root)
    test = dm.dataset("test")  # the data module's own layout checks: one DataError line each
    if hasattr(test, "paths_a"):  # unpaired
        a = [TestImage(Path(p)) for p in test.paths_a]
        b = [TestImage(Path(p)) for p in test.paths_b]
    elif hasattr(test, "swap"):  # side-by-side AB files
        left, right = (
            [TestImage(Path(p), "left") for p in test.paths],
            [TestImage(Path(p), "right") for p in test.paths],
        )
        a, b = (right, left) if test.swap else (left, right)
    else:  # aligned pairs from two folders
        a = [TestImage(Path(pa)) for pa, _ in test.pairs]
        b = [TestImage(Path(pb)) for _, pb in test.pairs]
    inputs, real = (a, b) if direction == "a2b" else (b, a)
    record = {
        "root": str(folder),
        "n_real": len(real),
        "inputs": str(inputs[0].path.parent) + (f" ({inputs[0].half} halves)" if inputs[0].half else ""),
        "real": str(real[0].path.parent) + (f" ({real[0].half} halves)" if real[0].half else ""),
    }
    return inputs, real, record


def _link(files: list[Path], folder: Path) -> None:
    """``folder`` holding exactly ``files`` (symbolic links; copies where links are refused)."""
    if folder.is_dir():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for i, path in enumerate(files):
        target = folder / f"{i:06d}_{path.name}"  # unique names, the data module's order
        try:
            target.symlink_to(path.resolve())
        except OSError:
            shutil.copyfile(path, target)


# ----------------------------------------------------------------------------- translation
def official_input(image: TestImage | Path, size: tuple[int, int]) -> torch.Tensor:
    """3 x H x W in [-1, 1] as the official test reads an image: RGB (the half of an AB file),
    PIL bicubic to ``size`` (width, height), then ToTensor and Normalize(0.5, 0.5)."""
    rgb = (image if isinstance(image, TestImage) else TestImage(Path(image))).read()
    if rgb.size != size:
        rgb = rgb.resize(size, Image.BICUBIC)
    array = torch.from_numpy(np.asarray(rgb).copy()).permute(2, 0, 1).float() / 255.0
    return (array - 0.5) / 0.5  # Normalize((0.5,) * 3, (0.5,) * 3), the same float steps


def official_png(y: torch.Tensor, path: Path) -> None:
    """Write 3 x H x W in [-1, 1] as the official ``tensor2im`` + ``save_image`` do: scaled to
    [0, 255] and truncated to uint8 (not rounded), PNG at the output's size."""
    array = ((y.detach().float().clamp(-1, 1).cpu() + 1) / 2 * 255).permute(1, 2, 0).numpy()
    Image.fromarray(array.astype(np.uint8)).save(path)


def write_real(real: list[TestImage], folder: Path, size: tuple[int, int], rendered: bool) -> str:
    """The target's test images in ``folder`` for the scoring; returns how, for the report.

    Unpaired data: the files themselves (linked), as CUT's protocol scores the target test set.
    Paired data: each target as the official test.py saves ``real_B`` (read as the input is, at
    the test size, quantised by ``tensor2im``), the images pix2pix's results are scored against."""
    if not rendered:
        _link([r.path for r in real], folder)
        return "the target domain's test files, as they are"
    if folder.is_dir():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for i, image in enumerate(real):
        official_png(official_input(image, size), folder / f"{i:06d}_{image.stem}_real.png")
    return "each target as test.py saves real_B: bicubic to the test size, tensor2im"


def translate_test(
    run: Path,
    direction: str,
    inputs: list[TestImage],
    out: Path,
    size: tuple[int, int],
    device: torch.device,
    batch: int,
) -> dict[str, Any]:
    """Translate ``inputs`` with the imported run; returns what was done, for the report."""
    from imtrans import inference as inf
    from imtrans.translate import resolve_task

    model, used_ema = inf.load_for_inference(run)
    model.to(device)
    spec = model.inference_spec()
    if spec.domains is not None or spec.input_kind == "labels":
        raise ConfigError(
            f"{type(model).__name__} translates {'label maps' if spec.input_kind == 'labels' else 'between domains'}; "
            "imtrans reproduce handles two-domain image models only so far"
        )
    try:
        task = resolve_task(model, spec, direction)
    except inf.UsageError as err:  # an entry whose direction the imported model lacks
        raise ConfigError(f"options.direction={direction}: {err}") from None
    if out.is_dir():  # files of an earlier run with more inputs would be scored too
        shutil.rmtree(out)
    out.mkdir(parents=True)
    torch.manual_seed(0)  # multimodal models sample their style codes: the same ones on every run
    for start in range(0, len(inputs), batch):
        chunk = inputs[start : start + batch]
        x = torch.stack([official_input(p, size) for p in chunk]).to(model.device)
        with model.inference_mode():
            y = model.translate(x, **task.call)
        for path, image in zip(chunk, y):
            official_png(image, out / f"{path.stem}_{task.name}.png")  # one file per test input
    return {
        "direction": task.name,
        "model": type(model).__name__,
        "ema": used_ema,
        "size": f"{size[0]}x{size[1]}",
        "resize": "PIL bicubic to the test size, no crop, no flip (the official test.py)",
        "quantisation": "uint8((y + 1) / 2 * 255), truncated (the official tensor2im)",
        "n_inputs": len(inputs),
        "seed": 0,
        "folder": str(out),
    }


# ----------------------------------------------------------------------------- scoring
def score(
    fake: Path,
    real: Path,
    protocol: str,
    fid_impl: str,
    weights_dir: str | None,
    device: torch.device,
    changes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """FID and KID of ``fake`` against ``real`` in the lineage ``fid_impl``, as ``imtrans evaluate
    fake=DIR real=DIR`` computes them; with the metric network's file, its status and notices."""
    from imtrans.evaluate import list_images, read_image
    from imtrans.metrics.evaluator import Evaluator
    from imtrans.metrics.protocols import get_protocol
    from imtrans.metrics.weights import WEIGHTS
    from imtrans.pretrained import sha256_of, verify_weights

    ev = Evaluator(
        get_protocol(protocol, changes or {}, fid_impl),
        weights_dir=weights_dir,
        lpips=False,
        paired=False,
        shapes=False,
        device=device,
        progress=False,
    )
    ev.prepare()  # a file under the standard name that is not the published one: refused here
    path = ev.paths.get(ev.fid_key)
    scores: dict[str, float] = {}
    status = "missing"
    if path is not None:
        status = verify_weights(path, WEIGHTS[ev.fid_key].filename)
        scores = ev.fid_kid(
            [read_image(p) for p in list_images(fake)], [read_image(p) for p in list_images(real)]
        )
    return {
        "fid_impl": fid_impl,
        "protocol": ev.protocol.name,
        "scores": scores,
        "metric_weights": None if path is None else str(path),
        "metric_weights_sha256": None if path is None else sha256_of(path),
        "metric_weights_status": status,
        "notices": list(ev.notices),
    }


def score_domains(
    run: Path,
    data_root: Path,
    protocol: str,
    changes: dict[str, Any],
    seeds: list[int],
    weights_dir: str | None,
    device: torch.device,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A multi-domain model scored by its paper's protocol (``protocol``, with the protocol fields
    ``changes``) once per seed, as ``imtrans evaluate ckpt=RUN metrics=<protocol>`` scores it:
    every task of every guidance mode on the protocol's splits. Returns (data record, one result
    per seed: the seed, the scores, each metric network's file, SHA-256 and status)."""
    from imtrans import inference as inf
    from imtrans.metrics.evaluator import Evaluator, evaluate_domain_tasks, module_domain_names
    from imtrans.metrics.protocols import get_protocol
    from imtrans.metrics.weights import ALEXNET, WEIGHTS, verify
    from imtrans.pretrained import sha256_of

    model, used_ema = inf.load_for_inference(run)
    model.to(device)
    dm, folder = data_module(run, data_root)
    results = []
    for seed in seeds:
        ev = Evaluator(
            get_protocol(protocol, {**changes, "seed": seed}),
            weights_dir=weights_dir,
            device=device,
            progress=False,
        )
        ev.prepare()  # a file under the standard name that is not the published one: refused here
        split, ref_split = ev.protocol.splits("test")
        inputs, reference = dm.dataset(split), dm.dataset(ref_split)
        try:
            domains = module_domain_names(model, dm, inputs)
        except ValueError as err:  # the data's domain folders are not the model's
            raise DataError(folder, str(err)) from None
        if domains is None:
            raise ConfigError(f"protocol={protocol}: {type(model).__name__} on {folder} is not multi-domain")
        scores = evaluate_domain_tasks(ev, model, inputs, reference, domains, ref_split)
        networks = {}
        for metric, key in (("FID", ev.fid_key), ("KID", ev.fid_key), ("LPIPS", ALEXNET.key)):
            path = ev.paths.get(key)
            networks[metric] = {
                "network": key,
                "file": None if path is None else str(path),
                "sha256": None if path is None else sha256_of(path),
                "status": "missing" if path is None else verify(WEIGHTS[key], path),
            }
        results.append({"seed": seed, "scores": scores, "networks": networks, "notices": list(ev.notices)})
    record = {
        "root": str(folder),
        "domains": list(domains),
        "inputs": f"split {split} of {folder}",
        "real": f"split {ref_split} of {folder} (the target domain's images)",
        "n_inputs": len(inputs),
        "n_real": len(reference),
        "ema": used_ema,
    }
    return record, results


def verdict(item: dict[str, Any], measured: float | None, why_not: str | None, tolerance: float) -> str:
    """The verdict of one reported number (module docstring)."""
    if why_not is not None:
        return f"not comparable: {why_not}"
    if measured is None:
        return "not comparable: not measured"
    value = float(item["value"])
    if "spread" in item and abs(measured - value) <= float(item["spread"]):
        return "within the reported spread"
    if abs(measured - value) <= tolerance * abs(value):
        return f"within tolerance {tolerance:g}"
    return "differs"


def _not_comparable(item: dict[str, Any], run: dict[str, Any] | None) -> str | None:
    """Why a reported number of a two-domain entry cannot be compared with what was measured, or None."""
    from imtrans.official.zoo import FID_LINEAGES

    metric = str(item["metric"]).upper()
    if metric not in MEASURED:
        return f"imtrans reproduce measures FID and KID, not {item['metric']}"
    if FID_LINEAGES.get(item["lineage"]) is None:
        return f"lineage {item['lineage']} has no implementation in imtrans (metrics.fid_impl)"
    if not str(item["split"]).lower().startswith("test"):
        return f"split {item['split']!r}: imtrans reproduce scores the test split"
    if run is None or run["metric_weights_status"] == "missing":
        notice = next(iter(run["notices"]), "") if run else ""
        return f"no {item['lineage']} weights ({notice})" if notice else f"no {item['lineage']} weights"
    if run["metric_weights_status"] == "stand-in":
        return f"stand-in weights ({run['metric_weights']}, IMTRANS_STAND_IN_WEIGHTS)"
    return None


def _protocol_number(
    item: dict[str, Any], results: list[dict[str, Any]], changes: dict[str, Any]
) -> tuple[float | None, float | None, str | None]:
    """(mean over the seeds, their standard deviation, why not comparable) of a reported number of
    a protocol-scored entry: the entry's ``score`` key in each seed's scores."""
    key = item.get("score")
    if key is None:
        return None, None, "the entry names no score key for it (score: <mode>/mean/<score>)"
    values = [r["scores"][key] for r in results if key in r["scores"]]
    if results and not values and results[0]["scores"]:
        means = sorted(k for k in results[0]["scores"] if "/mean/" in k)
        return None, None, f"score {key} is not among the protocol's scores ({', '.join(means)})"
    mean = float(np.mean(values)) if values else None
    std = float(np.std(values)) if len(values) > 1 else None
    network = (results[0]["networks"] if results else {}).get(str(item["metric"]).upper())
    if network is None:
        return mean, std, f"imtrans reproduce measures FID, KID and LPIPS, not {item['metric']}"
    if network["status"] == "missing" or not values:
        notice = next(iter(results[0]["notices"]), "") if results else ""
        return mean, std, f"no {network['network']} weights" + (f" ({notice})" if notice else "")
    if network["status"] == "stand-in":
        return mean, std, f"stand-in weights ({network['file']}, IMTRANS_STAND_IN_WEIGHTS)"
    if changes:
        changed = ", ".join(f"{k}={v}" for k, v in changes.items())
        return mean, std, f"the protocol was changed ({changed})"
    return mean, std, None


# ----------------------------------------------------------------------------- the command
def _options(args: dict[str, str]) -> tuple[dict[str, int | None], list[int], dict[str, Any]]:
    """The whole-number options, the seeds, and the protocol fields changed by
    ``metrics.overrides.<field>=`` (which make every number "not comparable")."""
    unknown = sorted(k for k in set(args) - set(KEYS) if not k.startswith(PROTOCOL_CHANGE))
    if unknown:
        raise ConfigError(
            f"{unknown[0]}={args[unknown[0]]}: not an option of imtrans reproduce; options: "
            f"{', '.join(KEYS)}, {PROTOCOL_CHANGE}<field>"
        )
    counts: dict[str, int | None] = {}
    for key, default in (("num_test", None), ("batch_size", 8), ("seeds", 1)):
        try:
            counts[key] = int(args[key]) if key in args else default
        except ValueError:
            raise ConfigError(f"{key}={args[key]}: not a whole number") from None
        if counts[key] is not None and counts[key] < 1:
            raise ConfigError(f"{key}={args[key]}: must be at least 1")
    changes = {
        k.removeprefix(PROTOCOL_CHANGE): yaml.safe_load(v)
        for k, v in args.items()
        if k.startswith(PROTOCOL_CHANGE)
    }
    return counts, list(range(int(counts["seeds"]))), changes


def reproduce(
    name: str,
    args: dict[str, str] | None = None,
    entries: list[dict[str, Any]] | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Run the steps of the module docstring for entry ``name`` (of ``entries``, of ``zoo=``, or of
    zoo.yaml); returns the report, also written to ``out/reproduce.json`` and ``reproduce.md``."""
    from imtrans import inference as inf
    from imtrans.metrics.protocols import get_protocol
    from imtrans.official import OfficialFormatError, import_official, zoo

    args = dict(args or {})
    counts, seeds, changes = _options(args)
    if entries is None:
        entries = load_entries(args.get("zoo"))
    else:
        zoo.check_reported(entries, "entries")
    try:
        entry = zoo.find(name, entries)
    except zoo.ZooError as err:
        raise ConfigError(str(err)) from None
    kind = data_kind(entry)  # refused here, before any download, when it cannot be reproduced
    if kind == "domains" and counts["num_test"] is not None:
        raise ConfigError(
            f"num_test={counts['num_test']}: {name} is scored by its protocol on every test input; "
            f"metrics.overrides.num_inputs={counts['num_test']} takes fewer (the report is then not comparable)"
        )
    protocol = str(entry.get("protocol", DEFAULT_PROTOCOL))
    try:
        get_protocol(protocol, changes)  # an unknown protocol or field: refused now too
    except (KeyError, TypeError, ValueError) as err:
        raise ConfigError(
            f"{entry['name']}: protocol {protocol}: {err.args[0] if err.args else err}"
        ) from None
    try:
        device = inf.pick_device(args.get("device", "auto"))
    except inf.UsageError as err:
        raise ConfigError(str(err)) from None
    size, direction = official_size(entry), direction_of(entry)
    out = Path(args.get("out", str(Path(DEFAULT_OUT) / name))).expanduser()
    root = args.get("root", DEFAULT_ROOT)
    plan = zoo.make_plan(entry, {"root": root, "out": str(out / "model")})

    weights = get_weights(plan, zoo.TIMEOUT_S if timeout is None else timeout)  # 1. weights
    try:  # 2. import
        run = import_official(
            entry["method"], plan.import_path(), plan.out, options=plan.options, overrides=plan.overrides
        )
    except OfficialFormatError as err:  # a placed file that is not the entry's format
        raise ConfigError(f"{entry['name']}: import failed: {' '.join(str(err).split())}") from None
    data_root = Path(args.get("data_root", DEFAULT_DATA_ROOT)).expanduser()
    weights_dir = args.get("weights_dir")
    tolerance = float(entry.get("reproduce_tolerance", DEFAULT_TOLERANCE))
    if kind == "domains":  # 3-4. the paper's protocol translates and scores, once per seed
        data, runs = score_domains(run, data_root, protocol, changes, seeds, weights_dir, device)
        translation = {
            "direction": "every source -> target task of the protocol",
            "model": entry["method"],
            "ema": data.pop("ema"),
            "size": f"{size[0]}x{size[1]}",
            "resize": f"as the protocol {protocol} reads its splits",
            "n_inputs": data["n_inputs"],
            "seeds": seeds,
            "folder": None,
        }
        numbers = []
        for item in entry["reported"]:
            measured, std, why_not = _protocol_number(item, runs, changes)
            numbers.append(
                _number(item, measured, why_not, tolerance, entry_score=item.get("score"), std=std)
            )
        lineages: dict[str, Any] = {f"seed {r['seed']}": r for r in runs}
    else:
        inputs, real_images, data = get_data(run, data_root, direction)  # 3. data, translation
        inputs = inputs[: counts["num_test"]]
        real = out / "real"  # the target's test images, in one folder for the scoring
        data["real_images"] = write_real(real_images, real, size, rendered=kind == "paired")
        fake = out / "translated"
        translation = translate_test(run, direction, inputs, fake, size, device, int(counts["batch_size"]))
        lineages = {}  # 4. score, once per lineage
        for item in entry["reported"]:
            impl = _impl_of(item)
            if impl is not None and impl not in lineages:
                lineages[impl] = score(fake, real, protocol, impl, weights_dir, device, changes)
        numbers = []
        for item in entry["reported"]:
            impl = _impl_of(item)
            lineage_run = lineages.get(impl) if impl else None
            why_not = _not_comparable(item, lineage_run)
            if why_not is None and changes:
                why_not = (
                    "the protocol was changed (" + ", ".join(f"{k}={v}" for k, v in changes.items()) + ")"
                )
            measured = (
                (lineage_run or {}).get("scores", {}).get(MEASURED.get(str(item["metric"]).upper(), ""))
            )
            numbers.append(_number(item, measured, why_not, tolerance, impl=impl))
    report = {
        "name": name,
        "method": entry["method"],
        "repository": entry.get("repository"),
        "official_test": entry.get("official_test"),
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "weights": weights,
        "import": str(run),
        "data": data,
        "translation": translation,
        "protocol": protocol,
        "protocol_changes": changes,
        "tolerance": tolerance,
        "tolerance_source": "reproduce_tolerance" if "reproduce_tolerance" in entry else "default",
        "weights_dir": weights_dir,
        "lineages": lineages,
        "numbers": numbers,
        "reported_note": entry.get("reported_note"),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "reproduce.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "reproduce.md").write_text(markdown(report))
    return report


def _impl_of(item: dict[str, Any]) -> str | None:
    """The ``metrics.fid_impl`` that measures a reported FID/KID of a two-domain entry, or None."""
    from imtrans.official.zoo import FID_LINEAGES

    return FID_LINEAGES.get(item["lineage"]) if str(item["metric"]).upper() in MEASURED else None


def _number(
    item: dict[str, Any],
    measured: float | None,
    why_not: str | None,
    tolerance: float,
    impl: str | None = None,
    entry_score: str | None = None,
    std: float | None = None,
) -> dict[str, Any]:
    """One row of the report: what was reported, what was measured, the verdict, the source."""
    row = {
        "metric": item["metric"],
        "lineage": item["lineage"],
        "fid_impl": impl,
        "split": item["split"],
        "reported": item["value"],
        "spread": item.get("spread"),
        "measured": measured,
        "difference": None if measured is None else measured - float(item["value"]),
        "verdict": verdict(item, measured, why_not, tolerance),
        "weights_scored_by_source": item["weights"],
        "source": item["source"],
        "url": item["url"],
    }
    if entry_score is not None:
        row.update({"score": entry_score, "measured_std_over_seeds": std})
    return row


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def markdown(report: dict[str, Any]) -> str:
    """The short Markdown report: the numbers, then how they were measured."""
    t = report["translation"]
    lines = [
        f"# imtrans reproduce {report['name']}",
        "",
        f"{report['method']} ({report['repository']}), {t['direction']}: {t['n_inputs']} test inputs at "
        f"{t['size']} ({t['resize']}), scored against {report['data']['n_real']} images of "
        f"{report['data']['real']}, protocol {report['protocol']}.",
        "",
        "| metric | lineage | reported | measured | verdict | source |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for n in report["numbers"]:
        reported = _fmt(n["reported"]) + (f" ± {_fmt(n['spread'])}" if n["spread"] is not None else "")
        lines.append(
            f"| {n['metric']} | {n['lineage']} | {reported} | {_fmt(n['measured'])} | {n['verdict']} | "
            f"[{n['source'].split(',')[0]}]({n['url']}) |"
        )
    lines += [
        "",
        f"Tolerance: {report['tolerance']:g} relative ({report['tolerance_source']}).",
        "",
        "Weights (SHA-256):",
        "",
    ]
    lines += [f"- `{w['sha256']}` {w['file']}" for w in report["weights"]]
    networks = {}  # metric network file -> (SHA-256, what it computed, its status)
    for impl, r in report["lineages"].items():
        if "networks" in r:  # a protocol run (one per seed): its FID and LPIPS networks
            for metric, n in r["networks"].items():
                networks.setdefault(
                    n["file"] or f"missing {n['network']}", (n["sha256"], metric, n["status"])
                )
        else:
            key = r["metric_weights"] or f"missing {impl}"
            networks.setdefault(
                key, (r["metric_weights_sha256"], f"{impl} network", r["metric_weights_status"])
            )
    for file, (sha, what, status) in networks.items():
        lines.append(f"- `{sha or '-'}` {file} ({what}, {status})")
    if report["protocol_changes"]:
        changed = ", ".join(f"{k}={v}" for k, v in report["protocol_changes"].items())
        lines += [
            "",
            f"The protocol was changed ({changed}): no number here compares with the reported ones.",
        ]
    return "\n".join(lines) + "\n"


def summary(report: dict[str, Any]) -> str:
    """What the command prints: one line per reported number."""
    t = report["translation"]
    seeds = f" ({len(t['seeds'])} seed{'s' if len(t['seeds']) > 1 else ''})" if "seeds" in t else ""
    lines = [f"imtrans reproduce: {report['name']}, {t['n_inputs']} test inputs translated{seeds}"]
    for n in report["numbers"]:
        lines.append(
            f"  {n['metric']} ({n['lineage']}): reported {_fmt(n['reported'])}, measured {_fmt(n['measured'])}: {n['verdict']}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``imtrans reproduce`` (exit status 2 with one line per problem)."""
    from imtrans.pretrained import WeightsMismatchError

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or any(a in ("-h", "--help", "help") for a in argv):
        print(__doc__)
        if not argv:
            sys.exit(2)
        return
    names = [a for a in argv if "=" not in a]
    keyed = dict(a.split("=", 1) for a in argv if "=" in a)
    labels = (
        (WeightsMismatchError, "weights mismatch"),
        (MissingWeightsError, "missing weights"),
        (DataError, "data error"),
        (ConfigError, "config error"),
    )
    try:
        if len(names) != 1:
            raise ConfigError(
                f"arguments={' '.join(argv)}: give one zoo name; usage: imtrans reproduce NAME [root=DIR] [data_root=DIR] [out=DIR]"
            )
        report = reproduce(names[0], keyed)
    except tuple(cls for cls, _ in labels) as err:
        label = next(text for cls, text in labels if isinstance(err, cls))
        for line in str(err).splitlines():
            print(f"imtrans: {label}: {line}", file=sys.stderr)
        sys.exit(2)
    print(summary(report))
    out = Path(keyed.get("out", str(Path(DEFAULT_OUT) / names[0]))).expanduser()
    print(f"written: {out / 'reproduce.json'}, reproduce.md")


if __name__ == "__main__":
    main()
