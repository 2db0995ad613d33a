"""Worker of the distributed agreement test: the evaluation engine on one rank of a gloo group."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from imtrans.data.shapes import ShapesDataset
from imtrans.metrics import Evaluator, get_protocol, module_sampler
from tests.metrics.toy import ToyMultimodal

OVERRIDES = {"num_inputs": 6, "num_reference": 5, "samples_per_input": 4}


def evaluate(out: Path, rank: int = 0, world: int = 1, batch_size: int = 2) -> dict:
    """Both directions of the toy multimodal model on paired shapes; writes ``rank<r>.json``."""
    torch.set_num_threads(1)
    if world > 1:
        torch.distributed.init_process_group(
            "gloo", init_method=f"file://{out / 'pg'}", rank=rank, world_size=world
        )
    model = ToyMultimodal(seed=0)
    data = ShapesDataset("test", 16, size=32, paired=True)
    ev = Evaluator(get_protocol("quick", OVERRIDES), batch_size=batch_size, notify=None)
    ev.prepare()
    scores = {}
    for direction, src, tgt in (("a2b", "A", "B"), ("b2a", "B", "A")):
        sampler = module_sampler(model, direction, seed=0)
        result = ev.evaluate_direction(
            sampler, data, src, tgt, reference=data, reference_cache_key="test", multimodal=True, paired=True
        )
        scores.update({f"{direction}/{k}": v for k, v in result.items()})
    (out / f"rank{rank}.json").write_text(json.dumps(scores))
    if world > 1:
        torch.distributed.destroy_process_group()
    return scores


def main(out: str, rank: int, world: int) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    evaluate(Path(out), rank, world)
