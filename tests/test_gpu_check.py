"""The CPU-side logic of ``experiments/gpu_check.py`` (arguments, the plan under a budget, the
report, the exit without CUDA, --dry-run) and of ``experiments/bench_memory.py`` (arguments,
the cache, the report from recorded results, the peak-RSS probe), without a GPU or a model."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from experiments import bench_memory as bm
from experiments import gpu_check

# ---------------------------------------------------------------------------- gpu_check


def test_arguments():
    args = gpu_check.parse_args([])
    assert args.budget == 480 and args.official == [] and args.methods.split(",") == list(gpu_check.METHODS)
    from tests.helpers import METHODS

    assert list(gpu_check.METHODS) == METHODS  # its own copy (no import at plan time) must not drift
    args = gpu_check.parse_args(["--budget", "300", "--official", "MUNIT=/x", "--methods", "munit,cut"])
    assert args.budget == 300 and args.official == ["MUNIT=/x"] and args.methods == "munit,cut"
    for bad in (["--methods", "munit,nope"], ["--official", "MUNIT"], ["--budget", "0"]):
        with pytest.raises(SystemExit):
            gpu_check.parse_args(bad)


class FakeMachine:
    """A clock that the fake runner advances: each command takes its scripted seconds (or runs
    to its deadline), with a scripted exit code."""

    def __init__(self, script):
        self.now, self.script, self.calls = 0.0, script, []

    def clock(self):
        return self.now

    def run(self, cmd, timeout):
        self.calls.append((cmd, timeout))
        seconds, rc, out = next((v for k, v in self.script.items() if k in " ".join(cmd)), (1, 0, ""))
        if seconds is None or seconds > timeout:  # runs to its deadline
            self.now += timeout
            return None, out, timeout
        self.now += seconds
        return rc, out, seconds


def test_plan_under_budget_skips_what_does_not_fit():
    args = gpu_check.parse_args(["--budget", "480", "--methods", "cyclegan,munit", "--jobs", "1"])
    steps = gpu_check.plan(args, gpus=1)
    machine = FakeMachine(
        {
            "--one-method=cyclegan": (60, 0, ""),
            "--one-method=munit": (60, 0, ""),
            "--one-ddp": (30, 1, "Traceback ...\nRuntimeError: NCCL error"),
            "--variants=fp32,bf16": (90, 0, ""),
            "--report-only": (10, 0, ""),
            "bench_memory.py": (None, None, "measuring"),  # runs to its deadline
        }
    )
    results = gpu_check.run_plan(steps, 480, runner=machine.run, clock=machine.clock, log=lambda *_: None)
    status = {r.step.name: r.status for r in results}
    assert status == {
        "methods": "pass",
        "ddp": "fail",
        "speed": "pass",
        "memory": "timeout",
        "speed_compiled": "skipped",
    }
    by = {r.step.name: r for r in results}
    assert "RuntimeError: NCCL error" in by["ddp"].tail and "(exit 1)" in by["ddp"].tail[0]
    # each step gets the time to its deadline (its share of the budget and what the steps before
    # it left): methods started at 0, memory at 240 s (60 + 60 + 30 + 90)
    assert machine.calls[0][1] == pytest.approx(by["methods"].step.until * 480)
    memory_call = next(
        t for c, t in machine.calls if "bench_memory.py" in " ".join(c) and "--report-only" not in c
    )
    assert memory_call == pytest.approx(by["memory"].step.until * 480 - 240)
    # memory ran to its deadline, then its report was rebuilt from the cache (10 s)
    assert any("bench_memory.py" in " ".join(c) and "--report-only" in c for c, _ in machine.calls)
    # what was left before the last deadline is less than the compiled step's minimum
    assert by["speed_compiled"].step.until * 480 - (by["memory"].step.until * 480 + 10) < 40
    assert "needs at least 40 s" in by["speed_compiled"].reason
    assert not any("--variants=best" in c for c, _ in machine.calls)


def test_steps_option_selects_steps_and_spreads_the_budget():
    steps = gpu_check.plan(gpu_check.parse_args(["--steps", "speed,memory"]), gpus=1)
    assert [s.name for s in steps] == ["speed", "memory"]
    assert steps[-1].until == pytest.approx(gpu_check.FINAL) and 0 < steps[0].until < steps[-1].until
    with pytest.raises(SystemExit):
        gpu_check.parse_args(["--steps", "speed,nope"])


def test_plan_commands_and_notes():
    two = {s.name: s for s in gpu_check.plan(gpu_check.parse_args(["--official", "MUNIT=/m"]), gpus=2)}
    assert "--one-ddp=2" in two["ddp"].commands[0][2] and "DDP over 2 GPUs" in two["ddp"].note
    speed = two["speed"].commands[0]
    assert "--device=cuda" in speed and "--size=256" in speed and "--official=MUNIT=/m" in speed
    assert (
        "--methods=munit,cyclegan,pix2pixhd,stargan_v2" in speed and "No --official" not in two["speed"].note
    )
    assert "--sizes=256,512" in two["memory"].commands[0]
    one = {s.name: s for s in gpu_check.plan(gpu_check.parse_args([]), gpus=1)}
    assert "--one-ddp=1" in one["ddp"].commands[0][2] and "needs >= 2 GPUs" in one["ddp"].note
    assert "No --official checkouts" in one["speed"].note


def test_report_from_step_results(tmp_path):
    args = gpu_check.parse_args(["--work", str(tmp_path), "--methods", "cyclegan,munit", "--budget", "300"])
    steps = {s.name: s for s in gpu_check.plan(args, gpus=1)}
    (tmp_path / "methods").mkdir()
    (tmp_path / "methods" / "cyclegan.json").write_text(
        json.dumps(
            {
                "runs": {
                    "bf16-mixed": {"status": "pass", "seconds": 31.0, "graphs": 8},
                    "16-mixed": {"status": "fail", "seconds": 12.0, "message": "ValueError: inf"},
                }
            }
        )
    )
    memory_md = tmp_path / "bench_memory_cuda.md"
    memory_md.write_text("# Peak training memory\n\n| method | px |\n| --- | ---: |\n| cyclegan | 256 |\n")
    steps["memory"].report_file = memory_md
    results = [
        gpu_check.Result(
            steps["methods"],
            "fail",
            95.0,
            tail=["$ python gpu_check.py --one-method=cyclegan  (exit 1)", "boom"],
        ),
        gpu_check.Result(steps["ddp"], "pass", 20.0),
        gpu_check.Result(steps["speed"], "skipped", reason="needs at least 45 s and 10 s were left"),
        gpu_check.Result(steps["memory"], "timeout", 100.0),
        gpu_check.Result(steps["speed_compiled"], "skipped", reason="needs at least 45 s and 0 s were left"),
    ]
    gpu_check.add_details(args, results)
    env = {"GPUs": "NVIDIA H100 80GB HBM3 (79 GiB, sm 90)", "driver": "560.35", "torch": "2.14.1"}
    text = gpu_check.render(args, env, results, 290.0, "python experiments/gpu_check.py --budget 300")
    assert "| GPUs | NVIDIA H100 80GB HBM3 (79 GiB, sm 90) |" in text and "| driver | 560.35 |" in text
    assert "budget 300 s, used 290 s" in text
    for row in (
        "| methods | fail | 95 |",
        "| ddp | pass | 20 |",
        "| speed | skipped | - |",
        "| memory | timeout | 100 |",
    ):
        assert row in text
    assert "```text\n$ python gpu_check.py --one-method=cyclegan  (exit 1)\nboom\n```" in text
    assert "| cyclegan | pass, 31 s, 8 graphs compiled | **fail**, 12 s: ValueError: inf |" in text
    assert "| munit | not run | not run |" in text
    assert "Skipped: needs at least 45 s and 10 s were left." in text
    assert "| cyclegan | 256 |" in text and "# Peak training memory" not in text  # embedded, title dropped


def test_no_cuda_is_one_line_and_exit_2(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(
        gpu_check, "cuda_devices", lambda: (0, "torch.cuda.is_available() is False (torch x)")
    )
    assert gpu_check.main(["--out", str(tmp_path / "gpu_check.md")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert (
        err.startswith("gpu_check: no CUDA device: torch.cuda.is_available() is False") and "--dry-run" in err
    )
    assert not (tmp_path / "gpu_check.md").exists()
    if not torch.cuda.is_available():  # the real probe says why
        monkeypatch.undo()
        n, why = gpu_check.cuda_devices()
        assert n == 0 and "torch.cuda.is_available() is False" in why


def test_dry_run_prints_the_plan_and_runs_nothing(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(gpu_check, "cuda_devices", lambda: (0, "no GPU"))
    monkeypatch.setattr(gpu_check, "run_command", lambda *a: pytest.fail("--dry-run ran a command"))
    assert gpu_check.main(["--dry-run", "--budget", "300", "--out", str(tmp_path / "gpu_check.md")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("gpu_check plan: 5 steps in 300 s, 0 CUDA device(s) visible")
    for name in ("1. methods", "2. ddp", "3. speed", "4. memory", "5. speed_compiled"):
        assert name in out
    assert (
        f"deadline at {gpu_check.FINAL * 0.29 * 300:.0f} s" in out
        and "--one-method=spade" in out
        and "bench_memory.py --device=cuda" in out
    )
    assert not (tmp_path / "gpu_check.md").exists()


# ---------------------------------------------------------------------------- bench_memory


def test_bench_memory_arguments_and_plan():
    args = bm.parse_args(["--methods", "cyclegan,munit", "--sizes", "256,512", "--precisions", "fp32"])
    keys = bm.plan(args)
    assert [k.tag for k in keys[:4]] == [
        "cyclegan:256:fp32:off",
        "cyclegan:256:fp32:on",
        "munit:256:fp32:off",
        "munit:256:fp32:on",
    ]  # the first size for every method first
    assert len(keys) == 8 and bm.Key.parse("munit:512:bf16:on") == bm.Key("munit", 512, "bf16", "on")
    for bad in (["--methods", "nope"], ["--precisions", "fp16"], ["--sizes", "big"], ["--iters", "1"]):
        with pytest.raises(SystemExit):
            bm.parse_args(bad)


def test_bench_memory_cache_decides_what_runs_again(tmp_path, monkeypatch):
    args = bm.parse_args(
        ["--methods", "cyclegan", "--sizes", "256", "--work", str(tmp_path), "--timeout", "300"]
    )
    k_off, k_on, k_bf, k_bf_on = bm.plan(args)
    bm.write_cache(tmp_path, k_off, "cpu", {"status": "ok"})
    bm.write_cache(tmp_path, k_on, "cpu", {"status": "timeout", "timeout_s": 120})  # a shorter limit: again
    bm.write_cache(tmp_path, k_bf, "cpu", {"status": "timeout", "timeout_s": 300})  # the same limit: not
    bm.write_cache(tmp_path, k_bf_on, "cuda", {"status": "ok"})  # another device's result does not count
    ran = []
    monkeypatch.setattr(bm, "run_child", lambda a, key: ran.append(key.tag))
    bm.run_all(args)
    assert ran == ["cyclegan:256:fp32:on", "cyclegan:256:bf16:on"]
    assert bm.needs_run(None, 60) and bm.needs_run({"status": "failed"}, 60)
    assert not bm.needs_run({"status": "refused"}, 60) and not bm.needs_run(
        {"status": "oom", "concurrent": 1}, 60
    )
    assert bm.needs_run({"status": "oom", "concurrent": 4}, 60)  # other measurements shared the GPU


def _ok(peak_gib, *, cuda=False, seconds=(3.0, 2.0)):
    its = [{"seconds": s, "full": True} for s in seconds]
    if cuda:
        return {
            "status": "ok",
            "params": 28.3e6,
            "peak_bytes": peak_gib * bm.GIB,
            "resident_bytes": 0.5 * bm.GIB,
            "iterations": its,
        }
    return {
        "status": "ok",
        "params": 28.3e6,
        "rss_peak_growth_bytes": peak_gib * bm.GIB,
        "rss_before_bytes": bm.GIB,
        "iterations": its,
    }


def test_bench_memory_report_from_recorded_results():
    args = bm.parse_args(["--methods", "cyclegan,stargan_v2,munit", "--sizes", "256", "--precisions", "fp32"])
    K = bm.Key
    results = {
        K("cyclegan", 256, "fp32", "off"): _ok(2.0),
        K("cyclegan", 256, "fp32", "on"): _ok(0.5, seconds=(4.0, 3.0)),
        K("stargan_v2", 256, "fp32", "off"): {"status": "timeout", "timeout_s": 300},
        K("stargan_v2", 256, "fp32", "on"): {"status": "refused", "message": "data.crop_size=256: too small"},
    }
    text = "\n".join(bm.report(args, results, "cpu, 1 threads", "python experiments/bench_memory.py"))
    assert "peak RSS growth**, not allocator statistics" in text
    assert "| method | px | params (M) | RSS before GiB | fp32 | fp32 + ckpt |" in text
    assert "| cyclegan | 256 | 28.3 | 1.00 | 2.00 | 0.50 (-75 %) |" in text
    assert "| stargan_v2 | 256 | - | - | not measured here (CPU time > 300 s) | refused (see notes) |" in text
    assert "| munit | 256 | - | - | not measured here (CPU time) | not measured here (CPU time) |" in text
    assert "| cyclegan | 256 | 2.00 | 3.00 |" in text  # seconds: the full updates after the first
    assert "- stargan_v2:256:fp32:on: refused: data.crop_size=256: too small" in text
    cuda = bm.parse_args(
        ["--methods", "cyclegan", "--sizes", "512", "--device", "cuda", "--precisions", "bf16"]
    )
    results = {
        K("cyclegan", 512, "bf16", "off"): {"status": "oom", "message": "CUDA out of memory"},
        K("cyclegan", 512, "bf16", "on"): _ok(3.0, cuda=True),
    }
    text = "\n".join(bm.report(cuda, results, "cuda (H100)", "cmd"))
    assert "`torch.cuda.max_memory_allocated`" in text and "RSS" not in text
    assert "| cyclegan | 512 | 28.3 | 0.50 | out of memory | 3.00 |" in text


class _Net(torch.nn.Linear):
    """A module whose every third iteration is a full update (as DRIT's d_iter 3)."""

    device = torch.device("cpu")

    def is_full_update(self, batch_idx):
        return (batch_idx + 1) % 3 == 0


def test_probe_stops_after_full_updates_and_measures_rss_growth():
    probe = bm.MemoryProbe(full_updates=2)
    trainer, module = SimpleNamespace(should_stop=False), _Net(4, 4)
    probe.on_train_start(trainer, module)
    batch_idx = 0
    while not trainer.should_stop:
        probe.on_train_batch_start(trainer, module, None, batch_idx)
        if batch_idx == 2:
            held = torch.ones(64 * 2**20)  # 256 MiB touched during the "iterations"
            del held
        probe.on_train_batch_end(trainer, module, None, None, batch_idx)
        batch_idx += 1
    record = probe.record
    assert batch_idx == 6 and [it["full"] for it in record["iterations"]] == [False, False, True] * 2
    assert record["params"] == 20
    if record["hwm_reset"]:  # /proc/self/clear_refs: the high-water mark starts at the first iteration
        assert record["rss_peak_growth_bytes"] >= 200 * 2**20
