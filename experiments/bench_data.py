"""Data loading speed: items per second of each data module's training dataset, per worker.

    OMP_NUM_THREADS=1 python experiments/bench_data.py --seconds 2 --repeats 3

Five training datasets, each built through its data module with the settings of the preset
that trains on it (files in the page cache, no disk reads):

- ``unpaired``: ``UnpairedDataModule`` (horse2zebra / CycleGAN settings: resize to 286x286,
  random crop 256, flip) over 2 x 32 JPEGs of 400x300, crops of the Cityscapes sample photos
  (``../shared/data/cityscapes_sample/train_img``) resized bicubically, quality 90, 4:2:0;
- ``paired AB``: ``PairedDataModule`` with ``layout: ab`` (edges2handbags preset: load 256 =
  crop 256, flip) over 64 side-by-side 512x256 JPEGs built from the edges2handbags sample
  (edge map left, photo right, quality 90);
- ``labels``: ``LabelDataModule`` (cityscapes preset: label + 16-bit instance map + photo,
  2048x1024 PNGs, width scaled to 1024, flip) over the 8 Cityscapes sample triples, linked 6
  times under other names (48 items, so that the loaders do not cross an epoch end often);
- ``domains``: ``DomainsDataModule`` (afhq preset: resize 256, crop 256, flip) over 3 x 16
  JPEGs of 512x512 (AFHQ's size), crops of the Cityscapes photos, quality 90;
- ``domains StarGAN v2``: the same files with ``experiment=stargan_v2_afhq``'s data settings
  (random resized crop, bilinear, balanced draw, a reference pair: 3 images per item).

Per dataset: items per second by ``dataset[i]`` in this process (one worker's work), and through
the data module's own training DataLoader (``ResumableSampler``, ``PositionSeeded``, batch 1)
with 0, 1 and 2 workers (``--workers``); each the median of ``--repeats`` windows of
``--seconds``. The stages of one item (exclusive time): ``decode`` (``io.open_image``: file read + PIL decode), ``convert``
(mode conversion: ``to_photo``, 16-bit maps to mode I), ``transform`` (``SpatialTransform``
resize / crop / flip), ``to tensor`` and the rest (id checks, halves of AB images, sampling).

Decoders: PIL against ``torchvision.io.decode_jpeg`` / ``decode_png`` on the same files, time
to a PIL image (what the transforms take) and pixel equality; and what each does with a corrupt
PNG (run in a child process, since a crash there must not end the benchmark).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import PIL
import torch
import torchvision
from PIL import Image, features

if __package__ in (None, ""):  # run as a file (python experiments/<name>.py): find the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments.benchlib import environment, write_report
from imtrans.data import DomainsDataModule, LabelDataModule, PairedDataModule, UnpairedDataModule
from imtrans.data import datasets as ds_module
from imtrans.data import io as io_module
from imtrans.data.transforms import SpatialTransform

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CITYSCAPES = SHARED / "cityscapes_sample"
HANDBAGS = SHARED / "edges2handbags_sample"
STAGES = ("decode", "convert", "transform", "to tensor", "other")
MIN_ITEMS = 8  # a timing window lasts at least this many items (the label items take ~0.3 s)

# torchvision 0.29 warns on every decode that its image codecs are deprecated (TorchCodec).
warnings.filterwarnings("ignore", message=".*image decoding and encoding capabilities.*")


# ---------------------------------------------------------------------------------------------
# Data


def _photos() -> list[np.ndarray]:
    return [
        np.asarray(Image.open(p).convert("RGB")) for p in sorted((CITYSCAPES / "train_img").glob("*.png"))
    ]


def _crops(photos: list[np.ndarray], count: int, box: tuple[int, int], size: tuple[int, int], seed: int):
    """``count`` crops of ``box`` = (w, h) from the photos, resized bicubically to ``size``."""
    rng = np.random.default_rng(seed)
    for k in range(count):
        photo = photos[k % len(photos)]
        height, width = photo.shape[:2]
        left, top = int(rng.integers(0, width - box[0] + 1)), int(rng.integers(0, height - box[1] + 1))
        crop = Image.fromarray(photo[top : top + box[1], left : left + box[0]])
        yield crop.resize(size, Image.Resampling.BICUBIC)


def _save_jpeg(img: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, "JPEG", quality=90)  # PIL's default subsampling at this quality: 4:2:0


def make_data(work: Path) -> dict[str, Path]:
    """Write the benchmark's data trees under ``work`` (kept between runs) and return their roots."""
    roots = {
        "unpaired": work / "unpaired",
        "paired": work / "paired_ab",
        "labels": work / "labels",
        "domains": work / "domains",
    }
    if all((root / ".done").is_file() for root in roots.values()):
        return roots
    shutil.rmtree(work, ignore_errors=True)
    photos = _photos()
    for side, seed in (("trainA", 1), ("trainB", 2)):
        for i, img in enumerate(_crops(photos, 32, (1200, 900), (400, 300), seed)):
            _save_jpeg(img, roots["unpaired"] / side / f"{i:04d}.jpg")
    # The sample's A and B files are not pairs of one bag (unpaired halves): edges of one, photo of another.
    pairs = [
        pair
        for split in ("train", "test")
        for pair in zip(
            sorted((HANDBAGS / f"{split}A").glob("*.jpg")), sorted((HANDBAGS / f"{split}B").glob("*.jpg"))
        )
    ]
    for i in range(64):
        a, b = (Image.open(p).convert("RGB") for p in pairs[i % len(pairs)])
        ab = Image.new("RGB", (a.width + b.width, a.height))
        ab.paste(a, (0, 0))
        ab.paste(b, (a.width, 0))
        _save_jpeg(ab, roots["paired"] / "train" / f"{i:04d}.jpg")
    for kind in ("label", "inst", "img"):
        folder = roots["labels"] / f"train_{kind}"
        folder.mkdir(parents=True)
        for copy in range(6):
            for source in sorted((CITYSCAPES / f"train_{kind}").glob("*.png")):
                (folder / f"copy{copy}_{source.name}").symlink_to(source)
    for d, domain in enumerate(("cat", "dog", "wild")):
        for i, img in enumerate(_crops(photos, 16, (1024, 1024), (512, 512), 10 + d)):
            _save_jpeg(img, roots["domains"] / "train" / domain / f"{i:04d}.jpg")
    for root in roots.values():
        (root / ".done").touch()
    return roots


def cases(roots: dict[str, Path]) -> list[dict]:
    """Name, data module, images per item and the preset it follows, for each dataset."""
    common = {"batch_size": 1, "verify": "header", "seed": 0}
    return [
        {
            "name": "unpaired",
            "what": "2 JPEGs 400x300 (A, B) -> resize 286x286, crop 256, flip",
            "images": 2,
            "dm": UnpairedDataModule(roots["unpaired"], **common),
        },
        {
            "name": "paired AB",
            "what": "1 JPEG 512x256 split in A, B (256x256) -> crop 256 (no resize), flip",
            "images": 2,
            "dm": PairedDataModule(roots["paired"], layout="ab", load_size=256, crop_size=256, **common),
        },
        {
            "name": "labels",
            "what": "3 PNGs 2048x1024 (label L, instance I;16, photo RGB) -> 1024x512, flip",
            "images": 3,
            "dm": LabelDataModule(roots["labels"], label_nc=35, use_instance=True, load_size=1024, **common),
        },
        {
            "name": "domains",
            "what": "1 JPEG 512x512 -> resize 256 (bicubic), flip",
            "images": 1,
            "dm": DomainsDataModule(roots["domains"], load_size=256, crop_size=256, **common),
        },
        {
            "name": "domains StarGAN v2",
            "what": "3 JPEGs 512x512 (image + reference pair) -> random resized crop, bilinear 256, flip",
            "images": 3,
            "dm": DomainsDataModule(
                roots["domains"],
                preprocess="random_resized_crop",
                resample="bilinear",
                balanced=True,
                references=True,
                load_size=256,
                crop_size=256,
                **common,
            ),
        },
    ]


# ---------------------------------------------------------------------------------------------
# Measurements


def _median_rate(measure: Callable[[], float], repeats: int) -> tuple[float, list[float]]:
    values = [measure() for _ in range(repeats)]
    return statistics.median(values), values


def direct_rate(dataset, seconds: float) -> float:
    """Items per second of ``dataset[i]`` in this process over ``seconds``."""
    n, start, i = 0, time.perf_counter(), 0
    while True:
        dataset[i % len(dataset)]
        n, i = n + 1, i + 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and n >= MIN_ITEMS:
            return n / elapsed


def loader_rates(dm, workers: int, seconds: float, repeats: int) -> list[float]:
    """Items per second through the data module's training DataLoader with ``workers`` workers:
    a warm-up window (workers started, queues full), then ``repeats`` windows of ``seconds``."""
    dm.num_workers = workers
    loader = dm.train_dataloader()
    it = iter(loader)

    def batch():
        nonlocal it
        try:
            return next(it)
        except StopIteration:  # persistent workers: the next epoch reuses them
            it = iter(loader)
            return next(it)

    def window(length: float) -> float:
        n, start = 0, time.perf_counter()
        while True:
            batch()
            n += dm.batch_size
            elapsed = time.perf_counter() - start
            if elapsed >= length and n >= MIN_ITEMS:
                return n / elapsed

    batch()  # starts the workers
    window(min(1.0, seconds))
    rates = [window(seconds) for _ in range(repeats)]
    if hasattr(it, "_shutdown_workers"):
        it._shutdown_workers()
    return rates


class StageClock:
    """Exclusive time per stage: each wrapped call's time minus that of the wrapped calls inside it."""

    def __init__(self):
        self.totals: dict[str, float] = defaultdict(float)
        self._inner: list[float] = []

    def wrap(self, stage: str, fn: Callable) -> Callable:
        def timed(*args, **kwargs):
            self._inner.append(0.0)
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                inner = self._inner.pop()
                self.totals[stage] += elapsed - inner
                if self._inner:
                    self._inner[-1] += elapsed

        return timed


@contextmanager
def staged(clock: StageClock):
    """Route the data package's loading functions through ``clock`` (restored afterwards)."""
    patches = [
        (io_module, "open_image", "decode"),
        (io_module, "to_photo", "convert"),
        (ds_module, "to_photo", "convert"),
        (ds_module, "load_photo", "convert"),
        (ds_module, "load_id_map", "convert"),  # beyond open_image: the mode check, I;16 -> I
        (ds_module, "photo_to_tensor", "to tensor"),
        (ds_module, "ids_to_tensor", "to tensor"),
        (SpatialTransform, "apply", "transform"),
    ]
    saved = [(owner, name, owner.__dict__[name]) for owner, name, _ in patches]
    try:
        for owner, name, stage in patches:
            setattr(owner, name, clock.wrap(stage, owner.__dict__[name]))
        yield clock
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


def stage_times(dataset, seconds: float) -> dict[str, float]:
    """Milliseconds per item in each stage, over ``seconds`` of ``dataset[i]`` calls."""
    clock = StageClock()
    with staged(clock):
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds or n < MIN_ITEMS:
            dataset[n % len(dataset)]
            n += 1
        total = time.perf_counter() - start
    times = {stage: 1e3 * clock.totals[stage] / n for stage in STAGES[:-1]}
    times["other"] = 1e3 * total / n - sum(times.values())
    return times


# ---------------------------------------------------------------------------------------------
# Decoders


def pil_decode(path: Path) -> Image.Image:
    """What ``io.open_image`` does: open and decode with PIL."""
    with Image.open(path) as img:
        img.load()
        return img


def tv_decode_raw(path: Path) -> torch.Tensor:
    from torchvision.io import decode_jpeg, decode_png

    data = torch.frombuffer(bytearray(path.read_bytes()), dtype=torch.uint8)
    return (decode_png if path.suffix == ".png" else decode_jpeg)(data)


def tv_decode(path: Path) -> Image.Image:
    """torchvision's decoder to a PIL image (the transforms take PIL images): HWC, no copy."""
    array = tv_decode_raw(path).permute(1, 2, 0).numpy()
    return Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)


DECODERS = {"pil": pil_decode, "tv": tv_decode, "raw": tv_decode_raw}


def decode_window(paths: list[Path], seconds: float) -> dict[str, float]:
    """Milliseconds per file of each decoder over one window of ``seconds``, the decoders taking
    turns file by file (so that a change of the machine's load hits all of them alike)."""
    totals, n, start = dict.fromkeys(DECODERS, 0.0), 0, time.perf_counter()
    while time.perf_counter() - start < seconds or n < MIN_ITEMS:
        path = paths[n % len(paths)]
        for name, decode in DECODERS.items():
            t0 = time.perf_counter()
            decode(path)
            totals[name] += time.perf_counter() - t0
        n += 1
    return {name: 1e3 * total / n for name, total in totals.items()}


def same_pixels(path: Path) -> bool:
    a = np.asarray(pil_decode(path))
    b = tv_decode_raw(path).permute(1, 2, 0).numpy()
    b = b[:, :, 0] if a.ndim == 2 else b
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)


CORRUPT_CHILD = """
import sys, warnings, torch
warnings.filterwarnings("ignore")
from torchvision.io import decode_png
data = torch.frombuffer(bytearray(open(sys.argv[1], "rb").read()), dtype=torch.uint8)
try:
    decode_png(data)
    print("decoded")
except Exception as err:
    print("raised " + type(err).__name__)
"""


def corrupt_png_outcomes(work: Path) -> tuple[str, str]:
    """(PIL, torchvision) on a 400x300 PNG with 8 bytes of its image data overwritten."""
    rng = np.random.default_rng(0)
    path = work / "corrupt.png"
    Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)).save(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 8] = b"\x00" * 8
    path.write_bytes(bytes(data))
    try:
        pil_decode(path)
        pil = "decoded"
    except Exception as err:
        pil = f"raised {type(err).__name__} ({err})"
    child = subprocess.run(
        [sys.executable, "-c", CORRUPT_CHILD, str(path)], capture_output=True, text=True, timeout=120
    )
    if child.returncode < 0:
        tv = f"the process died of signal {-child.returncode} ({'SIGSEGV' if child.returncode == -11 else '?'})"
    else:
        tv = child.stdout.strip() or f"exit {child.returncode}"
    return pil, tv


def decoder_rows(roots: dict[str, Path], seconds: float, repeats: int) -> list[dict]:
    kinds = [
        ("JPEG 400x300 RGB (unpaired)", sorted((roots["unpaired"] / "trainA").glob("*.jpg"))),
        ("JPEG 512x256 RGB (paired AB)", sorted((roots["paired"] / "train").glob("*.jpg"))),
        ("JPEG 512x512 RGB (domains)", sorted((roots["domains"] / "train").glob("*/*.jpg"))),
        ("PNG 2048x1024 RGB (Cityscapes photo)", sorted((CITYSCAPES / "train_img").glob("*.png"))),
        ("PNG 2048x1024 L (label map)", sorted((CITYSCAPES / "train_label").glob("*.png"))),
        ("PNG 2048x1024 I;16 (instance map)", sorted((CITYSCAPES / "train_inst").glob("*.png"))),
    ]
    rows = []
    for kind, paths in kinds:
        windows = [decode_window(paths, seconds) for _ in range(repeats)]
        equal = sum(same_pixels(p) for p in paths)
        rows.append(
            {
                "kind": kind,
                **{name: statistics.median(w[name] for w in windows) for name in DECODERS},
                "ratios": [w["pil"] / w["tv"] for w in windows],
                "equal": f"{equal}/{len(paths)}",
            }
        )
        print(rows[-1], flush=True)
    return rows


# ---------------------------------------------------------------------------------------------


def _load() -> str:
    try:
        return " ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one timing window")
    parser.add_argument("--repeats", type=int, default=3, help="windows per measurement (median)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="DataLoader worker counts")
    parser.add_argument(
        "--cases", nargs="+", default=None, help="only these datasets (names as in the table)"
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/imtrans_bench_data"))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "bench_data.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    load_before = _load()
    roots = make_data(args.work)
    results = []
    for case in cases(roots):
        if args.cases and case["name"] not in args.cases:
            continue
        dm = case["dm"]
        dataset = dm.dataset("train", augment=True)  # what train_dataloader reads; no val split here
        torch.manual_seed(0)
        dataset[0]  # warm: imports, first file reads
        load = os.getloadavg()[0]
        direct, direct_all = _median_rate(lambda: direct_rate(dataset, args.seconds), args.repeats)  # noqa: B023
        stages = [stage_times(dataset, args.seconds) for _ in range(args.repeats)]
        stages = {s: statistics.median(t[s] for t in stages) for s in STAGES}
        loaders = {w: loader_rates(dm, w, args.seconds, args.repeats) for w in args.workers}
        results.append(
            {
                **case,
                "load": load,
                "direct": direct,
                "direct_all": direct_all,
                "stages": stages,
                "loaders": loaders,
            }
        )
        print(
            case["name"],
            f"direct {direct:.1f} items/s",
            {w: [round(r, 1) for r in v] for w, v in loaders.items()},
            {k: round(v, 2) for k, v in stages.items()},
            flush=True,
        )
    decoders = decoder_rows(roots, args.seconds, args.repeats)
    corrupt_pil, corrupt_tv = corrupt_png_outcomes(args.work)
    load_after = _load()

    command = (
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '?')} python experiments/bench_data.py "
        f"--seconds {args.seconds:g} --repeats {args.repeats} --workers {' '.join(map(str, args.workers))}"
        + (f" --cases {' '.join(repr(c) for c in args.cases)}" if args.cases else "")
    )
    lines = [
        "# Data loading: items per second per worker",
        "",
        f"Command: `{command}`",
        "",
        f"Environment: {environment(1, 'cpu')}, {os.cpu_count()} cores shared with other jobs (load average "
        f"{load_before} before, {load_after} after); Python {platform.python_version()}, Pillow {PIL.__version__} "
        f"(libjpeg-turbo {features.version('libjpeg_turbo')}, zlib {features.version('zlib')}), torchvision "
        f"{torchvision.__version__}. All files in the page cache. Each rate: the median of {args.repeats} windows "
        f"of {args.seconds:g} s (all windows in brackets).",
        "",
        "## Training datasets",
        "",
        "Items per second; an item is one training sample of batch 1 (its images: the column). `direct`: "
        "`dataset[i]` in one process: one worker's work, without sampler, collation or inter-process "
        "transfer. `N workers`: the data module's own training DataLoader (`ResumableSampler`, "
        "`PositionSeeded`, collation, batch 1) with `num_workers=N`, timed in the main process after a "
        "warm-up window; 0 workers loads in the main process. `load`: the 1-minute load average when the "
        "row started (2 cores: above 2, the benchmark shared them with other jobs).",
        "",
        "| dataset | preset settings | images / item | direct | "
        + " | ".join(f"{w} worker{'s' if w != 1 else ''}" for w in args.workers)
        + " | ms / item direct | load |",
        "|---|---|---:|---:|" + "---:|" * len(args.workers) + "---:|---:|",
    ]
    for r in results:
        loader_cells = " | ".join(
            f"{statistics.median(v):.1f} ({', '.join(f'{x:.0f}' for x in v)})" for v in r["loaders"].values()
        )
        lines.append(
            f"| {r['name']} | {r['what']} | {r['images']} | {r['direct']:.1f} "
            f"({', '.join(f'{x:.0f}' for x in r['direct_all'])}) | {loader_cells} | {1e3 / r['direct']:.1f} | {r['load']:.1f} |"
        )
    lines += [
        "",
        "## Where one item's time goes (direct, ms per item, exclusive)",
        "",
        "`decode`: `io.open_image` (file read + PIL decode); `convert`: mode conversion (`to_photo`, 16-bit "
        "maps to mode I); `transform`: `SpatialTransform.apply` (resize, crop, flip); `to tensor`: "
        "`photo_to_tensor` / `ids_to_tensor`; `other`: the rest (geometry sampling, label id checks, the "
        "halves of AB images, the item dict). Timed with wrappers around those functions (about 1 us each).",
        "",
        "| dataset | " + " | ".join(STAGES) + " | total | decode share |",
        "|---|" + "---:|" * (len(STAGES) + 2),
    ]
    for r in results:
        s = r["stages"]
        total = sum(s.values())
        lines.append(
            f"| {r['name']} | " + " | ".join(f"{s[k]:.2f}" for k in STAGES) + f" | {total:.2f} | "
            f"{100 * s['decode'] / total:.0f} % |"
        )
    lines += [
        "",
        "## Decoders: PIL against torchvision.io",
        "",
        "Milliseconds per file (median of the windows; the decoders take turns file by file). `PIL`: "
        "`Image.open` + `load` (what `io.open_image` does); `torchvision -> PIL`: `decode_jpeg` / "
        "`decode_png` of the file's bytes, made a PIL image (the transforms take PIL images; HWC view, "
        "one copy in `Image.fromarray`); `torchvision raw`: the decode alone. Pixel-equal: the decoded "
        "arrays identical (dtype, shape, values) on that many of the files. A ratio above 1: torchvision is "
        "faster.",
        "",
        "| files | PIL ms | torchvision -> PIL ms | torchvision raw ms | PIL / torchvision -> PIL (windows) | pixel-equal |",
        "|---|---:|---:|---:|---:|---:|",
        *[
            f"| {d['kind']} | {d['pil']:.2f} | {d['tv']:.2f} | {d['raw']:.2f} | {d['pil'] / d['tv']:.2f} ({', '.join(f'{x:.2f}' for x in d['ratios'])}) | "
            f"{d['equal']} |"
            for d in decoders
        ],
        "",
        f"A corrupt PNG (400x300, 8 bytes of its image data zeroed): PIL {corrupt_pil}; torchvision "
        f"`decode_png`: {corrupt_tv}.",
        "",
    ]
    write_report(args.out, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
