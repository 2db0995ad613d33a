"""Helpers shared by the tests: config composition and small runs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

import imtrans  # noqa: F401  (registers the resolvers)


def compose_config(overrides: list[str] | None = None, output_dir: str | Path | None = None) -> DictConfig:
    """Compose ``imtrans/conf/config.yaml`` as ``python -m imtrans.run <overrides>`` would.

    The Hydra node is kept and registered so ``${hydra:...}`` interpolations resolve;
    ``paths.output_dir`` points at ``output_dir`` (a pytest tmp dir) when given.
    """
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="imtrans.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides or [], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    if output_dir is not None:
        with open_dict(cfg):
            cfg.paths.output_dir = str(output_dir)
    return cfg


# Small networks at 32 px, so that a few iterations take seconds on one CPU thread.
TINY = {
    "cyclegan": [
        "model.generator.ngf=8",
        "model.generator.n_blocks=1",
        "model.discriminator.ndf=8",
        "model.discriminator.n_layers=2",
        "model.pool_size=4",
    ],
    "pix2pix": ["model.generator.ngf=8", "model.discriminator.ndf=8", "model.discriminator.n_layers=2"],
    "bicyclegan": ["model.generator.ngf=4", "model.discriminator.ndf=4", "model.encoder.ndf=4"],
    "munit": [
        "model.generator.dim=4",
        "model.generator.n_res=1",
        "model.generator.mlp_dim=16",
        "model.discriminator.dim=4",
        "model.discriminator.n_layer=2",
        "model.discriminator.num_scales=2",
    ],
}
TINY["unit"] = [o for o in TINY["munit"] if "mlp_dim" not in o]
# U-GAT-IT's global D (7 layers) needs >= 96 px: 6 layers at 64 px.
TINY["ugatit"] = [
    "model.generator.ngf=4",
    "model.generator.n_blocks=1",
    "model.global_discriminator.ndf=4",
    "model.global_discriminator.n_layers=6",
    "model.local_discriminator.ndf=4",
]
# CUT: 5 residual blocks keep the official nce_layers (16 = the fifth block's output).
TINY["cut"] = [
    "model.generator.ngf=4",
    "model.generator.n_blocks=5",
    "model.discriminator.ndf=4",
    "model.discriminator.n_layers=2",
    "model.feature_net.nc=16",
]
# Image size of the tiny runs: BicycleGAN's z-U-Net needs at least 6 levels (64 px), U-GAT-IT's
# global discriminator 64 px with 6 layers.
SIZE = {"bicyclegan": 64, "ugatit": 64}


def random_batch(seed: int = 0, n: int = 2, size: int = 32) -> dict:
    """An unpaired batch ``{"A", "B"}`` of seeded uniform noise in [-1, 1], N x 3 x size x size."""
    import torch

    g = torch.Generator().manual_seed(seed)
    return {
        "A": torch.rand(n, 3, size, size, generator=g) * 2 - 1,
        "B": torch.rand(n, 3, size, size, generator=g) * 2 - 1,
    }


# fp16 on the CPU: Lightning would turn `16-mixed` into bf16 there, so pass the plugin.
FP16_CPU = [
    "trainer.precision=null",
    "+trainer.plugins=[{_target_:imtrans.precision.PerUpdateScalerPrecision,device:cpu}]",
]


def tiny_run_overrides(model: str, data: str, iters: int = 4, extra: list[str] | None = None) -> list[str]:
    return [
        f"model={model}",
        f"data={data}",
        f"data.size={SIZE.get(model, 32)}",
        "data.num_fixed=2",
        "data.val_size=4",
        "trainer=cpu",
        "logger=csv",
        f"iters={iters}",
        "callbacks.progress_bar=null",
        "callbacks.sample_grid.every_n_iters=2",
        "trainer.enable_model_summary=false",
        *TINY[model],
        *(extra or []),
    ]


def train_one_step(model, batch, logged: dict | None = None) -> None:
    """One ``training_step`` outside a Trainer (manual optimisation needs a few stubs):
    optimizers from ``configure_optimizers``, logging switched off (or into ``logged``:
    name -> float of every ``log`` / ``log_dict`` call)."""
    import lightning as L

    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.strategy.connect(model)
    trainer.strategy._lightning_optimizers = None
    model.trainer = trainer
    opts = model.configure_optimizers()
    trainer.strategy.optimizers = opts[0] if isinstance(opts, tuple) else opts
    model.log_dict = model.log = lambda *a, **k: None
    if logged is not None:
        model.log = lambda name, value, *a, **k: logged.__setitem__(name, float(value))
        model.log_dict = lambda values, *a, **k: logged.update({n: float(v) for n, v in values.items()})
    model.training_step(batch, 0)


def module_and_batch(method: str, tmp_path: Path):
    """A tiny ``method`` (``method_overrides``) built under seed 0 and its first training batch:
    the start of tests that compare one training step under two settings."""
    import hydra
    import torch

    cfg = compose_config(method_overrides(method, tmp_path, 1, ["metrics=none"]))
    data = hydra.utils.instantiate(cfg.data)
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    torch.manual_seed(0)
    return hydra.utils.instantiate(cfg.model), batch


#: every method, each with a tiny configuration (``method_overrides``)
METHODS = [
    "cyclegan",
    "pix2pix",
    "bicyclegan",
    "munit",
    "unit",
    "drit",
    "drit_multi",
    "pix2pixhd",
    "ugatit",
    "cut",
    "stargan_v2",
    "spade",
]


def method_overrides(model: str, tmp_path: Path, iters: int, extra: list[str] | None = None) -> list[str]:
    """A tiny run of any of ``METHODS``: the image methods on the shapes data (32-64 px),
    DRIT++ multi-domain on a few generated domain folders, pix2pixHD on the Cityscapes sample
    of ``../shared/data`` (without its VGG loss), SPADE on a tiny Cityscapes-like set written
    into ``tmp_path`` (32 x 256, without its VGG loss)."""
    from tests.methods import test_drit, test_pix2pixhd  # they import this module

    extra = list(extra or [])
    if model == "drit":
        return test_drit._overrides(tmp_path, iters, extra)
    if model == "drit_multi":
        test_drit.make_domains(tmp_path / "data")
        return [
            "model=drit_multi", "data=domains", f"data.root={tmp_path}/data", "data.load_size=36",
            "data.crop_size=32", "data.num_workers=0", "data.batch_size=2", "data.num_fixed=2", "trainer=cpu",
            "logger=csv", f"iters={iters}", "callbacks.progress_bar=null", "trainer.enable_model_summary=false",
            *test_drit.TINY_MULTI, *extra,
        ]  # fmt: skip
    if model == "stargan_v2":  # folder-per-domain data, like drit_multi
        from tests.methods import test_stargan_v2

        return test_stargan_v2.run_overrides(tmp_path, iters, extra)
    if model == "pix2pixhd":
        return test_pix2pixhd.run_overrides(iters=iters, extra=["loss.weights.vgg=0", *extra])
    if model == "spade":  # a tiny Cityscapes-like set written into tmp_path, without the VGG loss
        from tests.methods import test_spade

        return test_spade.run_overrides(tmp_path, iters, ["loss.weights.vgg=0", *extra])
    data = {
        "cyclegan": "shapes",
        "munit": "shapes",
        "unit": "shapes",
        "ugatit": "shapes",
        "cut": "shapes",
    }.get(model, "shapes_paired")
    batch = ["data.batch_size=2"] if model == "bicyclegan" else []
    return tiny_run_overrides(model, data, iters=iters, extra=[*batch, *extra])


def run_imtrans(args: list[str], cwd: Path, timeout: int = 600, **env_changes) -> subprocess.CompletedProcess:
    """``python -m imtrans.run <args>`` to its end, output captured, one thread; ``env_changes``
    set environment variables (``None`` removes one)."""
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(repo), **env_changes}
    env = {k: v for k, v in env.items() if v is not None}
    return subprocess.run(
        [sys.executable, "-m", "imtrans.run", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@contextlib.contextmanager
def run_process(args: list[str], cwd: Path):
    """``python -m imtrans.run <args>`` as a terminal job runs it: its own process group, one
    thread, stdout/stderr piped (read them with ``communicate``). Yields the ``Popen``; whatever
    of the group still runs at exit is killed."""
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(repo)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "imtrans.run", *args],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def wait_for_file(path: Path, proc: subprocess.Popen, seconds: float = 120) -> None:
    """Wait until ``path`` exists (training is under way once the first checkpoint does) or
    ``proc`` ends; fails when it does not appear within ``seconds``."""
    for _ in range(int(seconds * 10)):
        if path.is_file() or proc.poll() is not None:
            break
        time.sleep(0.1)
    assert path.is_file(), f"no {path.name} within {seconds:g} s"
