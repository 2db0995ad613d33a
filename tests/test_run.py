"""End-to-end runs through ``imtrans.run``: outputs, checkpoint reload, DDP agreement, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from PIL import Image

from imtrans.load import load_model
from imtrans.run import train
from tests.helpers import compose_config, run_imtrans, tiny_run_overrides

REPO = Path(__file__).resolve().parents[1]
RUNS = [("cyclegan", "shapes"), ("pix2pix", "shapes_paired")]


@pytest.mark.parametrize(("model", "data"), RUNS)
def test_short_run_writes_outputs_and_reloads(model, data, tmp_path):
    cfg = compose_config(tiny_run_overrides(model, data, iters=4), output_dir=tmp_path)
    train(cfg)
    for name in (
        "config.yaml",
        "checkpoints/last.ckpt",
        "metrics.json",
        "samples/iter_0000002.png",
        "samples/iter_0000004.png",
        "samples/test.png",
    ):
        assert (tmp_path / name).is_file(), name
    assert not (tmp_path / "checkpoints" / "last.ckpt.tmp").exists()
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["iteration"] == 4
    if model == "cyclegan":
        assert {"test/a2b/cycle_l1", "test/b2a/cycle_l1"} <= set(metrics)
    else:
        assert {"test/a2b/l1", "test/a2b/psnr"} <= set(metrics)
    grid = Image.open(tmp_path / "samples" / "test.png")
    assert grid.mode == "RGB" and grid.size[0] > 32 * 2

    restored = load_model(tmp_path)  # a run directory or the checkpoint itself
    assert restored.iteration == 4
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    for direction in restored.directions:
        y = restored.translate(x, direction)
        assert y.shape == (3, 3, 32, 32) and y.dtype == torch.float32
        assert y.min() >= -1 and y.max() <= 1
        assert restored.translate(x, direction, num_samples=2).shape == (3, 2, 3, 32, 32)
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    assert all(torch.equal(v, ckpt["state_dict"][k]) for k, v in restored.state_dict().items())
    assert len(ckpt["optimizer_states"]) == 2


def test_pix2pix_l1_falls_on_shapes(tmp_path):
    losses = []

    class Record(L.Callback):
        def on_train_batch_end(self, trainer, module, *_):
            losses.append(float(trainer.callback_metrics["train/l1"]))

    extra = ["data.batch_size=4", "callbacks.sample_grid=null", "callbacks.last_checkpoint=null", "task=fit"]
    cfg = compose_config(
        tiny_run_overrides("pix2pix", "shapes_paired", iters=150, extra=extra), output_dir=tmp_path
    )
    train(cfg, extra_callbacks=[Record()])
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < 0.6 * first, (first, last)


class SaveRankParams(L.Callback):
    def __init__(self, out: Path):
        self.out = out

    def on_train_start(self, trainer, module):
        if trainer.global_rank == 0:
            torch.save(
                {k: v.detach().cpu().clone() for k, v in module.named_parameters()}, self.out / "init.pt"
            )

    def on_train_end(self, trainer, module):
        # Parameters only: BatchNorm running statistics are rank-local between DDP's buffer
        # broadcasts (rank 0's are the ones checkpointed), as in any DDP training.
        state = {k: v.detach().cpu() for k, v in module.named_parameters()}
        state["iteration"] = torch.tensor(module.iteration)
        torch.save(state, self.out / f"rank{trainer.global_rank}.pt")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "data"), [*RUNS, ("bicyclegan", "shapes_paired"), ("ugatit", "shapes"), ("cut", "shapes")]
)
def test_two_process_ddp_keeps_parameters_identical(model, data, tmp_path):
    """2 processes (fork, gloo), each on its own shard of the data: after training every
    parameter is identical on both ranks, and training changed them."""
    extra = ["trainer=ddp_cpu", "data.batch_size=2", "callbacks.sample_grid=null"]
    cfg = compose_config(tiny_run_overrides(model, data, iters=3, extra=extra), output_dir=tmp_path)
    train(cfg, extra_callbacks=[SaveRankParams(tmp_path)])
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    init = torch.load(tmp_path / "init.pt")
    assert r0.keys() == r1.keys()
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
    assert r0.pop("iteration").item() == 3
    changed = [k for k in init if not torch.equal(r0[k], init[k])]
    assert len(changed) > len(init) // 2
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file() and (tmp_path / "metrics.json").is_file()


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        ["model=cyclegan", "data=shapes", "trainer=ddp_cpu", "iters=4"],
        ["model=pix2pix", "data=shapes_paired", "trainer=cpu", "iters=4"],
        ["model=bicyclegan", "data=shapes_paired", "trainer=ddp_cpu", "iters=4"],
    ],
    ids=["cyclegan-ddp_cpu", "pix2pix-cpu", "bicyclegan-ddp_cpu"],
)
def test_acceptance_commands(args, tmp_path):
    """The issue's commands, verbatim, from a directory outside the repository."""
    # WANDB_MODE unset: the default logger (W&B) must go offline by itself, never wait.
    res = run_imtrans([*args, f"hydra.run.dir={tmp_path}/run"], cwd=tmp_path, WANDB_MODE=None, WANDB_DIR=None)
    assert res.returncode == 0, res.stderr[-3000:]
    run = tmp_path / "run"
    for name in ("config.yaml", "checkpoints/last.ckpt", "metrics.json", "samples/test.png"):
        assert (run / name).is_file(), name
    assert json.loads((run / "metrics.json").read_text())["iteration"] == 4
    assert "metrics.json" in res.stdout + res.stderr
    # nothing the user cannot act on: third-party tips, banners, deprecation notes, worker warnings
    for noise in (
        "Tip:",
        "litlogger",
        "LeafSpec",
        "wandb:",
        "`weights_only`",
        "GPU available",
        "worker processes",
    ):
        assert noise not in res.stdout + res.stderr, noise
    assert list((run / "wandb").glob("offline-run-*/files")), "W&B offline run folder missing"
    # the final scores and the metrics protocol are in the W&B run's summary: an offline run
    # keeps it in its record files, where only the summary update carries the metrics.json key
    # `fit_seconds`. Under ddp_cpu fit, test and the launching process each write a part of the
    # one run (one id), in folders of their own.
    records = [p.read_bytes() for p in (run / "wandb").glob("offline-run-*/run-*.wandb")]
    assert len({p.name for p in (run / "wandb").glob("offline-run-*/run-*.wandb")}) == 1, "one W&B run id"
    assert any(b"fit_seconds" in r for r in records)
    assert any(b"metrics_protocol" in r for r in records), "the metrics protocol is not in the W&B summary"
    # the sample grids reach the W&B media panel as real (uint8, non-black) images
    # (under ddp_cpu they are logged from the forked rank-0 worker)
    panels = list((run / "wandb").glob("offline-run-*/files/media/images/**/*.png"))
    assert panels, "no image panel in the W&B run"
    assert not (tmp_path / "wandb").exists(), "W&B files written to the working directory"
    for panel in panels:
        pixels = torch.tensor(list(Image.open(panel).convert("L").getdata()), dtype=torch.float32)
        assert pixels.mean() > 20 and pixels.std() > 5, panel


def test_bad_data_fails_before_training_with_one_line(tmp_path):
    """A data set without trainB/ stops the run before any model is built: exit 2, one line."""
    root = tmp_path / "horse2zebra"
    for split in ("trainA", "testA", "testB"):
        (root / split).mkdir(parents=True)
        Image.new("RGB", (32, 32), "white").save(root / split / "0.png")
    res = run_imtrans(
        [
            "model=cyclegan",
            "data=unpaired",
            f"data.root={root}",
            "logger=none",
            f"hydra.run.dir={tmp_path}/run",
        ],
        cwd=tmp_path,
    )
    assert res.returncode == 2, res.stderr[-2000:]
    errors = [line for line in res.stderr.splitlines() if line.startswith("imtrans: data error:")]
    assert len(errors) == 1 and str(root / "trainB") in errors[0], res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.slow
def test_wheel_ships_the_configs(tmp_path):
    """A non-editable install carries the Hydra tree inside the package."""
    import zipfile

    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    (wheel,) = tmp_path.glob("imtrans-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    conf = {p.relative_to(REPO).as_posix() for p in (REPO / "imtrans" / "conf").rglob("*.yaml")}
    assert conf and conf <= names, sorted(conf - names)
    assert "imtrans/run.py" in names


def test_tensorboard_gets_the_sample_grids_as_uint8_images(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    extra = ["logger=tensorboard", "metrics=none", "callbacks.sample_grid.every_n_iters=2"]
    train(compose_config(tiny_run_overrides("cyclegan", "shapes", iters=2, extra=extra), output_dir=tmp_path))
    acc = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"images": 0})
    acc.Reload()
    assert {"samples/iter", "samples/test"} <= set(acc.Tags()["images"])
    (grid,) = acc.Images("samples/iter")
    assert grid.step == 2
    from io import BytesIO

    image = Image.open(BytesIO(grid.encoded_image_string))
    assert image.mode == "RGB" and image.size == Image.open(tmp_path / "samples" / "iter_0000002.png").size
    pixels = torch.tensor(list(image.convert("L").getdata()), dtype=torch.float32)
    assert pixels.mean() > 20 and pixels.std() > 5
