"""A configuration that cannot work gets what bad data gets: one line naming the key and the
fix, exit code 2, no Hydra traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from imtrans.errors import ConfigError
from imtrans.run import _user_error, train
from tests.helpers import compose_config, tiny_run_overrides

NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without a GPU")


@NO_GPU
def test_headline_command_without_a_gpu_is_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "imtrans.run", "model=drit", "data=cat2dog", "trainer=ddp", f"hydra.run.dir={tmp_path}"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "imtrans: config error: trainer=ddp needs GPUs (trainer.accelerator=gpu) and torch finds none on this "
        "machine; use trainer=ddp_cpu (DDP over 2 CPU processes) or trainer=cpu"
    )
    assert "Traceback" not in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param(["trainer=gpu"], "trainer=gpu needs GPUs", marks=NO_GPU),
        (
            ["data.crop_size=128"],
            "data.crop_size=128: larger or smaller than the shapes images (data.size=32)",
        ),
        (
            ["model=bicyclegan", "data=shapes_paired", "data.batch_size=3"],
            "data.batch_size=3: BicycleGAN splits",
        ),
        (
            ["metrics.protocol=fid50k"],
            "metrics.protocol=fid50k: not one of munit, bicyclegan, stargan_v2, cut, quick",
        ),
        (
            ["data=unpaired", f"data.root={__file__}/..", "data.load_size=128", "data.crop_size=256"],
            "data.crop_size: 256 is larger than data.load_size 128",
        ),
    ],  # fmt: skip
)
def test_bad_configuration_raises_config_error(overrides, message, tmp_path):
    model = next((o.split("=")[1] for o in overrides if o.startswith("model=")), "cyclegan")
    data = next((o.split("=")[1] for o in overrides if o.startswith("data=")), "shapes")
    rest = [o for o in overrides if not o.startswith(("model=", "data="))]
    if data.startswith("shapes"):
        overrides = tiny_run_overrides(model, data, iters=1, extra=rest)
    else:  # a folder data set: its transform is built (and refused) before any file is read
        overrides = [
            f"model={model}",
            f"data={data}",
            f"data.root={tmp_path}",
            "trainer=cpu",
            "iters=1",
            *rest,
        ]
    cfg = compose_config(overrides, output_dir=tmp_path)
    with pytest.raises(Exception) as info:  # noqa: B017  (Hydra wraps what instantiate raised)
        train(cfg)
    found = _user_error(info.value)  # what the command line reports, in one line
    assert found is not None and found[0] == "config error" and isinstance(found[1], ConfigError)
    assert str(found[1]).startswith(message) and "\n" not in str(found[1])
    assert not (tmp_path / "checkpoints").exists()


def test_cli_reports_a_config_error_in_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "imtrans.run", "model=cyclegan", "data=shapes", "metrics.protocol=fid50k",
         f"hydra.run.dir={tmp_path}", "logger=none"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("imtrans: config error: metrics.protocol=fid50k: not one of")
    assert "Traceback" not in proc.stdout + proc.stderr and "HYDRA_FULL_ERROR" not in proc.stderr
