"""Offline and without weights: one line per missing file, FID/KID/LPIPS skipped, shapes scores computed."""

from __future__ import annotations

import json

import pytest

from imtrans.callbacks import Evaluation
from imtrans.metrics import weights as W
from imtrans.run import train
from tests.helpers import compose_config, tiny_run_overrides
from tests.metrics.conftest import without_group_metrics
from tests.metrics.toy import ToyMultimodal


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty TORCH_HOME and a network that reaches nothing (downloads allowed, and tried)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    monkeypatch.setenv("IMTRANS_METRICS_DOWNLOAD", "1")
    tried = []
    monkeypatch.setattr(W, "_reachable", lambda url, timeout=5.0: tried.append(url) or False)
    return tried


def test_notice_and_shapes_scores_without_weights(tmp_path, offline, capfd):
    cfg = compose_config(
        tiny_run_overrides(
            "cyclegan", "shapes", iters=2, extra=["callbacks.sample_grid=null", *without_group_metrics()]
        ),
        output_dir=tmp_path,
    )
    callback = Evaluation(protocol="quick", overrides={"num_inputs": 4}, every_n_iters=2, batch_size=4)
    train(cfg, extra_callbacks=[callback])
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if "skipped" in line and line.startswith("imtrans:")]
    assert len(lines) == 2, err[-3000:]  # once per file for the whole run (fit and test)
    hub = tmp_path / "empty_torch_home" / "hub" / "checkpoints"
    assert any(W.INCEPTION.filename in line and str(hub) in line and "FID and KID" in line for line in lines)
    assert any(W.ALEXNET.filename in line and "LPIPS" in line for line in lines)
    assert sorted(offline) == sorted([W.INCEPTION.url, W.ALEXNET.url])  # one try each
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert 0 <= metrics["test/a2b/content_iou"] <= 1 and 0 <= metrics["test/b2a/outline_iou"] <= 1
    assert not [
        k for k in metrics if k.rsplit("/", 1)[-1] in ("fid", "kid", "kid_std", "lpips_div", "lpips_gt")
    ]
    assert callback.protocol_record()["weights"] == {
        "inception": "missing: metrics skipped",
        "alexnet": "missing: metrics skipped",
    }


def test_weights_dir_is_searched_first(tmp_path, metric_weights, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / W.ALEXNET.filename).symlink_to(metric_weights["alexnet"])
    assert W.resolve_weights("alexnet", tmp_path / "w") == tmp_path / "w" / W.ALEXNET.filename
    assert W.resolve_weights("inception", tmp_path / "w") is None  # IMTRANS_METRICS_DOWNLOAD=0: no try
    assert "metrics.weights_dir" in W.missing_notice("inception", tmp_path / "w")


def test_multimodal_shapes_scores_offline(offline):
    """Without any network the multimodal shapes scores (content kept, style spread) still come out."""
    from imtrans.data.shapes import ShapesDataset
    from imtrans.metrics import Evaluator, get_protocol, module_sampler

    ev = Evaluator(get_protocol("quick", {"num_inputs": 4, "samples_per_input": 3}), notify=None)
    ev.prepare()
    assert len(ev.notices) == 2
    data = ShapesDataset("val", 8, size=32)
    scores = ev.evaluate_direction(
        module_sampler(ToyMultimodal(), "a2b"), data, "A", "B", reference=data, multimodal=True
    )
    assert set(scores) == {"content_iou", "style_div_fg", "style_div_bg", "n_inputs"}
    assert scores["style_div_fg"] > 0


def test_evaluation_follows_the_generator_ema_switch():
    """With an EMA kept, evaluation translates with it; ``use_ema=false`` evaluates the raw weights."""
    module = ToyMultimodal()
    module.enable_ema()
    for use_ema in (True, False):
        with Evaluation(use_ema=use_ema)._generator_weights(module):
            assert module.use_ema is use_ema
        assert module.use_ema is True
