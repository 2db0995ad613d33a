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
   (``horse2zebra/{trainA,trainB,testA,testB}``, ``afhq/{train,test}/{cat,dog}``, ...), read by
   that preset's data module: a named data set that is not there is downloaded with
   ``python -m imtrans.data.download``'s helper; offline, one line names the folder to place and
   its layout. Every test input of the entry's direction (``options.direction``, default
   ``a2b``: the preset's A -> B) is translated as the official ``test.py`` does: read as RGB,
   resized to the entry's
   ``resolution.test`` with PIL's bicubic filter (no crop, no flip), the output written as PNG at
   that size after the official ``tensor2im`` quantisation (``uint8((y + 1) / 2 * 255)``,
   truncated), into ``out/translated`` (rewritten; ``out/real`` links the target's test images).
4. the translations are scored against the target domain's test images with the entry's protocol
   (``protocol`` field, default ``cut``: one output per test input, FID/KID against the target
   test files) in each reported number's lineage (``metrics.fid_impl``: pytorch-fid, clean-fid,
   torch-fidelity, stargan-v2; see ``imtrans.metrics.lineages``), as ``imtrans evaluate
   fake=DIR real=DIR metrics.fid_impl=...`` scores them.
5. ``out/reproduce.json`` and ``out/reproduce.md`` (``out`` default ``reproduce/NAME``): per
   reported number the value, its source, the measured value and a verdict, with the SHA-256 of
   every weight file and of the metric's network.

Verdicts
    ``within the reported spread``  |measured - reported| <= the source's ± (``spread``)
    ``within tolerance <t>``        |measured - reported| <= t * reported; t is the entry's
                                    ``reproduce_tolerance`` (relative), default 0.02 for FID and KID
    ``differs``                     neither
    ``not comparable: <why>``       the metric network is not the published file (a test's
                                    stand-in weights, ``IMTRANS_STAND_IN_WEIGHTS``) or is missing,
                                    the lineage has no implementation here (mmagic's own FID), the
                                    metric is not FID/KID, or the split is not the test split

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

Exit status: 0 when the report is written (whatever the verdicts), 2 with one line per problem
on stderr when a weight file or the data set is missing, or the entry cannot be reproduced here
(multi-domain, paired and label-map data sets, and official tests that crop, are not handled yet).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import sys
import time
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
KEYS = ("root", "data_root", "out", "zoo", "weights_dir", "num_test", "device", "batch_size")
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


def check_two_domain(entry: dict[str, Any]) -> None:
    """Refuse, before any download, an entry whose data preset (its ``data=`` override) is not a
    two-domain unpaired one, or whose official test crops."""
    presets = [o.split("=", 1)[1] for o in entry.get("overrides") or [] if o.startswith("data=")]
    file = Path(__file__).with_name("conf") / "data" / f"{presets[-1] if presets else ''}.yaml"
    target = yaml.safe_load(file.read_text()).get("_target_", "") if presets and file.is_file() else ""
    if not target.endswith(".UnpairedDataModule"):
        raise ConfigError(
            f"{entry['name']}: data={presets[-1] if presets else None} ({target or 'no data preset'}): imtrans "
            "reproduce handles two-domain unpaired data sets (CycleGAN, CUT, U-GAT-IT layouts) only so far"
        )
    test = str((entry.get("resolution") or {}).get("test", ""))
    if re.search(r"\bcrop\b", test.replace("no crop", "")):  # not crop_size, not "no crop"
        raise ConfigError(
            f"{entry['name']}: resolution.test={test!r}: the official test crops; imtrans reproduce "
            "resizes to the test size without cropping only so far"
        )


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


def get_data(run: Path, data_root: Path, direction: str) -> tuple[list[Path], list[Path], dict[str, Any]]:
    """(test inputs, target domain's test images, record) of the imported run's data set, read by
    its data module from ``data_root/<its folder>``; a named data set that is not there is
    downloaded (``python -m imtrans.data.download``), else one DataError line says what to place."""
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
    test = dm.dataset("test")  # the data module's own layout checks: one DataError line each
    a, b = [Path(p) for p in test.paths_a], [Path(p) for p in test.paths_b]
    inputs, real = (a, b) if direction == "a2b" else (b, a)
    record = {
        "root": str(folder),
        "n_real": len(real),
        "inputs": str(inputs[0].parent),
        "real": str(real[0].parent),
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
def official_input(path: Path, size: tuple[int, int]) -> torch.Tensor:
    """3 x H x W in [-1, 1] as the official test reads an image: RGB, PIL bicubic to ``size``
    (width, height), then ToTensor and Normalize(0.5, 0.5)."""
    with Image.open(path) as img:
        rgb = img.convert("RGB")
    if rgb.size != size:
        rgb = rgb.resize(size, Image.BICUBIC)
    array = torch.from_numpy(np.asarray(rgb).copy()).permute(2, 0, 1).float() / 255.0
    return (array - 0.5) / 0.5  # Normalize((0.5,) * 3, (0.5,) * 3), the same float steps


def official_png(y: torch.Tensor, path: Path) -> None:
    """Write 3 x H x W in [-1, 1] as the official ``tensor2im`` + ``save_image`` do: scaled to
    [0, 255] and truncated to uint8 (not rounded), PNG at the output's size."""
    array = ((y.detach().float().clamp(-1, 1).cpu() + 1) / 2 * 255).permute(1, 2, 0).numpy()
    Image.fromarray(array.astype(np.uint8)).save(path)


def translate_test(
    run: Path,
    direction: str,
    inputs: list[Path],
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
            official_png(image, out / f"{path.stem}_{task.name}.png")
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
    fake: Path, real: Path, protocol: str, fid_impl: str, weights_dir: str | None, device: torch.device
) -> dict[str, Any]:
    """FID and KID of ``fake`` against ``real`` in the lineage ``fid_impl``, as ``imtrans evaluate
    fake=DIR real=DIR`` computes them; with the metric network's file, its status and notices."""
    from imtrans.evaluate import list_images, read_image
    from imtrans.metrics.evaluator import Evaluator
    from imtrans.metrics.protocols import get_protocol
    from imtrans.metrics.weights import WEIGHTS
    from imtrans.pretrained import sha256_of, verify_weights

    ev = Evaluator(
        get_protocol(protocol, {}, fid_impl),
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
    """Why a reported number cannot be compared with what was measured, or None."""
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


# ----------------------------------------------------------------------------- the command
def reproduce(
    name: str,
    args: dict[str, str] | None = None,
    entries: list[dict[str, Any]] | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Run the steps of the module docstring for entry ``name`` (of ``entries``, of ``zoo=``, or of
    zoo.yaml); returns the report, also written to ``out/reproduce.json`` and ``reproduce.md``."""
    from imtrans import inference as inf
    from imtrans.official import OfficialFormatError, import_official, zoo
    from imtrans.official.zoo import FID_LINEAGES

    args = dict(args or {})
    unknown = sorted(set(args) - set(KEYS))
    if unknown:
        raise ConfigError(
            f"{unknown[0]}={args[unknown[0]]}: not an option of imtrans reproduce; options: {', '.join(KEYS)}"
        )
    if entries is None:
        entries = load_entries(args.get("zoo"))
    else:
        zoo.check_reported(entries, "entries")
    try:
        entry = zoo.find(name, entries)
    except zoo.ZooError as err:
        raise ConfigError(str(err)) from None
    check_two_domain(entry)
    counts = {}
    for key, default in (("num_test", None), ("batch_size", 8)):
        try:
            counts[key] = int(args[key]) if key in args else default
        except ValueError:
            raise ConfigError(f"{key}={args[key]}: not a whole number") from None
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
    inputs, real_files, data = get_data(run, data_root, direction)  # 3. data, translation
    inputs = inputs[: counts["num_test"]]
    real = out / "real"  # the target's test images, linked into one folder for the scoring
    _link(real_files, real)
    fake = out / "translated"
    translation = translate_test(run, direction, inputs, fake, size, device, counts["batch_size"])

    protocol = str(entry.get("protocol", DEFAULT_PROTOCOL))  # 4. score, once per lineage
    runs: dict[str, dict[str, Any]] = {}
    for item in entry["reported"]:
        impl = FID_LINEAGES.get(item["lineage"]) if str(item["metric"]).upper() in MEASURED else None
        if impl is not None and impl not in runs:
            runs[impl] = score(fake, real, protocol, impl, args.get("weights_dir"), device)
    tolerance = float(entry.get("reproduce_tolerance", DEFAULT_TOLERANCE))
    numbers = []
    for item in entry["reported"]:
        metric = str(item["metric"]).upper()
        impl = FID_LINEAGES.get(item["lineage"]) if metric in MEASURED else None
        lineage_run = runs.get(impl) if impl else None
        why_not = _not_comparable(item, lineage_run)
        measured = (lineage_run or {}).get("scores", {}).get(MEASURED.get(metric, ""))
        numbers.append(
            {
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
        )
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
        "tolerance": tolerance,
        "tolerance_source": "reproduce_tolerance" if "reproduce_tolerance" in entry else "default",
        "weights_dir": args.get("weights_dir"),
        "lineages": runs,
        "numbers": numbers,
        "reported_note": entry.get("reported_note"),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "reproduce.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "reproduce.md").write_text(markdown(report))
    return report


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
    for impl, r in report["lineages"].items():
        sha = r["metric_weights_sha256"] or "-"
        lines.append(
            f"- `{sha}` {r['metric_weights'] or 'missing'} ({impl} network, {r['metric_weights_status']})"
        )
    return "\n".join(lines) + "\n"


def summary(report: dict[str, Any]) -> str:
    """What the command prints: one line per reported number."""
    lines = [
        f"imtrans reproduce: {report['name']}, {report['translation']['n_inputs']} test inputs translated"
    ]
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
    print(f"written: {Path(report['translation']['folder']).parent / 'reproduce.json'}, reproduce.md")


if __name__ == "__main__":
    main()
