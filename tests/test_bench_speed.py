"""experiments/bench_speed.py's profile by network: each backward node is charged to the network
whose forward made it (the benchmark's explanation of where an iteration's time goes rests on it)."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn

from experiments.bench_speed import Profiled


class _Pair(nn.Module):
    """A G of one wide conv (the expensive network) and a D of one narrow conv."""

    def __init__(self):
        super().__init__()
        self.G = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 3, 3, padding=1))
        self.D = nn.Sequential(nn.Conv2d(3, 1, 3))
        self.iteration = 0


def test_backward_is_charged_to_the_network_that_made_it():
    torch.manual_seed(0)
    pair, x = _Pair(), torch.randn(1, 3, 48, 48)
    opt = torch.optim.Adam(pair.G.parameters())
    # a warm-up pass outside the profile: the first call of each convolution builds its oneDNN
    # kernels, which would otherwise be charged to whichever network ran first
    pair.D(pair.G(x)).square().mean().backward()
    pair.zero_grad(set_to_none=True)
    profiled = Profiled(at=1)
    profiled.on_train_batch_start(SimpleNamespace(callbacks=[]), pair, None, 0)
    pair.D.requires_grad_(False)  # G's update: D frozen, its input gradients still computed
    loss = pair.D(pair.G(x)).square().mean()
    loss.backward()
    opt.step()
    pair.iteration = 1
    profiled.on_train_batch_end(None, pair, None, None, 0)

    summary = profiled.summary
    assert set(summary["forward_s"]) == {"G", "D"}
    backward = summary["backward_s"]
    # G's two convolutions dominate the backward; D's (input gradients only) is there but small
    assert backward["G"] > 3 * backward["D"] > 0
    assert set(backward) <= {"G", "D", "outside the networks"}  # the loss's square and mean
    assert summary["optimizer_s"] > 0
    assert 0 < sum(summary["forward_s"].values()) + sum(backward.values()) < summary["wall_s"]
    # the hooks are gone after the profiled iteration
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in pair.modules())


def test_each_variant_runs_in_its_own_process_and_cache_file():
    """The child command gets exactly one method and one variant; cache files keep threads apart."""
    from experiments.bench_speed import child_args, result_name

    argv = ["--methods", "cut,munit", "--variants=fp32,best", "--threads", "1", "--official", "MUNIT=/x"]
    assert child_args(argv) == ["--threads", "1", "--official", "MUNIT=/x"]
    assert result_name("fp32", 128, 1, 1) != result_name("fp32", 128, 1, 2)


def test_best_here_does_not_pick_a_slower_compiled_variant():
    """`best here` is the fastest measured candidate (by its ratio to the interleaved official
    steps): on a CPU where compile is slower, the eager combination is picked and named."""
    from experiments.bench_speed import best_cell

    def cell(ours, official):
        return {"ours": [ours] * 3, "official": [official] * 3}

    by = {
        ("munit", "best"): cell(1.04, 1.8),
        ("munit", "best_eager"): cell(0.95, 1.8),
        ("munit", "bf16"): cell(1.0, 1.8),
    }
    assert best_cell(by, "munit") == "0.53x `best_eager`"
    by[("munit", "best")] = cell(0.7, 1.8)
    assert best_cell(by, "munit") == "0.39x `best`"
    assert best_cell({}, "munit") == "-"
    # without the official code (no --official): the fastest by seconds
    alone = {("cut", "best"): cell(0.9, None), ("cut", "bf16"): cell(0.8, None)}
    for r in alone.values():
        r["official"] = []
    assert best_cell(alone, "cut") == "0.80 s `bf16`"


def test_every_best_candidate_is_a_variant_and_composes_into_the_switches():
    """The variants are Hydra overrides of the trainer: each candidate of `best here` composes,
    and `bf16_compile_nchw` hands inductor its layout option through trainer.compile_options."""
    from experiments.bench_speed import BEST_CANDIDATES, VARIANTS
    from imtrans.callbacks.speed import split_trainer_config
    from tests.helpers import compose_config

    assert set(BEST_CANDIDATES) <= set(VARIANTS)
    for name in BEST_CANDIDATES:
        cfg = compose_config(["trainer=cpu", *VARIANTS[name]])
        assert cfg.trainer.precision == "bf16-mixed", name
    _, switches = split_trainer_config(
        dict(compose_config(["trainer=cpu", *VARIANTS["bf16_compile_nchw"]]).trainer)
    )
    assert switches.compile and not switches.channels_last
    assert switches.compile_kwargs["options"] == {"layout_optimization": False}
