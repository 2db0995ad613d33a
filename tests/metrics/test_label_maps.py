"""FID/KID and the paired scores for a method whose inputs are label maps (pix2pixHD on the
Cityscapes sample): the Evaluation callback feeds it through ``grid_inputs``."""

from __future__ import annotations

import json
import math

import pytest

from imtrans.callbacks import Evaluation
from imtrans.run import train
from tests.helpers import compose_config
from tests.methods.test_pix2pixhd import CITYSCAPES, run_overrides


@pytest.mark.skipif(not CITYSCAPES.is_dir(), reason="../shared/data/cityscapes_sample missing")
def test_pix2pixhd_is_scored_on_label_maps(tmp_path, metric_weights):
    # the sample's val/test label maps have no photos: score on (un-augmented) train items
    callback = Evaluation(
        protocol="quick",
        overrides={"num_inputs": 2, "num_reference": 2},
        every_n_iters=2,
        fit_split="train",
    )
    cfg = compose_config(
        run_overrides(iters=2, extra=["loss.weights.vgg=0", "callbacks.sample_grid=null", "metrics=none"]),
        output_dir=tmp_path,
    )
    train(cfg, extra_callbacks=[callback])
    scores = json.loads((tmp_path / "metrics.json").read_text())
    for name in ("fid", "kid", "psnr_8bit", "ssim", "lpips_gt"):
        assert math.isfinite(scores[f"val/a2b/{name}"]), name
    assert scores["val/a2b/n_inputs"] == 2
