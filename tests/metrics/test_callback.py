"""The Evaluation callback inside a real run: FID/KID equal torch-fidelity's, best checkpoint,
no metric state in checkpoints, scores and protocol in the outputs."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from PIL import Image

import imtrans.run
from imtrans.callbacks import Evaluation
from imtrans.load import load_model
from imtrans.metrics import module_sampler
from imtrans.metrics.networks import to_uint8
from imtrans.run import train
from tests.helpers import compose_config, tiny_run_overrides
from tests.metrics.conftest import without_group_metrics

N = 4  # inputs and reference images per direction: Inception on a handful of images only
SETTINGS = dict(
    protocol="quick",
    overrides={"num_inputs": N, "num_reference": N},
    every_n_iters=2,
    batch_size=4,
    monitor="val/a2b/fid",
)


# imtrans.run with the issue-4 change: metrics group instantiated, protocol/val/best in metrics.json
RUN_PUBLISHES = hasattr(imtrans.run, "_metrics_callback")


def make_callback(out_dir, cls=Evaluation, **changes):
    return cls(**{**SETTINGS, "best_checkpoint": str(out_dir / "checkpoints" / "best.ckpt"), **changes})


@pytest.fixture(scope="module")
def run(tmp_path_factory, metric_weights):
    out = tmp_path_factory.mktemp("eval_run")
    mp = pytest.MonkeyPatch()
    mp.setenv("IMTRANS_METRICS_DOWNLOAD", "0")
    mp.setenv("TORCH_HOME", str(metric_weights["inception"].parents[2]))
    try:
        cfg = compose_config(
            tiny_run_overrides(
                "cyclegan", "shapes", iters=2, extra=["callbacks.sample_grid=null", *without_group_metrics()]
            ),
            output_dir=out,
        )
        if RUN_PUBLISHES:
            cfg.optimized_metric = "val/a2b/fid"
        callback = make_callback(out)
        callback.returned = train(cfg, extra_callbacks=[callback])
    finally:
        mp.undo()
    return out, callback


def test_scores_published_per_direction(run):
    out, callback = run
    metrics = json.loads((out / "metrics.json").read_text())
    for direction in ("a2b", "b2a"):
        for score in ("fid", "kid", "kid_std", "n_inputs", "n_reference"):
            assert f"test/{direction}/{score}" in metrics, (direction, score)
    assert {"test/a2b/content_iou", "test/b2a/outline_iou"} <= set(metrics)
    assert "test/a2b/lpips_div" not in metrics  # CycleGAN is deterministic
    assert metrics["test/a2b/n_inputs"] == N and metrics["test/a2b/fid"] > 0
    (csv_file,) = out.rglob("metrics.csv")
    rows = list(csv.DictReader(csv_file.open()))
    assert any(row.get("val/a2b/fid") for row in rows), "fit-time scores were not logged"
    record = callback.protocol_record()
    json.dumps(record)
    assert record["name"] == "quick" and record["overrides"] == {"num_inputs": N, "num_reference": N}
    assert record["weights"]["inception"].endswith("weights-inception-2015-12-05-6726825d.pth")


def test_fid_kid_equal_torch_fidelity_on_the_same_images(run, tmp_path, metric_weights):
    import torch_fidelity

    out, callback = run
    model = load_model(out)
    from imtrans.data.shapes import ShapesDataset

    test = ShapesDataset("test", N, size=32)
    for direction, src, tgt in (("a2b", "A", "B"),):  # one direction: torch-fidelity's FID costs ~5 s
        x = torch.stack([test[i][src] for i in range(N)])
        fake = module_sampler(model, direction, callback.protocol.seed)(x, torch.arange(N), 1)[:, 0]
        real = torch.stack([test[i][tgt] for i in range(N)])
        dirs = {}
        for name, images in (("fake", fake), ("real", real)):
            dirs[name] = tmp_path / direction / name
            dirs[name].mkdir(parents=True)
            for i, im in enumerate(to_uint8(images)):
                Image.fromarray(im.permute(1, 2, 0).numpy()).save(dirs[name] / f"{i:03d}.png")
        ref = torch_fidelity.calculate_metrics(
            input1=str(dirs["fake"]),
            input2=str(dirs["real"]),
            fid=True,
            kid=True,
            kid_subset_size=N,
            cuda=False,
            save_cpu_ram=True,
            cache=False,
            verbose=False,
            feature_extractor_weights_path=str(metric_weights["inception"]),
        )
        ours = callback.last_scores  # KID: torch-fidelity's kernels are float32 (abs 1e-7), ours float64
        assert ours[f"test/{direction}/fid"] == pytest.approx(ref["frechet_inception_distance"], rel=1e-5)
        assert ours[f"test/{direction}/kid"] == pytest.approx(
            ref["kernel_inception_distance_mean"], rel=1e-4, abs=1e-7
        )


def test_best_checkpoint_and_no_metric_state_in_checkpoints(run):
    out, callback = run
    assert callback.best_iteration == 2 and callback.best_score is not None
    for name in ("last.ckpt", "best.ckpt"):
        path = out / "checkpoints" / name
        ckpt = torch.load(path, weights_only=False)
        assert not [k for k in ckpt["state_dict"] if "inception" in k or "lpips" in k or "lins" in k]
        states = [v for k, v in ckpt["callbacks"].items() if "Evaluation" in k]
        assert states and set(states[0]) == {"best_score", "best_iteration", "best_scores"}
        # size check: the module's weights, two Adam moments each, and a little bookkeeping;
        # Inception alone would add 96 MB, LPIPS-alex 10 MB
        weights = sum(v.numel() * v.element_size() for v in ckpt["state_dict"].values())
        assert path.stat().st_size < 3 * weights + 200_000, (path.stat().st_size, weights)


@pytest.mark.skipif(not RUN_PUBLISHES, reason="needs the imtrans.run change of issue 4")
def test_metrics_json_holds_protocol_val_and_best(run):
    out, callback = run
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["metrics_protocol"]["name"] == "quick"
    assert metrics["fid_features"] == "torch_fidelity_inception"  # the network behind the FIDs
    assert metrics["metrics_protocol"]["overrides"] == {"num_inputs": N, "num_reference": N}
    assert "val/a2b/fid" in metrics and metrics["best/val/a2b/fid"] == pytest.approx(
        callback.best_score, rel=1e-6
    )
    assert callback.returned == pytest.approx(callback.best_score, rel=1e-6)  # what a sweeper receives
