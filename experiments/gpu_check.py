"""The GPU checks of issue 30 on one CUDA machine, within a time budget (default 8 minutes).

    python experiments/gpu_check.py [--budget 480] [--official NAME=PATH ...] [--dry-run]
    make gpu-check GPU_CHECK_ARGS="--official MUNIT=/path ..."

Steps, in this order, each one subprocess (or several at once) with its own time limit:

1. ``methods``: every method of the tests (their tiny configurations, 32-64 px) trains a few
   iterations on the GPU with ``trainer.precision=bf16-mixed`` and then ``16-mixed`` (one
   gradient scaler per update), both with ``trainer.compile=true`` and
   ``trainer.channels_last=true``; a method passes when both runs end with finite losses.
2. ``ddp``: one method (the tiny CycleGAN) through ``python -m imtrans.run trainer=ddp`` on every
   visible GPU; with one GPU the DDP strategy runs on that one (DDP proper needs >= 2 GPUs).
3. ``speed``: ``bench_speed.py --device cuda --size 256`` for MUNIT, CycleGAN, pix2pixHD and
   StarGAN v2, variants fp32 and bf16, against the official code where ``--official`` names the
   checkouts (as bench_speed takes them; without them imtrans alone, no ratios).
4. ``memory``: ``bench_memory.py --device cuda`` at 256 and 512 px (every method, fp32 and
   bf16-mixed, with and without activation checkpointing), ``--memory-jobs`` measurements at once.
5. ``speed_compiled``: bench_speed's ``best`` variant (bf16 + fused Adam + channels_last +
   compile) for the same methods, with what is left of the budget.

Each step ends by a deadline at its share of the budget (time a step leaves unused goes to the
next); a step that cannot start with at least its minimum time left is skipped, and the report
says so. The benchmarks cache each measurement: one cut short by its deadline keeps what it
measured (its report is rebuilt from the cache), and a second run continues it.

Writes ``experiments/results/gpu_check.md`` (``--out``): the environment (GPUs, memory, driver,
torch, CUDA, cuDNN), each step's status, seconds and, on failure, the tail of its output, then
the benchmarks' tables (also in ``bench_speed_cuda.md`` and ``bench_memory_cuda.md``). Without a
CUDA device it exits 2 with one line, unless ``--dry-run``, which prints the plan.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import platform
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "experiments" / "results"
#: the methods of step 1 (tests/helpers.py METHODS; listed here so that the plan needs no import)
METHODS = (
    "cyclegan",
    "pix2pix",
    "bicyclegan",
    "munit",
    "unit",
    "drit",
    "drit_multi",
    "pix2pixhd",
    "ugatit",
    "cut",
    "stargan_v2",
    "spade",
)
PRECISIONS = ("bf16-mixed", "16-mixed")
STEPS = ("methods", "ddp", "speed", "memory", "speed_compiled")
SPEED_METHODS = "munit,cyclegan,pix2pixhd,stargan_v2"
#: iterations of each run of step 1 (DRIT's first full update is its third iteration, the
#: compiled networks run from the iteration after the one that first called them)
METHOD_ITERS = 6
DDP_ITERS = 4
#: seconds a step's processes get to end after SIGTERM before SIGKILL
GRACE_S = 10
#: seconds kept for rebuilding a benchmark's report after its deadline
REPORT_S = 30
#: where the last step's deadline lies (fraction of the budget): the rest is for the report
FINAL = 0.97


@dataclasses.dataclass
class Step:
    """One check: its commands (run at once, ``parallel`` at a time) and its time."""

    name: str
    title: str
    commands: list[list[str]]
    #: its share of the budget; its deadline lies at the sum of the shares of the steps up to
    #: it (``until``, a fraction of the budget, set by ``plan``)
    share: float
    #: skipped when less than this is left before its deadline
    min_s: float
    parallel: int = 1
    note: str = ""
    #: a benchmark's Markdown report, embedded in gpu_check.md
    report_file: Path | None = None
    #: rebuilds ``report_file`` from the benchmark's cache when the step ran out of time
    rebuild: list[str] | None = None
    until: float = 1.0


@dataclasses.dataclass
class Result:
    step: Step
    status: str  # pass | fail | timeout | skipped
    seconds: float = 0.0
    reason: str = ""
    tail: list[str] = dataclasses.field(default_factory=list)
    #: extra report lines (step 1's table, a benchmark's report)
    details: list[str] = dataclasses.field(default_factory=list)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="gpu_check.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--budget", type=float, default=480, help="seconds for all steps together (default 480)")
    p.add_argument("--official", action="append", default=[], metavar="NAME=PATH", help="as bench_speed.py")
    p.add_argument("--methods", default=",".join(METHODS), help="methods of step 1 (comma-separated)")
    p.add_argument("--jobs", type=int, default=None, help="step 1 runs at once (default: CPU cores / 4, 1-4)")
    p.add_argument("--memory-jobs", type=int, default=6, help="bench_memory measurements at once")
    p.add_argument("--work", default="/tmp/imtrans_gpu_check", help="scratch folder (runs, benchmark caches)")
    p.add_argument("--out", default=str(RESULTS / "gpu_check.md"))
    p.add_argument(
        "--steps",
        default=",".join(STEPS),
        help="the steps to run, comma-separated (a second run: the benchmarks continue from their caches)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the plan (steps, commands, time) and exit")
    p.add_argument("--one-method", help=argparse.SUPPRESS)  # child of step 1
    p.add_argument("--one-ddp", type=int, help=argparse.SUPPRESS)  # child of step 2: the GPU count
    args = p.parse_args(argv)
    unknown = [m for m in args.methods.split(",") if m not in METHODS]
    if unknown:
        p.error(f"--methods={args.methods}: unknown {unknown}; choose from {','.join(METHODS)}")
    bad_steps = [s for s in args.steps.split(",") if s not in STEPS]
    if bad_steps or not args.steps:
        p.error(f"--steps={args.steps}: unknown {bad_steps or 'empty'}; choose from {','.join(STEPS)}")
    if args.budget <= 0:
        p.error(f"--budget={args.budget:g}: expected seconds > 0")
    bad = [o for o in args.official if "=" not in o]
    if bad:
        p.error(f"--official={bad[0]}: expected NAME=PATH (NAME: the repository or method name)")
    if args.jobs is None:
        args.jobs = max(1, min(4, (os.cpu_count() or 4) // 4))
    return args


# ---------------------------------------------------------------------------- the plan


def plan(args: argparse.Namespace, gpus: int) -> list[Step]:
    """The steps for a machine with ``gpus`` CUDA devices."""
    py = sys.executable
    me = str(Path(__file__).resolve())
    work = Path(args.work)
    official = [f"--official={o}" for o in args.official]
    speed_out = RESULTS / "bench_speed_cuda.md"
    speed = [
        py, str(REPO / "experiments" / "bench_speed.py"), "--device=cuda", "--size=256",
        f"--methods={SPEED_METHODS}", "--iters=3", f"--work={work / 'bench_speed'}", f"--out={speed_out}",
        *official,
    ]  # fmt: skip
    memory_out = RESULTS / "bench_memory_cuda.md"
    memory = [
        py, str(REPO / "experiments" / "bench_memory.py"), "--device=cuda", "--sizes=256,512",
        f"--jobs={args.memory_jobs}", "--timeout=120", f"--work={work / 'bench_memory'}", f"--out={memory_out}",
    ]  # fmt: skip
    no_official = (
        ""
        if args.official
        else "No --official checkouts given: imtrans's variants only, no ratios to the official code."
    )
    ddp_note = (
        f"DDP over {gpus} GPUs."
        if gpus >= 2
        else f"DDP needs >= 2 GPUs and {gpus} is visible: the ddp strategy runs on one GPU (start-up, "
        "wrapping and the find-unused-parameters path, no gradient all-reduce between ranks)."
    )
    steps = [
        Step(
            "methods",
            "every method, a few iterations, bf16-mixed and 16-mixed, compile + channels_last",
            [[py, me, f"--one-method={m}", f"--work={work}"] for m in args.methods.split(",")],
            share=0.29,
            min_s=60,
            parallel=args.jobs,
            note=f"The tests' tiny configurations, {METHOD_ITERS} iterations per run, at most {args.jobs} "
            "methods at once.",
        ),
        Step(
            "ddp",
            f"DDP (trainer=ddp, devices={max(gpus, 1)}), tiny CycleGAN",
            [[py, me, f"--one-ddp={max(gpus, 1)}", f"--work={work}"]],
            share=0.08,
            min_s=30,
            note=ddp_note,
        ),
        Step(
            "speed",
            f"bench_speed at 256 px, fp32 and bf16: {SPEED_METHODS}",
            [[*speed, "--variants=fp32,bf16"]],
            share=0.16,
            min_s=45,
            note=no_official,
            report_file=speed_out,
            rebuild=[*speed, "--variants=fp32,bf16", "--report-only"],
        ),
        Step(
            "memory",
            "bench_memory at 256 and 512 px (fp32, bf16-mixed, activation checkpointing off/on)",
            [memory],
            share=0.38,
            min_s=45,
            note="Measurements cut short by the deadline are left out of the table (rerun to continue).",
            report_file=memory_out,
            rebuild=[*memory, "--report-only"],
        ),
        Step(
            "speed_compiled",
            f"bench_speed at 256 px, variant best (bf16 + fused + channels_last + compile): {SPEED_METHODS}",
            [[*speed, "--variants=best"]],
            share=0.09,
            min_s=40,
            note=f"{no_official} The report holds every variant measured (fp32 and bf16 from the speed step).".strip(),
            report_file=speed_out,
            rebuild=[*speed, "--variants=fp32,bf16,best", "--report-only"],
        ),
    ]
    steps = [s for s in steps if s.name in args.steps.split(",")]
    total, done = sum(s.share for s in steps), 0.0
    for s in steps:  # the last deadline at FINAL, the rest of the budget is the report's
        done += s.share
        s.until = FINAL * done / total
    return steps


def print_plan(steps: list[Step], budget: float, gpus: int, out=None) -> None:
    out = out or sys.stdout
    print(f"gpu_check plan: {len(steps)} steps in {budget:g} s, {gpus} CUDA device(s) visible", file=out)
    start = 0.0
    for i, s in enumerate(steps, 1):
        end = s.until * budget
        print(
            f"{i}. {s.name}: {s.title}; deadline at {end:.0f} s ({end - start:.0f} s if the steps before use "
            f"all theirs), skipped with less than {s.min_s:g} s left"
            + (f", {s.parallel} at once" if s.parallel > 1 else ""),
            file=out,
        )
        if s.note:
            print(f"   {s.note}", file=out)
        for cmd in s.commands:
            print(f"   $ {shlex.join(cmd)}", file=out)
        start = end


# ---------------------------------------------------------------------------- running


def run_command(cmd: list[str], timeout: float) -> tuple[int | None, str, float]:
    """``cmd`` in its own process group, output captured; ``(exit code or None when it ran out
    of time, output, seconds)``. Out of time: SIGTERM to the group (the benchmarks stop their
    own measurement processes), SIGKILL after ``GRACE_S``."""
    from experiments.subprocs import start_in_group  # (main put the repository on sys.path)

    t0 = time.time()
    proc = start_in_group(cmd, WANDB_MODE="disabled")
    try:
        out, _ = proc.communicate(timeout=max(1.0, timeout))
        return proc.returncode, out, time.time() - t0
    except subprocess.TimeoutExpired:
        for sig, wait in ((signal.SIGTERM, GRACE_S), (signal.SIGKILL, None)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                out, _ = proc.communicate(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        else:
            out = ""
        if proc.poll() is None:
            out, _ = proc.communicate()
        return None, out or "", time.time() - t0


Runner = Callable[[list[str], float], tuple]


def run_plan(
    steps: list[Step],
    budget: float,
    runner: Runner = run_command,
    clock: Callable[[], float] = time.monotonic,
    log=print,
    start: float | None = None,
) -> list[Result]:
    """Run ``steps`` in order within ``budget`` seconds from ``start`` (default: now; see the
    module docstring). ``runner(cmd, timeout)`` runs one command: ``(exit code or None when out
    of time, output, seconds)``."""
    t0 = clock() if start is None else start
    results = []
    for step in steps:
        deadline = t0 + step.until * budget
        left = deadline - clock()
        if left < step.min_s:
            total_left = max(0.0, t0 + budget - clock())
            reason = (
                f"needs at least {step.min_s:g} s and {max(left, 0):.0f} s were left before its deadline "
                f"({total_left:.0f} s of the {budget:g} s budget)"
            )
            log(f"gpu_check: {step.name}: skipped: {reason}")
            results.append(Result(step, "skipped", reason=reason))
            continue
        log(f"gpu_check: {step.name}: {step.title} ({left:.0f} s)")
        start = clock()

        def one(cmd, deadline=deadline):
            return cmd, runner(cmd, deadline - clock())

        with ThreadPoolExecutor(max(1, step.parallel)) as pool:
            outcomes = list(pool.map(one, step.commands))
        timed_out = [cmd for cmd, (rc, _, _) in outcomes if rc is None]
        failed = [(cmd, rc, out) for cmd, (rc, out, _) in outcomes if rc not in (0, None)]
        status = "fail" if failed else "timeout" if timed_out else "pass"
        result = Result(step, status, seconds=clock() - start)
        for cmd, rc, out in failed:
            result.tail += [f"$ {shlex.join(cmd)}  (exit {rc})", *_tail(out)]
        for cmd, (rc, out, _) in outcomes:
            if rc is None:
                result.tail += [f"$ {shlex.join(cmd)}  (stopped at the deadline)", *_tail(out, 6)]
        if timed_out and step.rebuild is not None:
            left = t0 + budget - clock()
            if left > 5:
                runner(step.rebuild, min(REPORT_S, left))
        log(f"gpu_check: {step.name}: {status} in {result.seconds:.0f} s")
        results.append(result)
    return results


def _tail(output: str, n: int = 25) -> list[str]:
    lines = [line.rstrip() for line in (output or "").splitlines() if line.strip()]
    return lines[-n:]


# ---------------------------------------------------------------------------- the children


def one_method(args: argparse.Namespace) -> int:
    """Step 1's child: ``args.one_method`` in bf16-mixed then 16-mixed, compiled, channels_last,
    on the GPU; its outcome in ``<work>/methods/<method>.json``. Exit 0 when both pass."""
    import lightning as L
    import torch

    from imtrans.errors import shorten
    from imtrans.run import train
    from tests.helpers import compose_config, method_overrides

    class LastLosses(L.Callback):
        def __init__(self):
            self.losses: dict[str, float] = {}

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            self.losses = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/")}

    method = args.one_method
    work = Path(args.work) / "methods" / method
    outcome: dict = {"method": method, "runs": {}}
    ok = True
    for precision in PRECISIONS:
        tmp = work / precision
        tmp.mkdir(parents=True, exist_ok=True)
        extra = ["metrics=none", "callbacks.sample_grid=null"]
        overrides = [
            o for o in method_overrides(method, tmp, METHOD_ITERS, extra) if not o.startswith("trainer=")
        ]
        overrides += [
            "task=fit",  # training is what this checks; evaluation would compile other graphs
            "trainer.limit_val_batches=0",
            "trainer=gpu",
            f"trainer.precision={precision}",
            "trainer.compile=true",
            "trainer.channels_last=true",
        ]
        torch._dynamo.reset()
        torch._dynamo.utils.counters.clear()
        losses = LastLosses()
        t0 = time.time()
        run: dict = {"overrides": overrides}
        try:
            train(compose_config(overrides, tmp / "out"), extra_callbacks=[losses])
            finite = bool(losses.losses) and all(math.isfinite(v) for v in losses.losses.values())
            run.update(
                status="pass" if finite else "fail",
                losses=losses.losses,
                message="" if finite else "no finite losses at the last iteration",
            )
        except Exception as err:  # noqa: BLE001  (reported, the next precision still runs)
            run.update(status="fail", message=f"{type(err).__name__}: {shorten(str(err), 300)}")
        run["graphs"] = int(torch._dynamo.utils.counters["stats"]["unique_graphs"])
        run["seconds"] = round(time.time() - t0, 1)
        outcome["runs"][precision] = run
        ok = ok and run["status"] == "pass"
        print(f"{method} {precision}: {run['status']} {run.get('message', '')}", flush=True)
        # after each run: a deadline during the second keeps the first's outcome
        (work.parent / f"{method}.json").write_text(json.dumps(outcome, indent=1))
    return 0 if ok else 1


def one_ddp(args: argparse.Namespace) -> int:
    """Step 2's child: ``python -m imtrans.run`` (Lightning's ddp launcher re-executes that command
    line for ranks 1..N-1) on ``args.one_ddp`` GPUs; passes when ``metrics.json`` counts every
    iteration."""
    from tests.helpers import method_overrides

    out_dir = Path(args.work) / "ddp"
    tmp = Path(args.work) / "ddp_data"
    extra = ["metrics=none", "callbacks.sample_grid=null"]
    overrides = [
        o for o in method_overrides("cyclegan", tmp, DDP_ITERS, extra) if not o.startswith("trainer=")
    ]
    overrides += ["trainer=ddp", f"trainer.devices={args.one_ddp}", f"hydra.run.dir={out_dir}"]
    cmd = [sys.executable, "-m", "imtrans.run", *overrides]
    print(f"$ {shlex.join(cmd)}", flush=True)
    rc = subprocess.run(cmd, cwd=REPO).returncode
    if rc:
        return rc
    metrics = json.loads((out_dir / "metrics.json").read_text())
    if metrics.get("iteration") != DDP_ITERS:
        print(f"metrics.json: iteration={metrics.get('iteration')}, expected {DDP_ITERS}", flush=True)
        return 1
    print(f"ddp on {args.one_ddp} GPU(s): {DDP_ITERS} iterations", flush=True)
    return 0


# ---------------------------------------------------------------------------- the report


def environment() -> dict[str, str]:
    """The machine: GPUs, memory, driver, torch / CUDA / cuDNN / lightning versions."""
    import torch

    env = {"python": platform.python_version(), "torch": torch.__version__, "CPU cores": str(os.cpu_count())}
    env["CUDA (torch build)"] = str(torch.version.cuda)
    env["cuDNN"] = str(torch.backends.cudnn.version()) if torch.backends.cudnn.is_available() else "none"
    gpus = []
    for i in range(torch.cuda.device_count()):
        prop = torch.cuda.get_device_properties(i)
        gpus.append(f"{prop.name} ({prop.total_memory / 2**30:.0f} GiB, sm {prop.major}{prop.minor})")
    env["GPUs"] = "; ".join(gpus) or "none"
    try:
        driver = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        ).stdout.split()
        env["driver"] = driver[0] if driver else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        env["driver"] = "unknown (no nvidia-smi)"
    try:
        import lightning

        env["lightning"] = lightning.__version__
    except ImportError:
        pass
    return env


def method_details(work: Path, methods: list[str]) -> list[str]:
    """Step 1's table, from its children's JSON files."""
    lines = [
        "| method | " + " | ".join(PRECISIONS) + " |",
        "| --- | " + " | ".join("---" for _ in PRECISIONS) + " |",
    ]
    for m in methods:
        path = Path(work) / "methods" / f"{m}.json"
        runs = json.loads(path.read_text())["runs"] if path.is_file() else {}
        cells = []
        for p in PRECISIONS:
            r = runs.get(p)
            if r is None:
                cells.append("not run")
            elif r["status"] == "pass":
                cells.append(f"pass, {r['seconds']:.0f} s, {r['graphs']} graphs compiled")
            else:
                cells.append(f"**fail**, {r['seconds']:.0f} s: {r.get('message', '')}")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return lines


def embedded_report(path: Path) -> list[str]:
    """A benchmark's report without its title (its heading level lowered)."""
    if not path.is_file():
        return [f"(no report: {path} was not written)"]
    lines = path.read_text().splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return ["#" + line if line.startswith("#") else line for line in lines]


def render(
    args: argparse.Namespace, env: dict[str, str], results: list[Result], used_s: float, command: str
) -> str:
    """gpu_check.md."""
    lines = [
        "# GPU check (issue 30)",
        "",
        f"`{command}`",
        "",
        f"Run {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}, budget {args.budget:g} s, used {used_s:.0f} s.",
        "",
        "| | |",
        "| --- | --- |",
        *[f"| {k} | {v} |" for k, v in env.items()],
        "",
        "| step | status | seconds | what |",
        "| --- | --- | ---: | --- |",
    ]
    for r in results:
        secs = f"{r.seconds:.0f}" if r.status != "skipped" else "-"
        lines.append(f"| {r.step.name} | {r.status} | {secs} | {r.step.title} |")
    for r in results:
        lines += ["", f"## {r.step.name}: {r.status}", ""]
        if r.step.note:
            lines += [r.step.note, ""]
        if r.status == "skipped":
            lines += [f"Skipped: {r.reason}."]
            continue
        if r.tail:
            lines += ["```text", *r.tail, "```", ""]
        lines += r.details
    return "\n".join(lines).rstrip("\n") + "\n"


def add_details(args: argparse.Namespace, results: list[Result]) -> None:
    """Step 1's table, and each benchmark's report under the last step that wrote it (the two
    speed steps share one report)."""
    embedded: set[Path] = set()
    for r in reversed(results):
        if r.status == "skipped":
            continue
        if r.step.name == "methods":
            r.details = method_details(Path(args.work), args.methods.split(","))
        elif r.step.report_file is not None and r.step.report_file not in embedded:
            r.details = embedded_report(r.step.report_file)
            embedded.add(r.step.report_file)


# ---------------------------------------------------------------------------- main


def cuda_devices() -> tuple[int, str]:
    """(the number of CUDA devices, why none when 0)."""
    import torch

    if not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU-only build"
        return 0, f"torch.cuda.is_available() is False (torch {torch.__version__}, {build})"
    return torch.cuda.device_count(), ""


def main(argv: list[str] | None = None) -> int:
    start = time.monotonic()  # the budget counts from here: imports and probes are in it
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.one_method:
        return one_method(args)
    if args.one_ddp:
        return one_ddp(args)
    gpus, why = cuda_devices()
    if gpus == 0 and not args.dry_run:
        print(
            f"gpu_check: no CUDA device: {why}; run it on a machine with an NVIDIA GPU, or add --dry-run to "
            "print the plan",
            file=sys.stderr,
        )
        return 2
    steps = plan(args, gpus)
    if args.dry_run:
        print_plan(steps, args.budget, gpus)
        return 0
    from imtrans.pretrained import STAND_IN_ENV

    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(Path(args.work) / "inductor"))
    # the weight files the benchmarks write under --work (pix2pixHD's random VGG19) are stand-ins
    os.environ[STAND_IN_ENV] = str(Path(args.work).resolve())
    Path(args.work).mkdir(parents=True, exist_ok=True)
    results = run_plan(steps, args.budget, start=start)
    add_details(args, results)
    env = environment()
    used = time.monotonic() - start
    command = "python experiments/gpu_check.py " + shlex.join(argv)
    text = render(args, env, results, used, command.strip())
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text, end="")
    return 1 if any(r.status == "fail" for r in results) else 0


if __name__ == "__main__":
    if __package__ in (None, ""):  # run as a file: the children import experiments and tests
        sys.path.insert(0, str(REPO))
    sys.exit(main())
