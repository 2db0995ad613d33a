"""Every config group value composes; wrong values list the choices; presets resolve."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.errors import MissingConfigException
from omegaconf import OmegaConf

from tests.helpers import compose_config

CONF = Path(__file__).resolve().parents[1] / "imtrans" / "conf"
GROUPS = ["data", "model", "loss", "trainer", "logger", "callbacks", "metrics", "experiment", "paths"]


def _choices(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def test_top_level_conf_is_the_package_conf():
    # `conf/` at the repository root is the tree shipped inside the package.
    assert (CONF.parents[1] / "conf" / "config.yaml").resolve() == (CONF / "config.yaml").resolve()


@pytest.mark.parametrize("group", GROUPS)
def test_every_group_value_composes(group, tmp_path):
    choices = _choices(group)
    assert choices, f"config group {group} is empty"
    for choice in choices:
        overrides = [f"{group}={choice}"]
        if group == "loss" and (CONF / "model" / f"{choice}.yaml").is_file():
            overrides.append(f"model={choice}")  # a loss preset may read its model's settings (CUT's mode)
        cfg = compose_config(overrides, output_dir=tmp_path)
        # resolve everything except Hydra's own node: a broken interpolation fails here
        OmegaConf.to_container(cfg.model, resolve=True)
        OmegaConf.to_container(cfg.data, resolve=True)
        OmegaConf.to_container(cfg.trainer, resolve=True)
        assert cfg.hydra.runtime.choices[group] == choice or group == "experiment"


def test_loss_follows_model_and_can_be_overridden():
    assert compose_config(["model=pix2pix"]).loss.weights.l1 == 100
    assert compose_config(["model=cyclegan"]).loss.weights.idt_A == 5
    cfg = compose_config(["model=cyclegan", "loss=pix2pix"])
    assert cfg.hydra.runtime.choices.loss == "pix2pix" and "l1" in cfg.loss.weights


def test_wrong_group_value_lists_the_choices():
    with pytest.raises(MissingConfigException) as err:
        compose_config(["model=cyclegann"])
    message = str(err.value)
    assert "cyclegann" in message and "cyclegan" in message.replace("cyclegann", "") and "pix2pix" in message


def test_trainer_presets():
    ddp = compose_config(["trainer=ddp"]).trainer
    assert ddp.strategy._target_.endswith("DDPStrategy") and ddp.accelerator == "gpu"
    assert ddp.strategy.find_unused_parameters and ddp.strategy.timeout.seconds == 600
    ddp_cpu = compose_config(["trainer=ddp_cpu"]).trainer
    assert ddp_cpu.devices == 2 and ddp_cpu.strategy.find_unused_parameters
    assert ddp_cpu.strategy.start_method == "fork" and ddp_cpu.strategy.timeout.seconds == 600
    assert compose_config(["trainer=debug"]).trainer.limit_train_batches == 4


def test_experiment_overrides_top_level_keys():
    cfg = compose_config(["experiment=quickstart"])
    assert (cfg.iters, cfg.name) == (2500, "quickstart")
    assert cfg.model.generator.ngf == 16 and cfg.model.scheduler is None
    assert cfg.hydra.runtime.choices.logger == "csv"


def test_cluster_presets():
    slurm = compose_config(
        ["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2"]
    )
    launcher = slurm.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    # one task per GPU, so Lightning finds SLURM's processes and does not spawn its own
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (2, 4, 4)
    assert compose_config(["hydra/launcher=local"]).hydra.launcher._target_.endswith("LocalLauncher")
    tune = compose_config(["hydra/sweeper=tune", "optimized_metric=val/a2b/fid"]).hydra.sweeper
    assert tune._target_.endswith("OptunaSweeper") and tune.direction == "minimize"
