"""``should_stop`` (Ctrl-C / SIGTERM in a run) ends an evaluation after the current block of
inputs: a direction under way reports nothing, the multi-domain tasks completed before keep
their scores (without the mean of a mode cut short), and two processes stop at the same block
even when only one was asked."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from pathlib import Path

import pytest
import torch

from imtrans.data import DomainsDataModule
from imtrans.data.shapes import ShapesDataset
from imtrans.metrics import Evaluator, get_protocol, module_sampler
from imtrans.metrics.evaluator import EvaluationStopped, evaluate_domain_tasks
from tests.methods.test_drit import make_domains
from tests.metrics.test_skipped_work import Counting, count_translate
from tests.metrics.test_stargan_v2_protocol import ToyDomains
from tests.metrics.toy import ToyMultimodal


class StopAfter:
    """``should_stop``: True once ``calls`` has reached ``n`` entries."""

    def __init__(self, calls: list, n: int):
        self.calls, self.n = calls, n

    def __call__(self) -> bool:
        return len(self.calls) >= self.n


def test_a_direction_stops_after_the_current_block(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))  # shapes scores only
    protocol = get_protocol("quick", {"num_inputs": 8, "samples_per_input": 2})
    sampler = Counting(module_sampler(ToyMultimodal(), "a2b"))
    ev = Evaluator(protocol, batch_size=2, notify=None, should_stop=StopAfter(sampler.calls, 1))
    ev.prepare()
    shapes = ShapesDataset("val", 8, size=32)
    with pytest.raises(EvaluationStopped) as info:
        ev.evaluate_direction(sampler, shapes, "A", "B", multimodal=True)
    assert sampler.calls == [(2, 2)]  # the block under way finished, no other started
    assert info.value.scores == {}  # never a score over part of the inputs
    ev.should_stop = lambda: False  # not asked: every block, every score
    assert ev.evaluate_direction(sampler, shapes, "A", "B", multimodal=True)["n_inputs"] == 8


def test_completed_tasks_keep_their_scores(tmp_path):
    """LPIPS diversity (random AlexNet) per task; the stop comes during the first task's only
    block: that task completes, the next one does not start, and the latent mode, cut short,
    has no mean."""
    make_domains(tmp_path / "data", domains=("cat", "dog"), n=2, size=32)
    dm = DomainsDataModule(tmp_path / "data", load_size=32, crop_size=32, flip=False, verify="none")
    protocol = get_protocol("quick", {"samples_per_input": 2, "num_inputs": 2})
    model = ToyDomains()
    model.num_domains = 2
    calls = []
    count_translate(model, calls.append)
    ev = Evaluator(protocol, batch_size=2, notify=None, fid=False, kid=False, should_stop=StopAfter(calls, 1))
    ev.prepare()
    inputs = dm.dataset("test")
    with pytest.raises(EvaluationStopped) as info:
        evaluate_domain_tasks(ev, model, inputs, dm.dataset("train"), ["cat", "dog"], "train")
    assert len(calls) == 1
    assert set(info.value.scores) == {"latent/dog2cat/lpips_div", "latent/dog2cat/n_inputs"}
    ev.should_stop = None
    full = evaluate_domain_tasks(ev, model, inputs, dm.dataset("train"), ["cat", "dog"], "train")
    assert full["latent/dog2cat/lpips_div"] == info.value.scores["latent/dog2cat/lpips_div"]
    assert "latent/mean/lpips_div" in full and "reference/mean/n_tasks" in full


def _rank(out: str, rank: int) -> None:
    """Rank 1 alone is asked to stop once it has translated a block; both must stop together."""
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"file://{out}/pg", rank=rank, world_size=2)
    sampler = Counting(module_sampler(ToyMultimodal(), "a2b"))
    asked = StopAfter(sampler.calls, 1) if rank == 1 else (lambda: False)
    ev = Evaluator(get_protocol("quick", {"num_inputs": 8}), batch_size=2, notify=None, should_stop=asked)
    ev.settle({"inception": False, "alexnet": False}, notify=False)
    shapes = ShapesDataset("val", 8, size=32)
    try:
        ev.evaluate_direction(sampler, shapes, "B", "A", multimodal=False)
        result = "finished"
    except EvaluationStopped:
        result = "stopped"
    Path(out, f"rank{rank}.json").write_text(json.dumps({"result": result, "blocks": len(sampler.calls)}))
    torch.distributed.destroy_process_group()


def test_two_processes_stop_at_the_same_block(tmp_path):
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_rank, args=(str(tmp_path), r)) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    alive = [p for p in procs if p.is_alive()]
    for p in alive:  # a rank left waiting in a collective: the failure this guards against
        p.kill()
    assert not alive and [p.exitcode for p in procs] == [0, 0]
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    # 4 blocks, 2 rounds: both ranks translated their block of round 0, neither one of round 1
    assert results == [{"result": "stopped", "blocks": 1}] * 2
