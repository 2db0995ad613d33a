"""One training iteration of CUT and FastCUT against one of CycleGAN, through imtrans, in one
process with the iterations interleaved (CycleGAN, CUT, FastCUT, CycleGAN, ...), so that the
ratios hold on a busy machine.

    OMP_NUM_THREADS=2 python experiments/bench_cut.py --size 256 --rounds 5

Each method is built from its Hydra preset at the official widths (resnet_9blocks G, basic D;
CUT's F), and every iteration is the method's own ``training_step`` (the update sequence
imtrans trains with: CycleGAN's G then D step, CUT's D then G+F step), on the same random
unpaired batch of ``--batch`` images of ``--size`` px, outside the data loader. The paper's
Table 1 reports 0.40 s (CycleGAN), 0.24 s (CUT) and 0.15 s (FastCUT) per iteration on its GPU:
ratios 0.60 and 0.375. Results go to ``--out`` (markdown) and to stdout.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import hydra
import lightning as L
import torch

if __package__ in (None, ""):  # run as a file (python experiments/<name>.py): find the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments.benchlib import bench_config, environment, write_report

METHODS = {
    "CycleGAN": ["model=cyclegan"],
    "CUT": ["model=cut", "model.mode=cut"],
    "FastCUT": ["model=cut", "model.mode=fastcut"],
}
PAPER = {"CycleGAN": 0.40, "CUT": 0.24, "FastCUT": 0.15}  # s / iteration, Table 1 (GPU)


def prepared(overrides: list[str], size: int, out_dir: Path, device: str):
    """The method's module with its optimizers attached to a bare Lightning trainer, ready for
    ``training_step`` calls (what ``Trainer.fit`` sets up, without data loading and logging)."""
    cfg = bench_config([*overrides, "data=shapes", f"data.size={size}"], 1, out_dir, device)
    model = hydra.utils.instantiate(cfg.model).to(device).train()
    trainer = L.Trainer(
        accelerator=device, devices=1, max_steps=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.strategy.connect(model)
    trainer.strategy._lightning_optimizers = None
    model.trainer = trainer
    opts = model.configure_optimizers()
    trainer.strategy.optimizers = opts[0] if isinstance(opts, tuple) else opts
    model.log_dict = lambda *a, **k: None  # noqa: ARG005 (no logger outside a fit)
    return model


def time_step(model, batch, device: str) -> float:
    start = time.perf_counter()
    model.training_step(batch, 0)
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def forward_gflops(fn) -> float:
    """GFLOPs of one call of ``fn`` (no gradient), by PyTorch's flop counter."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() / 1e9


def work_table(models: dict, size: int) -> list[str]:
    """Forward GFLOPs of the networks each iteration runs, for one image: where the time goes."""
    x = torch.zeros(1, 3, size, size, device=next(models["CUT"].parameters()).device)
    cut, cyclegan = models["CUT"], models["CycleGAN"]
    g, d = forward_gflops(lambda: cut.G(x)), forward_gflops(lambda: cut.D(x))
    enc = forward_gflops(lambda: cut.G.encode(x, cut.nce_layers))
    g0, d0 = forward_gflops(lambda: cyclegan.G_A(x)), forward_gflops(lambda: cyclegan.D_A(x))
    return [
        f"Forward GFLOPs per image at {size} px: CycleGAN G {g0:.1f}, D {d0:.1f}; CUT G {g:.1f}, D {d:.1f}, "
        f"encoder to layer {cut.nce_layers[-1]} {enc:.1f}. The anti-aliased layers convolve at full resolution "
        "before blurring (stride 1, then a stride-2 blur), so CUT's G and D cost more per pass than CycleGAN's; "
        "CUT saves passes (one G pass over A and B, no cycle), not work per pass. Per iteration (forward, "
        "backward about twice the forward): CycleGAN 6 G passes and 6 D passes, all with backward; CUT 2 "
        "G images, 2 query encodes and 3 D passes with backward, 2 key encodes without.",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5, help="timed iterations per method")
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations per method first")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "bench_cut.md")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    out_dir = Path("/tmp/imtrans_bench_cut")
    models = {name: prepared(o, args.size, out_dir, args.device) for name, o in METHODS.items()}
    g = torch.Generator().manual_seed(0)
    batch = {
        k: (torch.rand(args.batch, 3, args.size, args.size, generator=g) * 2 - 1).to(args.device)
        for k in "AB"
    }
    times: dict[str, list[float]] = {name: [] for name in models}
    for round_ in range(args.warmup + args.rounds):
        for name, model in models.items():  # interleaved: A B C A B C ...
            elapsed = time_step(model, batch, args.device)
            if round_ >= args.warmup:
                times[name].append(elapsed)
        print(
            f"round {round_ + 1}: " + ", ".join(f"{n} {t[-1]:.2f} s" for n, t in times.items() if t),
            flush=True,
        )
    median = {name: statistics.median(t) for name, t in times.items()}
    base = median["CycleGAN"]
    threads = torch.get_num_threads()
    lines = [
        "# CUT / FastCUT against CycleGAN: one training iteration through imtrans",
        "",
        f"Command: `OMP_NUM_THREADS={threads} python experiments/bench_cut.py --size {args.size} "
        f"--batch {args.batch} --rounds {args.rounds} --warmup {args.warmup} --device {args.device}`",
        "",
        f"Environment: {environment(threads, args.device)}. Official widths (ngf = ndf = 64, resnet_9blocks, "
        f"F with 256-d MLPs), {args.size} px, batch {args.batch}, each method's `training_step` on one fixed "
        f"batch, {args.rounds} interleaved iterations per method after {args.warmup} warm-up.",
        "",
        "| method | median s / iteration | min | ratio to CycleGAN | paper s / it (GPU) | paper ratio |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, t in times.items():
        lines.append(
            f"| {name} | {median[name]:.2f} | {min(t):.2f} | {median[name] / base:.2f} | {PAPER[name]:.2f} | "
            f"{PAPER[name] / PAPER['CycleGAN']:.2f} |"
        )
    lines += ["", *work_table(models, args.size)]
    lines += [
        "",
        "What each iteration does: CycleGAN runs 2 generators 6 times (two translations, two "
        "reconstructions, two identities) and 2 discriminators; CUT runs G once on cat(A, B), four "
        "encoder passes (stopping at layer 16) and F, and one D; FastCUT runs G once on A and two "
        "encoder passes.",
    ]
    write_report(args.out, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
