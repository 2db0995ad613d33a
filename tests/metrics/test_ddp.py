"""One process and two give the same scores (to 1e-6): the engine over raw gloo processes, and
the callback under Lightning's DDP."""

from __future__ import annotations

import json
import multiprocessing as mp

import pytest
import torch

from imtrans.callbacks import Evaluation
from imtrans.run import train
from tests.helpers import compose_config, tiny_run_overrides
from tests.metrics.conftest import without_group_metrics
from tests.metrics.ddp_worker import evaluate, main
from tests.metrics.test_callback import N, make_callback


def _close(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == pytest.approx(b[key], rel=1e-6, abs=1e-9), key


@pytest.mark.slow
def test_engine_one_and_two_processes_agree(tmp_path, metric_weights):
    (tmp_path / "single").mkdir()
    single = evaluate(tmp_path / "single")
    expected = {
        "fid",
        "kid",
        "kid_std",
        "lpips_div",
        "psnr_8bit",
        "ssim",
        "lpips_gt",
        "n_inputs",
        "n_reference",
    }
    assert expected | {"content_iou", "style_div_fg", "style_div_bg"} == {
        k[4:] for k in single if k.startswith("a2b/")
    }
    assert expected | {"outline_iou"} == {k[4:] for k in single if k.startswith("b2a/")}
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=main, args=(str(tmp_path), r, 2)) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    assert [p.exitcode for p in procs] == [0, 0]
    for r in range(2):
        _close(json.loads((tmp_path / f"rank{r}.json").read_text()), single)
    # batch size does not change the style codes either
    _close(evaluate(tmp_path / "single", batch_size=4), single)


class SaveScores(Evaluation):
    """Writes each rank's full-precision test scores next to the run."""

    def on_test_end(self, trainer, pl_module):
        super().on_test_end(trainer, pl_module)
        out = self.best_checkpoint.parent.parent
        (out / f"scores{trainer.global_rank}.json").write_text(json.dumps(self.last_scores))


@pytest.mark.slow
def test_callback_under_lightning_ddp_agrees_with_one_process(tmp_path, metric_weights):
    """``task=test`` of one checkpoint with 1 process and with 2 (fork, gloo); 4 inputs in blocks of 2."""
    runs = {}
    for name, trainer in (("one", "cpu"), ("two", "ddp_cpu")):
        out = tmp_path / name
        extra = ["callbacks.sample_grid=null", f"trainer={trainer}", *without_group_metrics()]
        if name == "two":
            extra += ["task=test", f"ckpt_path={tmp_path / 'one' / 'checkpoints' / 'last.ckpt'}"]
        cfg = compose_config(tiny_run_overrides("cyclegan", "shapes", iters=1, extra=extra), output_dir=out)
        train(cfg, extra_callbacks=[make_callback(out, SaveScores, batch_size=2)])
        runs[name] = out
    one = json.loads((runs["one"] / "scores0.json").read_text())
    assert one["test/a2b/n_inputs"] == N and "test/a2b/fid" in one
    for r in range(2):
        _close(json.loads((runs["two"] / f"scores{r}.json").read_text()), one)
    assert torch.load(runs["one"] / "checkpoints" / "last.ckpt", weights_only=False)
