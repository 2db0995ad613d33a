"""Does discriminator augmentation help on small training sets? CycleGAN and MUNIT at their
quickstart sizes on the shapes data with few training images, ``augment=none`` against
``diffaugment`` against ``ada``, equal iterations, several seeds.

    OMP_NUM_THREADS=2 python experiments/bench_augment.py --train-sizes 32 128 --seeds 0 1 2 --iters 2000

Per run: the exact shapes scores at the end (content IoU of the a2b translation with its input's
layout; MUNIT's style diversity, foreground and background), the seconds per iteration, and the
overfitting heuristic r_t = E[sign(D(real) - boundary)] of the discriminators' real scores in
the D steps, averaged over windows of ``--window`` iterations (recorded by wrapping the shared
``TranslationModule.discriminate``, the one place every D call goes through, for every mode
alike). Writes ``--out`` (markdown: medians over seeds) and a PNG of r_t over time beside it.
Each run's result is kept in its folder under ``--work``: a second invocation (more seeds, another
process, after an interruption) trains only the runs it lacks.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import lightning as L
import torch

if __package__ in (None, ""):  # run as a file (python experiments/<name>.py): find the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments.benchlib import environment, run_config, write_report
from imtrans.augment import realness_scores
from imtrans.run import train

METHODS = {"CycleGAN": "experiment=quickstart", "MUNIT": "experiment=munit_quickstart"}
MODES = ("none", "diffaugment", "ada")


class RealSigns(L.Callback):
    """r_t of the D-step real scores over windows of ``window`` iterations, whatever the mode."""

    def __init__(self, window: int):
        self.window, self.rt, self.sums = window, [], [0.0, 0]

    def on_train_start(self, trainer, module):
        inner = module.discriminate

        def discriminate(D, *parts, real=False, scores=None, **kwargs):
            out = inner(D, *parts, real=real, scores=scores, **kwargs)
            if real:
                with torch.no_grad():
                    for s in realness_scores(out if scores is None else scores(out)):
                        self.sums[0] += float(torch.sign(s.float() - module._score_boundary()).sum())
                        self.sums[1] += s.numel()
            return out

        module.discriminate = discriminate

    def on_train_batch_end(self, trainer, module, *_):
        if module.iteration % self.window == 0 and self.sums[1]:
            self.rt.append((module.iteration, self.sums[0] / self.sums[1]))
            self.sums = [0.0, 0]


def run(method: str, mode: str, train_size: int, seed: int, iters: int, window: int, out: Path) -> dict:
    """One training run's scores; kept in ``out/bench.json``, so that an interrupted benchmark (or
    one extended by more seeds) runs only what it lacks."""
    cached = out / "bench.json"
    if cached.is_file():
        result = json.loads(cached.read_text())
        if result.get("iters") == iters and result.get("window") == window:
            result["rt"] = [tuple(p) for p in result["rt"]]
            return {**result, "p": final_p(out)}
    overrides = [
        METHODS[method],
        f"augment={mode}",
        f"data.train_size={train_size}",
        f"seed={seed}",
        f"iters={iters}",
        "task=fit+test",
        "logger=none",
        "callbacks.sample_grid=null",
        "callbacks.progress_bar=null",
        "metrics.fid=false",
        "metrics.kid=false",
        "metrics.lpips=false",
        "metrics.every_n_iters=null",
        "trainer.enable_model_summary=false",
    ]
    signs = RealSigns(window)
    train(run_config(overrides, out), extra_callbacks=[signs])
    scores = json.loads((out / "metrics.json").read_text())
    seconds = scores["fit_seconds"]  # training only: no start-up, no test
    result = {
        "content_iou": scores.get("test/a2b/content_iou"),
        "style_div_fg": scores.get("test/a2b/style_div_fg"),
        "style_div_bg": scores.get("test/a2b/style_div_bg"),
        "s_per_iter": seconds / iters,
        "rt": signs.rt,
        "iters": iters,
        "window": window,
    }
    cached.write_text(json.dumps(result))
    return {**result, "p": final_p(out)}


def final_p(out: Path) -> float | None:
    """ADA's p at the end of the run (None for the other modes), from its checkpoint."""
    ckpt = out / "checkpoints" / "last.ckpt"
    if not ckpt.is_file():
        return None
    state = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
    return float(state["augment.p"]) if "augment.p" in state else None


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _fmt(v, digits=3):
    return "-" if v is None else f"{v:.{digits}f}"


COLOURS = {"none": (0, 0, 0), "diffaugment": (31, 119, 180), "ada": (214, 39, 40)}


def plot(results: dict, path: Path, size=(420, 260), pad=36) -> None:
    """r_t over iterations, one panel per (method, training-set size), a line per run, drawn with
    PIL (no plotting library needed): black none, blue diffaugment, red ada; dotted: 0.6."""
    from PIL import Image, ImageDraw

    keys = sorted({(m, n) for m, _, n, _ in results})
    width, height = size
    sheet = Image.new("RGB", (width * len(keys), height), "white")
    draw = ImageDraw.Draw(sheet)
    last = max((it for r in results.values() for it, _ in r["rt"]), default=1)
    for k, (method, n) in enumerate(keys):
        x0, x1, y0, y1 = k * width + pad, (k + 1) * width - 10, 24, height - pad

        def xy(it, rt, box=(x0, x1, y0, y1)):
            left, right, top, bottom = box
            return left + (right - left) * it / last, bottom - (bottom - top) * (rt + 1) / 2  # r_t in [-1, 1]

        draw.rectangle((x0, y0, x1, y1), outline=(120, 120, 120))
        draw.text((x0, 6), f"{method}, {n} training images: r_t", fill=(0, 0, 0))
        for value in (-1, 0, 1):
            draw.text((x0 - 22, xy(0, value)[1] - 6), f"{value:+d}", fill=(0, 0, 0))
        target = xy(0, 0.6)[1]
        for x in range(int(x0), int(x1), 6):
            draw.line((x, target, x + 2, target), fill=(150, 150, 150))
        draw.text((x1 - 60, y1 + 6), f"iter {last}", fill=(0, 0, 0))
        for (m, mode, size_, _), r in results.items():
            if (m, size_) == (method, n) and len(r["rt"]) > 1:
                draw.line([xy(it, rt) for it, rt in r["rt"]], fill=COLOURS[mode], width=2)
        for j, mode in enumerate(COLOURS):
            draw.text((x0 + 6 + 90 * j, y1 - 14), mode, fill=COLOURS[mode])
    sheet.save(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--train-sizes", nargs="+", type=int, default=[32, 128])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--iters", type=int, default=2000)
    parser.add_argument("--window", type=int, default=50, help="iterations per r_t point")
    parser.add_argument("--work", type=Path, default=Path("/tmp/imtrans_bench_augment"))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "bench_augment.md")
    args = parser.parse_args(argv)
    results = {}
    for method in args.methods:
        for n in args.train_sizes:
            for mode in args.modes:
                for seed in args.seeds:
                    key = (method, mode, n, seed)
                    results[key] = run(
                        method, mode, n, seed, args.iters, args.window, args.work / "_".join(map(str, key))
                    )
                    r = results[key]
                    print(
                        f"{key}: content_iou {_fmt(r['content_iou'])}, {r['s_per_iter']:.3f} s/it", flush=True
                    )
    png = args.out.with_suffix(".png")
    png.parent.mkdir(parents=True, exist_ok=True)
    plot(results, png)
    lines = [
        "# Discriminator augmentation on small training sets (shapes data)",
        "",
        f"Command: `OMP_NUM_THREADS={torch.get_num_threads()} python experiments/bench_augment.py --methods "
        f"{' '.join(args.methods)} --modes {' '.join(args.modes)} --train-sizes {' '.join(map(str, args.train_sizes))} "
        f"--seeds {' '.join(map(str, args.seeds))} --iters {args.iters} --window {args.window}`",
        "",
        f"Environment: {environment(torch.get_num_threads(), 'cpu')}. Quickstart configurations "
        "(`experiment=quickstart`, `munit_quickstart`: 64 px, batch 1), `data.train_size` training images, "
        f"{args.iters} iterations, scores on the 64 test images at the end; medians over seeds "
        f"{', '.join(map(str, args.seeds))}. r_t: the last window's value (the curves: `{png.name}`).",
        "",
        "| method | train images | augment | content IoU | style div fg | style div bg | final r_t | ADA's final p | s / iteration |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for method in args.methods:
        for n in args.train_sizes:
            for mode in args.modes:
                runs = [results[(method, mode, n, s)] for s in args.seeds]
                last_rt = _median([r["rt"][-1][1] if r["rt"] else None for r in runs])
                lines.append(
                    f"| {method} | {n} | {mode} | {_fmt(_median(r['content_iou'] for r in runs))} | "
                    f"{_fmt(_median(r['style_div_fg'] for r in runs))} | {_fmt(_median(r['style_div_bg'] for r in runs))} | "
                    f"{_fmt(last_rt, 2)} | {_fmt(_median(r['p'] for r in runs), 5)} | "
                    f"{_fmt(_median(r['s_per_iter'] for r in runs))} |"
                )
    write_report(args.out, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
