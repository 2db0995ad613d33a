"""One training iteration of every method: imtrans in fp32, bf16-mixed, channels_last, compiled
and their combination, against the official code's update step in the same process.

    OMP_NUM_THREADS=2 python experiments/bench_speed.py \\
        --official pytorch-CycleGAN-and-pix2pix=/path/to/checkout --official MUNIT=/path ... \\
        [--methods cyclegan,munit] [--size 128] [--batch 1] [--iters 3] [--variants fp32,bf16,best]

For each method (``experiments.official.ENTRIES``: its paper configuration, 128 px batch 1 on the
CPU, DRIT at 216 px) imtrans trains through ``imtrans.run.train`` (a Lightning trainer, the data
module, the config of ``python -m imtrans.run``) and after every imtrans iteration the official
update step runs on the same batch (``experiments/official/<method>.py``; the checkout named by
``--official NAME=PATH``, imported at run time). Iterations alternate A B A B ..., so a slow
spell of the machine slows both. One process per method (the official repositories' module
names collide); results are cached per method and variant under ``--work`` as JSON, so an
interrupted run continues and the report is rebuilt from whatever has been measured.

Writes ``experiments/results/bench_speed.md``: per method and variant the median seconds per
iteration and the ratio to the official fp32 step's median (lower is faster).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

if __package__ in (None, ""):  # run as a file: python experiments/bench_speed.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lightning as L
import torch

from experiments.benchlib import cpu_description, environment, write_report
from experiments.official import BY_NAME, ENTRIES, bench_overrides, build, first_batch
from imtrans.callbacks.speed import SpeedSwitches, always_eager_ids

REPO = Path(__file__).resolve().parents[1]
#: imtrans variants: Hydra overrides (the trainer's speed switches and precision)
VARIANTS = {
    "fp32": [],
    "fused": ["trainer.optimizer_impl=fused"],
    "channels_last": ["trainer.channels_last=true"],
    "compile": ["trainer.compile=true"],
    "fp32_best": ["trainer.optimizer_impl=fused", "trainer.channels_last=true", "trainer.compile=true"],
    "bf16": ["trainer.precision=bf16-mixed"],
    "bf16_compile": ["trainer.precision=bf16-mixed", "trainer.optimizer_impl=fused", "trainer.compile=true"],
    # inductor's layout optimisation off: convolutions stay NCHW inside the compiled graphs,
    # instead of weights and activations transposed to channels_last at every call (which
    # costs U-GAT-IT's discriminators, whose weights are normalised inside the graph)
    "bf16_compile_nchw": [
        "trainer.precision=bf16-mixed",
        "trainer.optimizer_impl=fused",
        "trainer.compile=true",
        "trainer.compile_options={layout_optimization:false}",
    ],
    "best_eager": [
        "trainer.precision=bf16-mixed",
        "trainer.optimizer_impl=fused",
        "trainer.channels_last=true",
    ],
    "best": [
        "trainer.precision=bf16-mixed",
        "trainer.optimizer_impl=fused",
        "trainer.channels_last=true",
        "trainer.compile=true",
    ],
}
#: the candidates for "best on this machine": compile (and channels_last with it) is faster on
#: some CPUs and slower on others (MUNIT on a 2-core AMD EPYC: bf16 0.56x, compiled 0.58x), so the
#: report picks the faster measured candidate per method and names it, rather than assuming one
BEST_CANDIDATES = ("best", "best_eager", "bf16_compile", "bf16_compile_nchw", "bf16")
#: eager iterations before timing: compiled variants compile at the end of iteration 1 and
#: run the compiled code from iteration 2, whose first call generates it
WARMUP = {"compile": 2, "fp32_best": 2, "bf16_compile": 2, "bf16_compile_nchw": 2, "best": 2}


class Interleaved(L.Callback):
    """Times each imtrans iteration, then runs and times the official step on the same batch."""

    def __init__(self, official, warmup: int, skip: int | None = None):
        self.official, self.warmup, self.skip = official, warmup, skip
        self.ours: list[float] = []
        self.theirs: list[float] = []
        self._seen = 0

    def _sync(self, module):
        if module.device.type == "cuda":
            torch.cuda.synchronize()

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self._sync(module)
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self._sync(module)
        seconds = time.perf_counter() - self._t0
        # DRIT's content-only iterations (2 of 3) are not the official step's update: only the
        # full updates are compared (the official adapter times a full update)
        full = getattr(module, "is_full_update", None)
        if (full is not None and not full(batch_idx)) or module.iteration == self.skip:
            return  # (the profiled iteration is not timed)
        self._seen += 1
        if self._seen > self.warmup:
            self.ours.append(seconds)
        if self.official is not None:
            official_batch = {k: v.contiguous() if torch.is_tensor(v) else v for k, v in batch.items()}
            t0 = time.perf_counter()
            self.official.step(official_batch)
            self._sync(module)
            if self._seen > 1:  # the official code's first step warms its caches too
                self.theirs.append(time.perf_counter() - t0)


def measure_one(args) -> None:
    """Child process: one method, the variants not cached yet."""
    from experiments.benchlib import run_config
    from imtrans.run import train

    load_before = os.getloadavg()[0]  # before this process adds its own load
    entry = BY_NAME[args.one]
    size = args.size or entry.size
    torch.set_num_threads(args.threads)
    work = Path(args.work) / entry.name
    work.mkdir(parents=True, exist_ok=True)
    batch = first_batch(entry, size, args.batch, work, args.device)
    checkout = official_checkout(entry, args.official)
    official = None
    if checkout is not None:
        official = build(entry, checkout, batch, size=size, device=args.device)
    full_every = 3 if entry.name == "drit" else 1  # DRIT: d_iter 3, one full update in 3
    for variant in args.variants.split(","):
        out = work / result_name(variant, size, args.batch, args.threads)
        if out.exists():
            continue
        warmup = WARMUP.get(variant, 1)
        # one more (full) iteration at the end, profiled and not timed (unless --no-profile)
        iters = (warmup + args.iters + (0 if args.no_profile else 1)) * full_every
        overrides = [
            *bench_overrides(entry, size, args.batch, work),
            *VARIANTS[variant],
            "data.num_workers=0",
            f"trainer={'gpu' if args.device == 'cuda' else 'cpu'}",
            "logger=none",
            "callbacks=none",
            "metrics=none",
            f"iters={iters}",
            "task=fit",
            "trainer.enable_model_summary=false",
            "+trainer.enable_progress_bar=false",
            "trainer.limit_val_batches=0",
        ]
        clock = Interleaved(official, warmup, skip=None if args.no_profile else iters)
        profiled = Profiled(iters if not args.no_profile else -1)  # at=-1: never
        torch._dynamo.reset()
        t0 = time.time()
        train(run_config(overrides, work / f"run_{variant}"), extra_callbacks=[clock, profiled])
        result = {
            "method": entry.name,
            "variant": variant,
            "size": size,
            "batch": args.batch,
            "ours": clock.ours,
            "official": clock.theirs,
            "official_checkout": str(checkout) if checkout else None,
            "official_notes": official.notes if official else None,
            "wall_s": round(time.time() - t0, 1),
            "threads": args.threads,
            "device": args.device,
            "load_before": load_before,
            "profile": profiled.summary,
        }
        out.write_text(json.dumps(result, indent=1))
        print(
            f"{entry.name} {variant}: ours {median(clock.ours):.3f} s, official {median(clock.theirs):.3f} s",
            flush=True,
        )
    out = work / result_name("official_profile", size, args.batch, args.threads)
    if official is not None and not args.no_profile and not out.exists():
        out.write_text(
            json.dumps(
                {
                    "method": entry.name,
                    "size": size,
                    "batch": args.batch,
                    "threads": args.threads,
                    **profile_official(official, batch),
                }
            )
        )


def profile_official(official, batch: dict) -> dict:
    """The official step's time by network, as ``Profiled`` measures imtrans's iteration: three
    steps to warm its caches (the first steps of a fresh process are slow: oneDNN primitives,
    first-touch memory), then one profiled step, on ``batch``. Official networks outside
    ``OfficialStep.networks`` (pix2pixHD's VGG loss) count as outside the networks."""
    holder = torch.nn.Module()
    for name, net in official.networks.items():
        holder.add_module(name, net)
    warmup = []
    for _ in range(3):
        t0 = time.perf_counter()
        official.step(batch)
        warmup.append(time.perf_counter() - t0)
    profiled = Profiled(at=1)
    holder.iteration = 0
    profiled.on_train_batch_start(SimpleNamespace(callbacks=[]), holder, batch, 0)
    official.step(batch)
    holder.iteration = 1
    profiled.on_train_batch_end(None, holder, None, batch, 0)
    return {**profiled.summary, "warmup_s": warmup}


class Profiled(L.Callback):
    """torch.profiler around one training iteration (the last one of the run).

    Two views of it: the self CPU time of every op, grouped into convolutions forward /
    backward, normalisations and the rest (with the top ops); and the time by network and
    by forward / backward. For the second, each outermost parameterised module that the
    iteration calls (found as ``trainer.compile`` finds them) runs inside a
    ``record_function`` range named after its top-level network (``gen_a`` for
    ``gen_a.enc_style``). A forward op inside such a range carries the autograd sequence
    number that its backward node has too, so every ``evaluate_function`` of the backward
    pass is charged to the network whose forward created it (a frozen network's backward,
    the input gradients through D in G's update, counts as that network's). Gradient
    accumulation goes with the node before it; backward nodes of ops outside the networks
    (losses) and the optimizer steps are shown apart.
    """

    def __init__(self, at: int):
        self.at, self.summary = at, None
        self._hooks: list = []
        self._unwrap: list = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if module.iteration + 1 == self.at:
            self._hook_networks(trainer, module)
            self._prof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
            self._prof.__enter__()
            self._t0 = time.perf_counter()

    def _hook_networks(self, trainer, module) -> None:
        containers = (torch.nn.ModuleDict, torch.nn.ModuleList, torch.nn.Sequential)
        skip = always_eager_ids(module)
        open_range: list = []  # [(module, record_function)] of the outermost call in progress

        def network(name: str) -> str:
            parts = name.split(".")
            top = getattr(module, parts[0])
            return ".".join(parts[:2]) if isinstance(top, containers) and len(parts) > 1 else parts[0]

        switches = next((c for c in trainer.callbacks if isinstance(c, SpeedSwitches) and c.compile), None)
        if switches is not None:
            # compiled networks: a hook added now would change what their compiled code
            # guards on (and recompile it inside the profile), so their call is wrapped instead
            for name in switches.compiled:
                m = module.get_submodule(name)
                m._compiled_call_impl = _in_range(f"net::{network(name)}", m._compiled_call_impl)
                self._unwrap.append(m)
            named = [(name, module.get_submodule(name)) for name in switches.eager]
        else:
            named = list(module.named_modules())

        def pre(name, m):
            def hook(_m, _args):
                if not open_range and next(m.parameters(), None) is not None:
                    rf = torch.profiler.record_function(f"net::{network(name)}")
                    rf.__enter__()
                    open_range.append((m, rf))

            return hook

        def post(m, _args, _out):
            if open_range and open_range[0][0] is m:
                open_range.pop()[1].__exit__(None, None, None)

        for name, m in named:
            if m is not module and id(m) not in skip:
                self._hooks += [
                    m.register_forward_pre_hook(pre(name, m)),
                    m.register_forward_hook(post, always_call=True),
                ]

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if module.iteration != self.at:
            return
        wall = time.perf_counter() - self._t0
        self._prof.__exit__(None, None, None)
        for h in self._hooks:
            h.remove()
        for m in self._unwrap:
            m._compiled_call_impl = m._compiled_call_impl.__wrapped__
        ops = {e.key: e.self_cpu_time_total / 1e6 for e in self._prof.key_averages()}
        total = sum(ops.values())

        def group(name: str) -> str:
            n = name.lower()
            if "conv" in n:
                return "conv backward" if "backward" in n else "conv forward"
            if "norm" in n or "var_mean" in n:
                return "norm backward" if "backward" in n else "norm forward"
            if "adam" in n or "_foreach" in n:
                return "optimizer"
            return "other"

        groups: dict[str, float] = {}
        for name, t in ops.items():
            groups[group(name)] = groups.get(group(name), 0.0) + t
        top = sorted(ops.items(), key=lambda kv: -kv[1])[:8]
        self.summary = {
            "total_s": total,
            "groups": groups,
            "top": top,
            "ops": ops,  # every op's self seconds: to diff against the official step's
            **by_network(self._prof.events(), wall),
        }


def by_network(events, wall: float) -> dict:
    """Seconds of forward and backward per network (see ``Profiled``), of the backward of the
    ops outside them, of the optimizer steps, and the iteration's wall time."""

    def range_of(e) -> str | None:
        while e is not None:
            if e.name.startswith("net::"):
                return e.name[5:]
            e = e.cpu_parent
        return None

    forward: dict[str, float] = {}
    owner: dict[int, str] = {}  # autograd sequence number -> network
    optimizer = 0.0
    for e in events:
        if e.name.startswith("net::") and range_of(e.cpu_parent) is None:
            forward[e.name[5:]] = forward.get(e.name[5:], 0.0) + e.cpu_time_total / 1e6
        elif e.sequence_nr >= 0 and (net := range_of(e)) is not None:
            owner[e.sequence_nr] = net
        elif e.name.startswith("Optimizer.step#") and e.cpu_parent is None:
            optimizer += e.cpu_time_total / 1e6
    backward: dict[str, float] = {}
    last = "outside the networks"
    nodes = sorted(
        (e for e in events if e.name.startswith("autograd::engine::evaluate_function")),
        key=lambda e: e.time_range.start,
    )
    for e in nodes:
        if "AccumulateGrad" not in e.name:
            last = owner.get(e.sequence_nr, "outside the networks")
        backward[last] = backward.get(last, 0.0) + e.cpu_time_total / 1e6
    return {"wall_s": wall, "forward_s": forward, "backward_s": backward, "optimizer_s": optimizer}


def _in_range(name: str, call):
    @functools.wraps(call)
    def wrapped(*args, **kwargs):
        with torch.profiler.record_function(name):
            return call(*args, **kwargs)

    return wrapped


def result_name(variant: str, size: int, batch: int, threads: int) -> str:
    """The cache file of one method's variant (or ``official_profile``) under ``--work/<method>/``."""
    return f"{variant}_{size}_{batch}_t{threads}.json"


def official_checkout(entry, given: list[str]) -> Path | None:
    """The checkout for ``entry`` among ``--official NAME=PATH`` (NAME: the repository name of
    ``ENTRIES`` or the method's name)."""
    for item in given:
        name, _, path = item.partition("=")
        if name in (entry.repo, entry.name):
            return Path(path)
    return None


def child_args(argv: list[str]) -> list[str]:
    """The command line without ``--methods`` / ``--variants`` (the child gets one of each)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in ("--methods", "--variants"):
            skip = True
            continue
        if a.startswith(("--methods=", "--variants=")):
            continue
        out.append(a)
    return out


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def ratio(r: dict) -> float:
    """imtrans's median over the median of the official steps interleaved with it."""
    return median(r["ours"]) / median(r["official"]) if r["official"] else float("nan")


def best_cell(by: dict, method: str) -> str:
    """The fastest measured candidate of ``BEST_CANDIDATES`` for ``method``, named: by its ratio
    to the interleaved official steps, or by its seconds when run without ``--official``."""
    rows = [(c, by[(method, c)]) for c in BEST_CANDIDATES if (method, c) in by]
    if not rows:
        return "-"
    if all(r["official"] for _, r in rows):
        value, c = min((ratio(r), c) for c, r in rows)
        return f"{value:.2f}x `{c}`"
    value, c = min((median(r["ours"]), c) for c, r in rows)
    return f"{value:.2f} s `{c}`"


def report(args, results: list[dict], official_profiles: dict[str, dict]) -> list[str]:
    by = {(r["method"], r["variant"]): r for r in results}
    methods = [e.name for e in ENTRIES if any(m == e.name for m, _ in by)]
    variants = [v for v in VARIANTS if any(v == vv for _, vv in by)]
    best_here = any(v in BEST_CANDIDATES for v in variants)
    lines = [
        "# One training iteration: imtrans against the official code, same process, same batch",
        "",
        "`OMP_NUM_THREADS={} python experiments/bench_speed.py {}`".format(
            args.threads, " ".join(a for a in sys.argv[1:] if a != "--report-only")
        ),
        "",
        f"Machine: {cpu_description()}. 1-min load average at the start of each variant's process: "
        + (
            f"{min(loads):.1f} to {max(loads):.1f} (the benchmark alone keeps it near its thread count)."
            if (loads := [r["load_before"] for r in results if "load_before" in r])
            else "not recorded."
        ),
        "",
        f"{environment(args.threads, args.device)}. Batch {args.batch}; sizes per method below (the paper "
        "configuration at 128 px on the CPU, DRIT and DRIT++ at 216 px). Each cell: the median seconds of one "
        "training iteration over the timed iterations, and in brackets its ratio to the median of the official "
        "fp32 update steps that ran interleaved with it, after every imtrans iteration on the same batch "
        "(A B A B ...). Each variant ran in a fresh process. The official column pools the official steps of "
        "all variants. Lower is faster; the targets (issue 30) are `fp32` (the defaults) <= 1.0x and the best "
        "switches <= 0.4x. `fp32_best` = fused Adam + channels_last + compile, `bf16_compile` = bf16-mixed + fused "
        "Adam + compile, `bf16_compile_nchw` = the same with inductor's layout optimisation off, `best_eager` = bf16-mixed + fused Adam + channels_last, `best` = the same with compile. "
        "`best here` is the fastest of "
        + ", ".join(f"`{c}`" for c in BEST_CANDIDATES)
        + " measured on this machine, named: where compile makes an iteration slower on this CPU it is not "
        "picked.",
        "",
        "| method | px | official fp32 s | "
        + " | ".join(variants)
        + (" | best here |" if best_here else " |"),
        "| --- | ---: | ---: | "
        + " | ".join("---:" for _ in variants)
        + (" | ---: |" if best_here else " |"),
    ]
    for m in methods:
        rows = [by[(m, v)] for v in variants if (m, v) in by]
        official = [t for r in rows for t in r["official"]]
        ref = median(official)
        cells = []
        for v in variants:
            r = by.get((m, v))
            if r is None:
                cells.append("-")
                continue
            ours = median(r["ours"])
            # the ratio to the official steps interleaved with this variant's iterations: the
            # machine's speed drifts between variants, within one run both sides see it
            cells.append(
                f"{ours:.2f} ({ours / median(r['official']):.2f}x)" if r["official"] else f"{ours:.2f}"
            )
        size = rows[0]["size"]
        if best_here:
            cells.append(best_cell(by, m))
        lines.append(f"| {m} | {size} | {ref:.2f} (n={len(official)}) | " + " | ".join(cells) + " |")
    profiled = [
        (m, v, by[(m, v)]["profile"])
        for m in methods
        for v in ("fp32", "fp32_best", "bf16", "bf16_compile", "bf16_compile_nchw", "best_eager", "best")
        if by.get((m, v), {}).get("profile")
    ]
    if profiled:
        groups = ["conv forward", "conv backward", "norm forward", "norm backward", "optimizer", "other"]
        lines += [
            "",
            "Where imtrans's iteration spends its time: torch.profiler over one more iteration after the timed ones "
            "(self CPU time of each op, grouped by name; `other` is elementwise ops, copies, losses, the framework):",
            "",
            "| method | variant | profiled s | " + " | ".join(groups) + " | top ops (self s) |",
            "| --- | --- | ---: | " + " | ".join("---:" for _ in groups) + " | --- |",
        ]
        for m, v, prof in profiled:
            shares = [f"{100 * prof['groups'].get(g, 0.0) / prof['total_s']:.0f} %" for g in groups]
            top = ", ".join(f"`{name}` {t:.2f}" for name, t in prof["top"][:4])
            lines.append(f"| {m} | {v} | {prof['total_s']:.2f} | " + " | ".join(shares) + f" | {top} |")
    by_net = [(m, v, prof) for m, v, prof in profiled if "forward_s" in prof]
    by_net = [
        row
        for m in methods
        for row in ([(m, "official fp32", official_profiles[m])] if m in official_profiles else [])
        + [r for r in by_net if r[0] == m]
    ]
    if by_net:
        lines += [
            "",
            "The same iterations by network: seconds of forward and backward (`fwd/bwd`) of each top-level "
            "network, the backward of the ops outside the networks (losses), the optimizer steps, and what is left "
            "of the iteration's wall time under the profiler (the framework, the loss forwards, data moves). A "
            "frozen network's backward (the input gradients through D in G's update) counts as its own. The "
            "`official fp32` rows profile one official step the same way, on the same batch, with the official "
            "networks named as in the adapter.",
            "",
            "| method | variant | wall s | forward | backward | optimizer | rest | by network (fwd/bwd s) |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for m, v, prof in by_net:
            fwd, bwd = prof["forward_s"], dict(prof["backward_s"])
            outside = bwd.pop("outside the networks", 0.0)
            wall = prof["wall_s"]
            f, b, o = sum(fwd.values()), sum(bwd.values()) + outside, prof["optimizer_s"]
            nets = sorted(set(fwd) | set(bwd), key=lambda n: -(fwd.get(n, 0.0) + bwd.get(n, 0.0)))
            per = ", ".join(f"{n} {fwd.get(n, 0.0):.2f}/{bwd.get(n, 0.0):.2f}" for n in nets)
            per += f", losses -/{outside:.2f}"

            shares = " | ".join(f"{t:.2f} ({100 * t / wall:.0f} %)" for t in (f, b, o, wall - f - b - o))
            lines.append(f"| {m} | {v} | {wall:.2f} | {shares} | {per} |")
    lines += ["", "Official checkouts and what each adapter ran:", ""]
    for m in methods:
        r = next(by[(m, v)] for v in variants if (m, v) in by)
        if r["official_checkout"]:
            lines.append(f"- **{m}**: `{r['official_checkout']}`: {r['official_notes']}")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", default=",".join(e.name for e in ENTRIES))
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--official", action="append", default=[], metavar="NAME=PATH")
    p.add_argument("--size", type=int, default=None, help="image size (default: each method's paper size)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--iters", type=int, default=3, help="timed iterations per variant")
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    p.add_argument("--device", default="cpu")
    p.add_argument("--work", default="/tmp/imtrans_bench_speed")
    p.add_argument("--out", default=str(REPO / "experiments" / "results" / "bench_speed.md"))
    p.add_argument("--report-only", action="store_true", help="rebuild the report from the cached results")
    p.add_argument(
        "--no-profile", action="store_true", help="time only: no profiled iteration, no official profile"
    )
    p.add_argument("--one", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        measure_one(args)
        return
    unknown = [m for m in args.methods.split(",") if m not in BY_NAME]
    bad_variants = [v for v in args.variants.split(",") if v not in VARIANTS]
    if unknown or bad_variants:
        raise SystemExit(f"unknown methods {unknown} or variants {bad_variants}; methods: {list(BY_NAME)}")
    # a fresh process per method and variant: a variant that ran before (compiled code, oneDNN
    # primitive caches, the allocator's pools) must not change the next one's timings, nor the
    # official step's (in one process per method the official DRIT step got 10-35 % slower after
    # the compiled variant)
    for m in [] if args.report_only else args.methods.split(","):
        size = args.size or BY_NAME[m].size
        for v in args.variants.split(","):
            if (Path(args.work) / m / result_name(v, size, args.batch, args.threads)).exists():
                continue
            cmd = [sys.executable, __file__, *child_args(sys.argv[1:]), "--one", m, "--variants", v]
            done = subprocess.run(cmd, cwd=REPO)
            if done.returncode:
                print(
                    f"bench_speed: {m} {v} failed (exit {done.returncode}); the report keeps what was measured"
                )
    results = [json.loads(f.read_text()) for f in sorted(Path(args.work).glob("*/*.json"))]
    results = [
        r
        for r in results
        if r["batch"] == args.batch
        and r.get("threads") == args.threads
        and r["method"] in args.methods.split(",")
    ]
    official = {r["method"]: r for r in results if "variant" not in r}  # official_profile_*.json
    write_report(Path(args.out), report(args, [r for r in results if "variant" in r], official))


if __name__ == "__main__":
    main()
