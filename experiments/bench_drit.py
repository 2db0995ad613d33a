"""Training speed of DRIT++ (two domains): imtrans against the same modules in a bare PyTorch loop.

    OMP_NUM_THREADS=2 python experiments/bench_drit.py --size 216 --cycles 2 --warmup 1

Official networks (concat=1, mode seeking on: 65,039,315 parameters), batch 2 (sample 0
encoded, sample 1 real for D2), procedural unpaired shapes at ``--size`` px. With d_iter 3 a
cycle is two content-only iterations (content D step on a gradient-free content forward) and one
full update (forward; disA, disA2, disB, disB2, disContent steps; the two-step E/G update).
The bare loop does exactly what ``DRIT.training_step`` does, with plain ``backward`` and
``requires_grad`` toggling, and logs nothing. Each kind of iteration is timed separately, from
the start to the end of the training step (data loading excluded in both).
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

from experiments.benchlib import bench_config, environment, write_report
from imtrans.losses import weighted_sum
from imtrans.run import train


class KindClock(L.Callback):
    """Seconds per training step, keyed by full / content-only."""

    def __init__(self):
        self.times: dict[str, list[float]] = {"full": [], "content": []}

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if module.device.type == "cuda":
            torch.cuda.synchronize()
        kind = "full" if module.is_full_update(batch_idx) else "content"
        self.times[kind].append(time.perf_counter() - self._t0)


def _freeze_except(model, names):
    keep = {id(p) for n in names for p in getattr(model, n).parameters()}
    frozen = [p for p in model.parameters() if p.requires_grad and id(p) not in keep]
    for p in frozen:
        p.requires_grad_(False)
    return frozen


def _step(model, opts, names, loss_fn, clip=None):
    frozen = _freeze_except(model, names)
    loss = loss_fn()
    for n in names:
        opts[n].zero_grad(set_to_none=True)
    loss.backward()
    for n in names:
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(getattr(model, n).parameters(), clip)
        opts[n].step()
    for p in frozen:
        p.requires_grad_(True)


def _full_update(model, opts, w, batch) -> None:
    """What ``DRIT.training_step`` does on a full update, without Lightning."""
    f = model.forward_pass(batch)

    def d2(disc, real, key):
        return model.image_d_loss(disc, real, f[key]) + model.image_d_loss(disc, real, f[key + "2"])

    _step(model, opts, ["disA"], lambda: w["dis_a"] * model.image_d_loss(model.disA, f["A_enc"], f["fake_A"]))
    _step(model, opts, ["disA2"], lambda: w["dis_a2"] * d2(model.disA2, f["A_rand"], "fake_A_rand"))
    _step(model, opts, ["disB"], lambda: w["dis_b"] * model.image_d_loss(model.disB, f["B_enc"], f["fake_B"]))
    _step(model, opts, ["disB2"], lambda: w["dis_b2"] * d2(model.disB2, f["B_rand"], "fake_B_rand"))
    _step(
        model,
        opts,
        ["disContent"],
        lambda: w["dis_content"] * model.content_d_loss(f["c_a"].detach(), f["c_b"].detach()),
        clip=5.0,
    )
    main, second = ["enc_c", "enc_a", "gen"], ["enc_c", "gen"]
    frozen = _freeze_except(model, main)
    loss1 = weighted_sum(model.main_terms(f), w)
    loss2 = weighted_sum(model.second_terms(f), w)
    params2 = [p for n in second for p in getattr(model, n).parameters()]
    g2 = torch.autograd.grad(loss2, params2, retain_graph=True, allow_unused=True)
    for n in main:
        opts[n].zero_grad(set_to_none=True)
    loss1.backward()
    for n in main:
        opts[n].step()
    for p, g in zip(params2, g2):
        p.grad = torch.zeros_like(p) if g is None else g
    for n in second:
        opts[n].step()
    for p in frozen:
        p.requires_grad_(True)


def run_bare(cfg, iters: int, device: str) -> dict[str, list[float]]:
    L.seed_everything(cfg.seed, verbose=False)
    dm = hydra.utils.instantiate(cfg.data)
    dm.setup("fit")
    model = hydra.utils.instantiate(cfg.model).to(device).train()
    model._trainer = None
    groups = model.optimizer_groups()
    opts = {
        n: model._optimizer_factory(list(ps), **model._optimizer_overrides.get(n, {}))
        for n, ps in groups.items()
    }
    w = model.loss_weights
    times: dict[str, list[float]] = {"full": [], "content": []}
    loader = iter(dm.train_dataloader())
    for idx in range(iters):
        b = next(loader)
        batch = {"A": b["A"].to(device), "B": b["B"].to(device)}
        t0 = time.perf_counter()
        if model.is_full_update(idx):
            _full_update(model, opts, w, batch)
            kind = "full"
        else:
            _step(model, opts, ["disContent"], lambda: weighted_sum(model.content_terms(batch), w), clip=5.0)  # noqa: B023
            kind = "content"
        if device == "cuda":
            torch.cuda.synchronize()
        times[kind].append(time.perf_counter() - t0)
    return times


def _summary(ts: list[float], skip: int) -> tuple[float, float]:
    ts = sorted(ts[skip:])
    return ts[len(ts) // 2], ts[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=216)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--cycles", type=int, default=2, help="measured cycles (d_iter iterations each)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up cycles")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "bench_drit.md")
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/imtrans_bench_drit"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    overrides = ["model=drit", "data=shapes", f"data.size={args.size}", f"data.batch_size={args.batch}"]
    cfg = bench_config(overrides, 1, args.scratch, args.device)
    d_iter = int(cfg.model.d_iter)
    total = (args.warmup + args.cycles) * d_iter
    cfg = bench_config(overrides, total, args.scratch, args.device)
    clock = KindClock()
    train(cfg, extra_callbacks=[clock])
    bare = run_bare(cfg, total, args.device)
    params = sum(p.numel() for p in hydra.utils.instantiate(cfg.model).parameters())
    rows = []
    for kind, per_cycle in (("full", 1), ("content", d_iter - 1)):
        fw_med, fw_best = _summary(clock.times[kind], args.warmup * per_cycle)
        b_med, b_best = _summary(bare[kind], args.warmup * per_cycle)
        rows.append(
            f"| {kind} | {fw_med:.3f} | {fw_best:.3f} | {b_med:.3f} | {b_best:.3f} | {fw_med / b_med:.3f} | {fw_best / b_best:.3f} |"
        )
    lines = [
        "# DRIT++ training speed: imtrans vs. a bare PyTorch loop",
        "",
        f"`python experiments/bench_drit.py --size {args.size} --batch {args.batch} --cycles {args.cycles} "
        f"--warmup {args.warmup} --threads {args.threads} --device {args.device}`",
        "",
        f"{params:,} parameters (official concat=1 networks, mode seeking on), {args.size} px, batch {args.batch}, "
        f"fp32, {environment(args.threads, args.device)}. d_iter {d_iter}: per cycle {d_iter - 1} content-only "
        f"iterations and 1 full update (4 image D steps, content D step, two-step E/G update). Seconds per "
        f"iteration (training step only), median and fastest of {args.cycles} cycles after {args.warmup} warm-up "
        "cycle(s). Overhead = imtrans time / bare time.",
        "",
        "| iteration | imtrans median s | imtrans best s | bare median s | bare best s | overhead median | overhead best |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        *rows,
        "",
    ]
    write_report(args.out, lines)


if __name__ == "__main__":
    main()
