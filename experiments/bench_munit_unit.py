"""Training speed of MUNIT and UNIT: imtrans (Lightning trainer, ``iters``) against the same
modules in a bare PyTorch loop, at the official network sizes.

    OMP_NUM_THREADS=2 python experiments/bench_munit_unit.py --size 128 --iters 5 --warmup 2

Both paths build the model from the same Hydra config, read the same data (procedural shapes
at ``--size`` px, batch 1, no workers) and run the same update (D step, then G step, the G
forward reused or not as ``model.reuse_translations`` says). The bare loop does by hand what
the framework does: freezes the other network around each step, zeroes, backward, step, and
steps the schedulers every iteration; it logs nothing. The ratio imtrans / bare is the
framework overhead. Iterations per second are measured over ``--iters`` iterations after
``--warmup`` iterations. Results go to ``--out`` (markdown) and to stdout.
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

from experiments.benchlib import bench_config, environment, rates, run_imtrans, write_report
from imtrans.losses import weighted_sum

VARIANTS = {
    "MUNIT (one pass)": ["model=munit", "model.reuse_translations=true"],
    "MUNIT (official passes)": ["model=munit", "model.reuse_translations=false"],
    "UNIT (one pass)": ["model=unit", "model.reuse_translations=true"],
    "UNIT (official passes)": ["model=unit", "model.reuse_translations=false"],
}


def config(overrides: list[str], size: int, iters: int, out_dir: Path, device: str):
    data = ["data=shapes", f"data.size={size}", "data.batch_size=1", "data.train_size=1000"]
    return bench_config([*overrides, *data], iters, out_dir, device)


def _freeze(modules, flag: bool):
    for m in modules:
        for p in m.parameters():
            p.requires_grad_(flag)


def run_bare(cfg, warmup: int, iters: int, device: str) -> tuple[float, float]:
    L.seed_everything(cfg.seed, verbose=False)
    dm = hydra.utils.instantiate(cfg.data)
    dm.setup("fit")
    model = hydra.utils.instantiate(cfg.model).to(device).train()
    groups = model.optimizer_groups()
    opts = {name: model._optimizer_factory(list(params)) for name, params in groups.items()}
    scheds = [model._scheduler_factory(o) for o in opts.values()] if model._scheduler_factory else []
    gens, diss = [model.gen_a, model.gen_b], [model.dis_a, model.dis_b]
    w = model.loss_weights
    times = []
    loader = iter(dm.train_dataloader())
    for _ in range(iters):
        batch = next(loader)
        real_A, real_B = batch["A"].to(device), batch["B"].to(device)
        fwd = {}
        if model.reuse_translations:
            fwd = model.forward_pass(real_A, real_B)
            fake_A, fake_B = fwd["fake_A"].detach(), fwd["fake_B"].detach()
        else:
            with torch.no_grad():
                fake_A, fake_B = model.cross_translations(real_A, real_B)
        _freeze(gens, False)
        loss_d = weighted_sum(model.discriminator_terms(real_A, real_B, fake_A, fake_B), w)
        opts["D"].zero_grad(set_to_none=True)
        loss_d.backward()
        opts["D"].step()
        _freeze(gens, True)
        _freeze(diss, False)
        out = fwd or model.forward_pass(real_A, real_B)
        loss_g = weighted_sum(model.all_generator_terms(real_A, real_B, out), w)
        opts["G"].zero_grad(set_to_none=True)
        loss_g.backward()
        opts["G"].step()
        _freeze(diss, True)
        for s in scheds:
            s.step()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter())
    return rates(times, warmup)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--iters", type=int, default=5, help="measured iterations")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "bench_munit_unit.md")
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/imtrans_bench_munit_unit"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    total = args.warmup + args.iters + 1  # +1: the first timestamp closes the first iteration
    rows = []
    for name in args.variants:
        cfg = config(
            VARIANTS[name],
            args.size,
            total,
            args.scratch / "".join(c if c.isalnum() else "_" for c in name),
            args.device,
        )
        start = time.perf_counter()
        fw = run_imtrans(cfg, args.warmup)
        bare = run_bare(cfg, args.warmup, total, args.device)
        rows.append((name, fw, bare))
        took = time.perf_counter() - start
        print(f"{name}: imtrans {fw} it/s, bare {bare} it/s (median, best); {took:.0f} s", flush=True)
    lines = [
        "# MUNIT / UNIT training speed: imtrans vs. a bare PyTorch loop",
        "",
        f"`python experiments/bench_munit_unit.py --size {args.size} --iters {args.iters} --warmup {args.warmup} "
        f"--threads {args.threads} --device {args.device}`",
        "",
        f"Official network sizes (MUNIT 46,594,716 and UNIT 38,823,308 parameters), {args.size} x {args.size} px, "
        f"batch 1, fp32, {environment(args.threads, args.device)}. Iterations per second over {args.iters} iterations after "
        f"{args.warmup} warm-up iterations (one iteration = D step + G step): the median iteration and the "
        "fastest one (the machine is shared, so slow iterations mostly measure other jobs).",
        "",
        "| variant | imtrans it/s median / best | bare loop it/s median / best | overhead (bare / imtrans), best |",
        "| --- | ---: | ---: | ---: |",
        *[
            f"| {n} | {fw[0]:.3f} / {fw[1]:.3f} | {bare[0]:.3f} / {bare[1]:.3f} | {bare[1] / fw[1]:.3f} |"
            for n, fw, bare in rows
        ],
        "",
    ]
    by = {n: (fw, bare) for n, fw, bare in rows}
    for m in ("MUNIT", "UNIT"):
        one, off = by.get(f"{m} (one pass)"), by.get(f"{m} (official passes)")
        if one and off:
            lines.append(
                f"- {m}: one translation pass per iteration is {one[0][1] / off[0][1]:.2f}x the speed of the "
                f"official two passes through imtrans ({one[1][1] / off[1][1]:.2f}x in the bare loop), best iterations."
            )
    write_report(args.out, lines)


if __name__ == "__main__":
    main()
