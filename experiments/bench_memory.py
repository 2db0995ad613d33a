"""Peak training memory of every method: fp32 and bf16-mixed, with and without
``trainer.activation_checkpointing``, at 256 and 512 px, batch 1.

    OMP_NUM_THREADS=2 python experiments/bench_memory.py [--device cuda] [--methods cyclegan,munit] \\
        [--sizes 256,512] [--precisions fp32,bf16] [--checkpointing off,on] [--timeout 600] [--jobs 1]

Each measurement (method x size x precision x checkpointing) is one fresh Python process: the
method's paper configuration (``experiments.official.ENTRIES``, as ``bench_speed.py`` trains
it) trains through ``imtrans.run.train`` until it has made ``--iters`` full updates (2: the
optimizer states exist from the second on; DRIT's content-only iterations do not count), and
the process reports what it measured:

* on CUDA, the caching allocator's own statistics: ``torch.cuda.memory_allocated`` once the
  networks are on the GPU (``weights``) and after the last iteration (``weights + optimizer``:
  what stays between iterations: weights, Adam's moments, any buffers a method keeps), and
  ``torch.cuda.max_memory_allocated`` over the iterations, its statistics reset once the model
  and the first batch are on the device (``peak training``);
* on the CPU there are no allocator statistics: the growth of the process's peak resident set
  size during the iterations, the kernel's high-water mark (``VmHWM``, what ``ru_maxrss``
  reports) reset through ``/proc/self/clear_refs`` when the first iteration starts, minus the
  resident size at that moment. RSS counts pages, not tensors: the C allocator keeps freed
  memory, oneDNN its scratch buffers, so the numbers are upper bounds of what the tensors
  needed, comparable with each other on one machine.

pix2pixHD's VGG19 loss network has random weights (``random_vgg19``, declared a stand-in through
``IMTRANS_STAND_IN_WEIGHTS``): memory does not depend on their values.

Results are cached per measurement as JSON under ``--work`` (an interrupted run continues; a
measurement that ran out of time is tried again only with a longer ``--timeout``), and the
Markdown report (``experiments/results/bench_memory.md``, or ``--out``) is rebuilt from every
cached result of the selection.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a file: python experiments/bench_memory.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from experiments.official import BY_NAME, ENTRIES
from experiments.subprocs import start_in_group

REPO = Path(__file__).resolve().parents[1]
#: --precisions names -> trainer.precision
PRECISIONS = {"fp32": "32-true", "bf16": "bf16-mixed"}
CHECKPOINTING = {"off": "false", "on": "true"}
GIB = 2**30


@dataclass(frozen=True)
class Key:
    """One measurement."""

    method: str
    size: int
    precision: str  # a key of PRECISIONS
    checkpointing: str  # off | on

    @property
    def tag(self) -> str:
        return f"{self.method}:{self.size}:{self.precision}:{self.checkpointing}"

    @classmethod
    def parse(cls, tag: str) -> Key:
        method, size, precision, ckpt = tag.split(":")
        return cls(method, int(size), precision, ckpt)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--methods", default=",".join(e.name for e in ENTRIES), help="comma-separated ENTRIES names"
    )
    p.add_argument("--sizes", default="256,512", help="image sizes in px (comma-separated)")
    p.add_argument("--precisions", default=",".join(PRECISIONS), help="fp32 and/or bf16 (bf16-mixed)")
    p.add_argument("--checkpointing", default="off,on", help="activation checkpointing: off and/or on")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--iters", type=int, default=2, help="full updates per measurement (>= 2)")
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    p.add_argument("--timeout", type=float, default=600, help="seconds one measurement may take")
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="measurements at once (for CUDA; on the CPU they would share the cores)",
    )
    p.add_argument("--work", default="/tmp/imtrans_bench_memory")
    p.add_argument("--out", default=str(REPO / "experiments" / "results" / "bench_memory.md"))
    p.add_argument("--report-only", action="store_true", help="rebuild the report from the cached results")
    p.add_argument("--one", help=argparse.SUPPRESS)  # child process: the measurement's Key.tag
    args = p.parse_args(argv)
    problems = []
    for name, value, allowed in (
        ("--methods", args.methods, BY_NAME),
        ("--precisions", args.precisions, PRECISIONS),
        ("--checkpointing", args.checkpointing, CHECKPOINTING),
    ):
        bad = [v for v in _split(value) if v not in allowed]
        if bad or not _split(value):
            problems.append(f"{name}={value}: unknown {bad or 'empty'}; choose from {','.join(allowed)}")
    try:
        sizes = [int(s) for s in _split(args.sizes)]
        if not sizes or min(sizes) < 32:
            raise ValueError
    except ValueError:
        problems.append(f"--sizes={args.sizes}: expected comma-separated sizes in px (>= 32), e.g. 256,512")
    if args.iters < 2:
        problems.append(
            f"--iters={args.iters}: the optimizer states exist from the second update on; use >= 2"
        )
    if problems:
        p.error(problems[0])
    return args


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def plan(args: argparse.Namespace) -> list[Key]:
    """Every measurement of the selection, the sizes in the order given, every method at a size
    before the next size (a run cut short has measured every method at the first size)."""
    return [
        Key(m, int(s), p, c)
        for s in _split(args.sizes)
        for m in _split(args.methods)
        for p in _split(args.precisions)
        for c in _split(args.checkpointing)
    ]


def cache_path(work: Path, key: Key, device: str) -> Path:
    return Path(work) / key.method / f"{key.size}_{key.precision}_ckpt-{key.checkpointing}_{device}.json"


def load_cached(work: Path, key: Key, device: str) -> dict | None:
    path = cache_path(work, key, device)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def needs_run(record: dict | None, timeout: float) -> bool:
    """Whether a measurement is (re)run: not measured yet; failed (an error other than running
    out of memory or a refused configuration: retried); out of time under a shorter limit than
    ``timeout``; out of memory while other measurements shared the GPU."""
    if record is None:
        return True
    status = record.get("status")
    if status in ("ok", "refused"):
        return False
    if status == "oom":
        return record.get("concurrent", 1) > 1
    if status == "timeout":
        return record.get("timeout_s", 0) < timeout
    return True


# ---------------------------------------------------------------------------- the measurement


def _status_kib() -> dict[str, int]:
    """VmRSS and VmHWM of this process, in KiB (empty where /proc is missing)."""
    out = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    name, value = line.split(":", 1)
                    out[name] = int(value.split()[0])
    except OSError:
        pass
    return out


class RssPeak:
    """The growth of this process's peak resident set size from ``start()`` to ``peak_growth()``.

    ``start`` resets the kernel's high-water mark to the current RSS (writing 5 to
    ``/proc/self/clear_refs``, Linux >= 4.0); where it cannot, the growth of ``ru_maxrss`` is
    used, which is only a lower bound (an earlier, higher peak hides the iterations' peak).
    ``VmHWM`` is read rather than ``ru_maxrss``: the latter also keeps the parent's peak, which
    a child inherits at ``exec``."""

    def start(self) -> None:
        import resource

        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.reset = True
        except OSError:
            self.reset = False
        status = _status_kib()
        self.rss_kib = status.get("VmRSS")
        self.maxrss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def peak_kib(self) -> int:
        import resource

        status = _status_kib()
        return (
            status["VmHWM"]
            if self.reset and "VmHWM" in status
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        )

    def peak_growth(self) -> int:
        """Bytes of peak RSS growth since ``start``."""
        base = self.rss_kib if self.reset and self.rss_kib is not None else self.maxrss_kib
        return max(0, self.peak_kib() - base) * 1024


class MemoryProbe:
    """Measures one run (module docstring) and stops it after ``full_updates`` full updates
    (those for which the module's ``is_full_update(batch_idx)`` is true; every iteration where
    it has none). Lightning's callback hooks; ``make_probe`` makes it a Lightning callback."""

    def __init__(self, full_updates: int):
        self.full_updates = full_updates
        self.record: dict = {"iterations": []}
        self._full = 0
        self._rss = RssPeak()

    def _cuda(self, module) -> bool:
        return module.device.type == "cuda"

    def on_train_start(self, trainer, module):
        params = {id(p): p for p in module.parameters()}.values()
        self.record["params"] = sum(p.numel() for p in params)
        self.record["trained_params"] = sum(p.numel() for p in params if p.requires_grad)
        if self._cuda(module):
            torch.cuda.synchronize()
            self.record["weights_bytes"] = torch.cuda.memory_allocated()

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if not self.record["iterations"]:  # the model and the first batch are on the device
            if self._cuda(module):
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                self.record["before_bytes"] = torch.cuda.memory_allocated()
            else:
                self._rss.start()
                self.record["rss_before_bytes"] = (self._rss.rss_kib or self._rss.maxrss_kib) * 1024
                self.record["hwm_reset"] = self._rss.reset
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        cuda = self._cuda(module)
        if cuda:
            torch.cuda.synchronize()
        is_full = getattr(module, "is_full_update", None)
        full = True if is_full is None else bool(is_full(batch_idx))
        it = {"seconds": time.perf_counter() - self._t0, "full": full}
        if cuda:
            it["peak_bytes"] = torch.cuda.max_memory_allocated()
            it["allocated_bytes"] = torch.cuda.memory_allocated()
        else:
            it["rss_peak_growth_bytes"] = self._rss.peak_growth()
        self.record["iterations"].append(it)
        self._full += full
        if self._full >= self.full_updates:
            trainer.should_stop = True
            if cuda:
                self.record["peak_bytes"] = torch.cuda.max_memory_allocated()
                self.record["resident_bytes"] = torch.cuda.memory_allocated()
                self.record["peak_reserved_bytes"] = torch.cuda.max_memory_reserved()
            else:
                self.record["rss_peak_growth_bytes"] = self._rss.peak_growth()
                self.record["rss_peak_bytes"] = self._rss.peak_kib() * 1024


def make_probe(full_updates: int):
    """A :class:`MemoryProbe` that Lightning's trainer takes as a callback."""
    import lightning as L

    class Probe(MemoryProbe, L.Callback):
        pass

    return Probe(full_updates)


def measure_one(args: argparse.Namespace) -> None:
    """Child process: one measurement (``--one``), written to its cache file."""
    import fcntl

    from experiments.benchlib import run_config
    from experiments.official import bench_overrides
    from imtrans.data import DataError
    from imtrans.errors import ConfigError, shorten
    from imtrans.pretrained import STAND_IN_ENV
    from imtrans.run import train

    key = Key.parse(args.one)
    entry = BY_NAME[key.method]
    # the weight files this benchmark writes (pix2pixHD's VGG19 loss network, random: memory does
    # not depend on the values) are declared stand-ins, used without the published hash check
    os.environ[STAND_IN_ENV] = str(Path(args.work).resolve())
    torch.set_num_threads(args.threads)
    work = Path(args.work) / key.method
    work.mkdir(parents=True, exist_ok=True)
    # the data and weight files of a method are made once, by whichever measurement comes first
    # (measurements of one method may run at once: --jobs)
    with open(work / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        overrides = bench_overrides(entry, key.size, 1, work)
    overrides += [
        f"trainer={'gpu' if args.device == 'cuda' else 'cpu'}",
        f"trainer.precision={PRECISIONS[key.precision]}",
        f"trainer.activation_checkpointing={CHECKPOINTING[key.checkpointing]}",
        "data.num_workers=0",
        "logger=none",
        "callbacks=none",
        "metrics=none",
        # a bound only: the probe stops the run after its full updates (DRIT: 1 in 3 iterations)
        f"iters={10 * args.iters}",
        "task=fit",
        "trainer.enable_model_summary=false",
        "+trainer.enable_progress_bar=false",
        "trainer.limit_val_batches=0",
    ]
    record = {
        "method": key.method,
        "size": key.size,
        "precision": key.precision,
        "checkpointing": key.checkpointing,
        "device": args.device,
        "threads": args.threads,
        "concurrent": args.jobs,
        "overrides": overrides,
    }
    probe = make_probe(args.iters)
    t0 = time.time()
    out_dir = work / f"run_{key.size}_{key.precision}_{key.checkpointing}_{args.device}"
    try:
        train(run_config(overrides, out_dir), extra_callbacks=[probe])
        record["status"] = "ok"
    except torch.OutOfMemoryError as err:
        record.update(status="oom", message=shorten(str(err), 200))
    except (ConfigError, DataError) as err:  # a size the method's networks refuse, say
        record.update(status="refused", message=shorten(str(err), 300))
    record.update(probe.record, wall_s=round(time.time() - t0, 1), load_before=os.getloadavg()[0])
    if args.device == "cuda":
        record["gpu"] = torch.cuda.get_device_name()
    write_cache(Path(args.work), key, args.device, record)
    print(f"bench_memory: {key.tag} {args.device}: {summary(record)}", flush=True)


def write_cache(work: Path, key: Key, device: str, record: dict) -> None:
    path = cache_path(work, key, device)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(path)  # a killed run leaves no half-written cache


def summary(record: dict) -> str:
    if record.get("status") != "ok":
        return f"{record.get('status')}: {record.get('message', '')}"
    if "peak_bytes" in record:
        return f"peak {record['peak_bytes'] / GIB:.2f} GiB, resident {record['resident_bytes'] / GIB:.2f} GiB"
    return f"peak RSS growth {record['rss_peak_growth_bytes'] / GIB:.2f} GiB"


# ---------------------------------------------------------------------------- the parent

#: the measurement processes running now (each in its own process group), and whether this
#: process was told to stop (SIGTERM: gpu_check.py at its deadline)
_RUNNING: set[subprocess.Popen] = set()
_STOP = threading.Event()


def _stop(signum, _frame) -> None:
    """SIGTERM: stop the measurements running now (their process groups are not this one's,
    so a signal to this group does not reach them) and start no other."""
    _STOP.set()
    for proc in list(_RUNNING):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    raise SystemExit(128 + signum)


def run_child(args: argparse.Namespace, key: Key) -> dict | None:
    """One measurement in a fresh process (its own process group: killed whole when it runs out
    of time). Returns the record written for a failure or a timeout, None when the child wrote
    its own."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", key.tag, *_child_argv(args)]
    if _STOP.is_set():
        return None
    t0 = time.time()
    proc = start_in_group(cmd)
    _RUNNING.add(proc)
    try:
        output, _ = proc.communicate(timeout=args.timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        timed_out = True
    finally:
        _RUNNING.discard(proc)
    if _STOP.is_set():  # killed by _stop: nothing was measured
        return None
    if timed_out:
        record = {"status": "timeout", "timeout_s": args.timeout}
    elif proc.returncode == 0 and load_cached(Path(args.work), key, args.device) is not None:
        print(output.strip().splitlines()[-1] if output.strip() else key.tag, flush=True)
        return None
    else:
        tail = [line for line in output.strip().splitlines() if line.strip()][-12:]
        # the exception's own line, not the context a wrapper (Hydra's instantiate) adds after it
        errors = [line for line in tail if "Error" in line or "Exception" in line]
        record = {
            "status": "failed",
            "exit": proc.returncode,
            "message": (errors or tail or [""])[-1].strip(),
            "tail": tail,
        }
    record.update(
        method=key.method,
        size=key.size,
        precision=key.precision,
        checkpointing=key.checkpointing,
        device=args.device,
        wall_s=round(time.time() - t0, 1),
    )
    write_cache(Path(args.work), key, args.device, record)
    print(f"bench_memory: {key.tag} {args.device}: {summary(record)}", flush=True)
    return record


def _child_argv(args: argparse.Namespace) -> list[str]:
    return [
        f"--device={args.device}",
        f"--iters={args.iters}",
        f"--threads={args.threads}",
        f"--work={args.work}",
        f"--jobs={args.jobs}",
    ]


def run_all(args: argparse.Namespace) -> None:
    signal.signal(signal.SIGTERM, _stop)
    todo = [k for k in plan(args) if needs_run(load_cached(Path(args.work), k, args.device), args.timeout)]
    print(f"bench_memory: {len(todo)} measurement(s) to run, {args.jobs} at a time", flush=True)
    if args.jobs <= 1:
        for key in todo:
            run_child(args, key)
        return
    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(lambda k: run_child(args, k), todo))


# ---------------------------------------------------------------------------- the report


def _gib(n: float) -> str:
    return f"{n / GIB:.2f}"


def _median_full_seconds(record: dict) -> float | None:
    """The median seconds of the full updates after the first (the first also allocates)."""
    full = [it["seconds"] for it in record.get("iterations", []) if it.get("full", True)]
    return statistics.median(full[1:]) if len(full) > 1 else None


def cell(record: dict | None, device: str, baseline: dict | None = None) -> str:
    """One table cell: the peak in GiB (checkpointing: its change against ``baseline``, the same
    precision without it), or why there is none."""
    if record is None:  # planned, not run (yet)
        return "not measured here (CPU time)" if device == "cpu" else "not measured"
    status = record.get("status")
    if status == "timeout":
        limit = f"{record.get('timeout_s', 0):g} s"
        return f"not measured here (CPU time > {limit})" if device == "cpu" else f"timeout (> {limit})"
    if status == "oom":
        return "out of memory"
    if status == "refused":
        return "refused (see notes)"
    if status != "ok":
        return "failed (see notes)"
    value = record["peak_bytes"] if device == "cuda" else record["rss_peak_growth_bytes"]
    text = _gib(value)
    if baseline is not None and baseline.get("status") == "ok":
        base = baseline["peak_bytes"] if device == "cuda" else baseline["rss_peak_growth_bytes"]
        if base > 0:
            text += f" ({100 * (value - base) / base:+.0f} %)"
    return text


def _columns(keys) -> list[tuple[str, str]]:
    present = {(k.precision, k.checkpointing) for k in keys}
    return [(p, c) for p in PRECISIONS for c in CHECKPOINTING if (p, c) in present]


def _label(precision: str, ckpt: str) -> str:
    return f"{precision}{' + ckpt' if ckpt == 'on' else ''}"


def report(args: argparse.Namespace, results: dict[Key, dict], environment: str, command: str) -> list[str]:
    """The Markdown report of ``results`` (Key -> cached record) measured on ``args.device``."""
    cuda = args.device == "cuda"
    # every measurement of the selection has its cell, measured or not
    keys = [*plan(args), *results]
    columns = _columns(keys)
    rows = sorted({(k.size, k.method) for k in keys}, key=lambda sm: (sm[0], _order(sm[1])))
    measure = (
        "`torch.cuda.max_memory_allocated` (the caching allocator's statistics) over the iterations, reset "
        "once the model and the first batch are on the GPU; `weights + optimizer`: `torch.cuda.memory_allocated` "
        "after the last iteration (weights, Adam's moments and whatever a method keeps between iterations)"
        if cuda
        else "**peak RSS growth**, not allocator statistics (the CPU allocator keeps none): the kernel's high-water "
        "mark of the process's resident set (VmHWM, what `ru_maxrss` reports), reset when the first iteration "
        "starts, minus the resident size at that moment (`RSS before`: Python, torch, the networks and the "
        "batch). It counts pages, not tensors: the C allocator and oneDNN keep freed memory, so it bounds what "
        "the iterations needed from above and compares settings on one machine, not across machines"
    )
    lines = [
        "# Peak training memory per method: fp32 and bf16-mixed, with and without activation checkpointing",
        "",
        f"`{command}`",
        "",
        f"{environment}. Batch 1, each method's paper configuration (`experiments/official` ENTRIES, as "
        "`bench_speed.py` trains it), one fresh process per measurement, trained until "
        f"{args.iters} full updates (the optimizer states exist from the second). Cells: GiB of {measure}. "
        "`+ ckpt`: `trainer.activation_checkpointing=true`, in brackets its change against the same "
        "precision without it.",
        "",
    ]
    first = "weights + optimizer GiB" if cuda else "RSS before GiB"
    lines += [
        "| method | px | params (M) | " + first + " | " + " | ".join(_label(p, c) for p, c in columns) + " |",
        "| --- | ---: | ---: | ---: | " + " | ".join("---:" for _ in columns) + " |",
    ]
    for size, method in rows:
        recs = {(p, c): results.get(Key(method, size, p, c)) for p, c in columns}
        ok = [r for r in recs.values() if r and r.get("status") == "ok"]
        params = f"{ok[0]['params'] / 1e6:.1f}" if ok and "params" in ok[0] else "-"
        base_key = "resident_bytes" if cuda else "rss_before_bytes"
        base = next((r[base_key] for r in ok if base_key in r), None)
        cells = [
            cell(recs[(p, c)], args.device, recs.get((p, "off")) if c == "on" else None) for p, c in columns
        ]
        lines.append(
            f"| {method} | {size} | {params} | {_gib(base) if base is not None else '-'} | "
            + " | ".join(cells)
            + " |"
        )
    timed = [(k, r) for k, r in results.items() if r.get("status") == "ok" and _median_full_seconds(r)]
    if timed:
        lines += [
            "",
            "Seconds per full update (median of the updates after the first; the cost of the recomputation"
            + (
                "; the CPU was shared with other jobs, so these times are noisy, often by 2x)"
                if not cuda
                else ")"
            )
            + ":",
            "",
            "| method | px | " + " | ".join(_label(p, c) for p, c in columns) + " |",
            "| --- | ---: | " + " | ".join("---:" for _ in columns) + " |",
        ]
        for size, method in [sm for sm in rows if any((k.size, k.method) == sm for k, _ in timed)]:
            secs = []
            for p, c in columns:
                r = results.get(Key(method, size, p, c))
                s = _median_full_seconds(r) if r and r.get("status") == "ok" else None
                secs.append(f"{s:.2f}" if s is not None else "-")
            lines.append(f"| {method} | {size} | " + " | ".join(secs) + " |")
    notes = [
        f"- {k.tag}: {r['status']}: {r.get('message', '')}"
        for k, r in sorted(results.items(), key=lambda kr: (kr[0].size, _order(kr[0].method), kr[0].tag))
        if r.get("status") in ("refused", "failed", "oom") and r.get("message")
    ]
    lines += [
        "",
        "Sizes: every method trains at each size with the networks its configuration builds for it (the params "
        "column): pix2pix's and BicycleGAN's U-Net has log2(size) levels, at most 8 (512 px: the 256 px network, "
        "a 2 x 2 bottleneck), BicycleGAN's encoder log2(size) - 4 blocks, StarGAN v2's widths are 2^14 / size "
        "(half as many channels at 512 px); pix2pixHD's size is the label maps' height (256 x 512 and 512 x 1024, "
        "the latter its 512p paper setting); DRIT and DRIT++'s official content discriminator fits 209-240 px "
        "only, so at these sizes it sees the content maps resized to 54 x 54 first (`model.content_dis_fit=auto`). "
        "pix2pixHD's VGG19 loss network has random weights (memory does not depend on them).",
    ]
    if notes:
        lines += ["", "Notes:", "", *notes]
    return lines


def _order(method: str) -> int:
    names = [e.name for e in ENTRIES]
    return names.index(method) if method in names else len(names)


def collect(args: argparse.Namespace) -> dict[Key, dict]:
    """The cached records of the selection."""
    out = {}
    for key in plan(args):
        record = load_cached(Path(args.work), key, args.device)
        if record is not None:
            out[key] = record
    return out


def environment(args: argparse.Namespace, results: dict[Key, dict]) -> str:
    import platform

    import torch

    if args.device == "cuda":
        gpus = sorted({r["gpu"] for r in results.values() if r.get("gpu")})
        where = f"cuda ({', '.join(gpus) or 'GPU'}), torch CUDA {torch.version.cuda}"
    else:
        threads = f"{args.threads} thread{'s' if args.threads != 1 else ''}"
        where = f"cpu, {threads}, {platform.processor() or platform.machine()}"
    import lightning as L

    return f"{where}; torch {torch.__version__}, lightning {L.__version__}"


def command_line(argv: list[str]) -> str:
    shown = [a for a in argv if a != "--report-only"]
    return (
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '?')} python experiments/bench_memory.py "
        + " ".join(shown)
    )


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.one:
        measure_one(args)
        return
    if not args.report_only:
        run_all(args)
    from experiments.benchlib import write_report

    results = collect(args)
    write_report(Path(args.out), report(args, results, environment(args, results), command_line(argv)))


if __name__ == "__main__":
    main()
