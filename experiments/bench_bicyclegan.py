"""Training speed of BicycleGAN: imtrans against the same modules in a bare PyTorch loop.

    OMP_NUM_THREADS=2 python experiments/bench_bicyclegan.py --size 128 --iters 10 --warmup 2

Official 128-px networks (unet_128, basic_128_multi, resnet_128: 45,148,439 parameters),
batch 2 (one pair per half), procedural paired shapes at ``--size`` px. The bare loop
does what ``BicycleGAN.training_step`` does through ``TranslationModule.optimize``: one
forward; G+E step (D, D2 frozen); D step; D2 step; it logs nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import hydra
import lightning as L
import torch

if __package__ in (None, ""):  # run as a file (python experiments/<name>.py): find the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments.benchlib import bare_step, bench_config, environment, rates, run_imtrans, write_report


def run_bare(cfg, warmup: int, iters: int, device: str) -> tuple[float, float]:
    L.seed_everything(cfg.seed, verbose=False)
    dm = hydra.utils.instantiate(cfg.data)
    dm.setup("fit")
    model = hydra.utils.instantiate(cfg.model).to(device).train()
    opts = {name: model._optimizer_factory(list(params)) for name, params in model.optimizer_groups().items()}
    w = model.loss_weights
    nets = {n: list(getattr(model, n).parameters()) for n in ("G", "E", "D", "D2")}
    loader, times = iter(dm.train_dataloader()), []
    for _ in range(iters):
        batch = next(loader)
        f = model.forward_pass(batch["A"].to(device), batch["B"].to(device))
        bare_step([opts["G"], opts["E"]], nets["D"] + nets["D2"], w, model.generator_terms, f)
        for name, real, fake in (("D", f["B1"], f["fake_enc"]), ("D2", f["B2"], f["fake_rand"])):
            others = [p for n, ps in nets.items() if n != name for p in ps]
            bare_step([opts[name]], others, w, model.discriminator_terms, name, real, fake)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter())
    return rates(times, warmup)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--iters", type=int, default=10, help="measured iterations")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "bench_bicyclegan.md")
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/imtrans_bench_bicyclegan"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    total = args.warmup + args.iters + 1  # +1: the first timestamp closes the first iteration
    overrides = [
        "model=bicyclegan",
        "data=shapes_paired",
        f"data.size={args.size}",
        f"data.batch_size={args.batch}",
    ]
    cfg = bench_config(overrides, total, args.scratch, args.device)
    fw = run_imtrans(cfg, args.warmup)
    bare = run_bare(cfg, args.warmup, total, args.device)
    params = sum(p.numel() for p in hydra.utils.instantiate(cfg.model).parameters())
    lines = [
        "# BicycleGAN training speed: imtrans vs. a bare PyTorch loop",
        "",
        f"`python experiments/bench_bicyclegan.py --size {args.size} --batch {args.batch} --iters {args.iters} "
        f"--warmup {args.warmup} --threads {args.threads} --device {args.device}`",
        "",
        f"{params:,} parameters (official nets for {args.size} px, 3 input channels), batch {args.batch}, fp32, "
        f"{environment(args.threads, args.device)}. One iteration = G+E step, D step, D2 step. "
        f"Median and fastest of {args.iters} iterations after {args.warmup} warm-up iterations.",
        "",
        "| | s/iteration median | s/iteration best | it/s best |",
        "| --- | ---: | ---: | ---: |",
        f"| imtrans | {1 / fw[0]:.3f} | {1 / fw[1]:.3f} | {fw[1]:.3f} |",
        f"| bare loop | {1 / bare[0]:.3f} | {1 / bare[1]:.3f} | {bare[1]:.3f} |",
        "",
        f"Framework overhead (imtrans time / bare time): median {bare[0] / fw[0]:.3f}, best {bare[1] / fw[1]:.3f}.",
        "",
    ]
    write_report(args.out, lines)


if __name__ == "__main__":
    main()
