"""Training speed of pix2pixHD: imtrans against the same modules in a bare PyTorch loop.

    PYTHONPATH=. OMP_NUM_THREADS=2 python experiments/bench_pix2pixhd.py --iters 5 --warmup 1

The official 512p networks (global G + 2-scale D: 188,149,957 parameters, VGG19 loss), label
maps of the Cityscapes sample (``../shared/data/cityscapes_sample``) scaled to 128x256, batch
1. The bare loop does what ``Pix2PixHD.training_step`` does through
``TranslationModule.optimize``: one forward (G, D on the detached fake, D on the real photo),
G step (D frozen) on gan + feat + vgg, D step on the stored D outputs; it logs nothing.
Without VGG19 weights in the hub cache, random weights are written to a scratch TORCH_HOME
(the time does not depend on their values).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import hydra
import lightning as L
import torch

if __package__ in (None, ""):  # run as a file (python experiments/<name>.py): find the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments.benchlib import bare_step, bench_config, environment, rates, run_imtrans, write_report
from imtrans.losses.perceptual import VGG19_FILE, vgg19_features

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cityscapes_sample"


def ensure_vgg19(scratch: Path) -> str:
    """Where the VGG19 weights come from: the hub cache, or random ones under ``scratch``."""
    if (Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE).is_file():
        return "torchvision VGG19 weights"
    home = scratch / "torch_home"
    path = home / "hub" / "checkpoints" / VGG19_FILE
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        g = torch.Generator().manual_seed(0)
        feats = vgg19_features().state_dict()
        torch.save(
            {f"features.{k}": torch.randn(v.shape, generator=g) * 0.05 for k, v in feats.items()}, path
        )
    os.environ["TORCH_HOME"] = str(home)
    return "random VGG19 weights (none in the hub cache)"


def run_bare(cfg, warmup: int, iters: int, device: str) -> tuple[float, float]:
    L.seed_everything(cfg.seed, verbose=False)
    dm = hydra.utils.instantiate(cfg.data)
    dm.setup("fit")
    model = hydra.utils.instantiate(cfg.model).to(device).train()
    groups = model.optimizer_groups()
    opts = {name: model._optimizer_factory(list(params)) for name, params in groups.items()}
    w = model.loss_weights
    g_params, d_params = list(model.G.parameters()), list(model.D.parameters())
    loader, times = iter(dm.train_dataloader()), []
    for _ in range(iters):
        try:
            batch = next(loader)
        except StopIteration:
            loader = iter(dm.train_dataloader())
            batch = next(loader)
        batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
        f = model.forward_pass(batch)
        bare_step([opts["G"]], d_params, w, model.generator_terms, f)
        bare_step([opts["D"]], g_params, w, model.discriminator_terms, f)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter())
    return rates(times, warmup)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load-size", type=int, default=256, help="label width (height = half)")
    parser.add_argument("--iters", type=int, default=5, help="measured iterations")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="alternating bare/imtrans rounds")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "bench_pix2pixhd.md")
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/imtrans_bench_pix2pixhd"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    vgg_source = ensure_vgg19(args.scratch)
    total = args.warmup + args.iters + 1  # +1: the first timestamp closes the first iteration
    overrides = [
        "model=pix2pixhd",
        "data=cityscapes",
        f"data.root={args.data}",
        f"data.load_size={args.load_size}",
        "data.batch_size=1",
        "data.flip=false",
        "metrics=none",
    ]
    cfg = bench_config(overrides, total, args.scratch, args.device)
    # Alternating rounds (bare first): on a shared machine the load of other jobs changes
    # between runs; the fastest of the rounds is the least disturbed estimate of each.
    rounds = []
    for _ in range(args.rounds):
        bare_r = run_bare(cfg, args.warmup, total, args.device)
        cfg = bench_config(overrides, total, args.scratch, args.device)
        rounds.append((run_imtrans(cfg, args.warmup), bare_r))
    fw = (max(r[0][0] for r in rounds), max(r[0][1] for r in rounds))
    bare = (max(r[1][0] for r in rounds), max(r[1][1] for r in rounds))
    params = sum(p.numel() for p in hydra.utils.instantiate(cfg.model).parameters())
    h, w = args.load_size // 2, args.load_size
    lines = [
        "# pix2pixHD training speed: imtrans vs. a bare PyTorch loop",
        "",
        f"`PYTHONPATH=. python experiments/bench_pix2pixhd.py --load-size {args.load_size} --iters {args.iters} "
        f"--warmup {args.warmup} --threads {args.threads} --rounds {args.rounds} --device {args.device}`",
        "",
        f"{params:,} trained parameters (512p setting: global G, 2-scale D, 36 input channels) + frozen "
        f"VGG19 ({vgg_source}); Cityscapes sample label maps at {h}x{w}, batch 1, fp32, "
        f"{environment(args.threads, args.device)}. One iteration = one forward, G step, D step. "
        f"Median and fastest of {args.iters} iterations after {args.warmup} warm-up iteration(s), "
        "best round.",
        "",
        "| | s/iteration median | s/iteration best | it/s best |",
        "| --- | ---: | ---: | ---: |",
        f"| imtrans | {1 / fw[0]:.3f} | {1 / fw[1]:.3f} | {fw[1]:.3f} |",
        f"| bare loop | {1 / bare[0]:.3f} | {1 / bare[1]:.3f} | {bare[1]:.3f} |",
        "",
        f"Framework overhead (imtrans time / bare time): median {bare[0] / fw[0]:.3f}, best {bare[1] / fw[1]:.3f}.",
        "",
        f"Per round (s/iteration median / best), bare loop first in each of {args.rounds} rounds, each "
        "table entry above the best round:",
        "",
        *[
            f"- round {i + 1}: bare {1 / b[0]:.3f} / {1 / b[1]:.3f}, imtrans {1 / f[0]:.3f} / {1 / f[1]:.3f}"
            for i, (f, b) in enumerate(rounds)
        ],
        "",
    ]
    write_report(args.out, lines)


if __name__ == "__main__":
    main()
