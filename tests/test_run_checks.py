"""A run's values are checked before any work, each mistake in one line naming the key; a run
resumes by itself (``ckpt_path=auto``) only from a run of the same configuration; a run's
output says each known condition once."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import hydra
import pytest
import torch
import yaml
from omegaconf import OmegaConf

from imtrans.checks import check_command_line, check_values, config_differences
from imtrans.errors import ConfigError
from imtrans.run import _config_dict, cap_workers, resolve_ckpt_path, train
from tests.helpers import compose_config, run_imtrans, tiny_run_overrides

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------- values
@pytest.mark.parametrize(
    "override, words",
    [
        ("data.batch_size=-1", "data.batch_size=-1: images per batch and process must be a whole number"),
        ("iters=abc", "iters='abc': the run's length in iterations"),
        ("iters=0", "iters=0:"),
        ("trainer.max_epochs=0", "trainer.max_epochs=0: the run's length in epochs must be"),
        ("data.num_workers=-2", "data.num_workers=-2:"),
        ("trainer.devices=0", "trainer.devices=0:"),
        ("trainer.limit_val_batches=1.5", "trainer.limit_val_batches=1.5:"),
    ],
)
def test_values_out_of_range_name_their_key(override, words):
    cfg = compose_config([override])
    with pytest.raises(ConfigError) as err:
        check_values(cfg)
    assert words in str(err.value)
    assert check_command_line([override]) == str(err.value)  # the same line, before Hydra starts


def test_values_in_range_pass():
    for overrides in (
        [],
        ["iters=3", "trainer.devices=[0]", "+trainer.max_steps=-1", "trainer.max_epochs=-1"],
    ):
        check_values(compose_config(overrides))
        assert check_command_line(overrides) is None


def test_typo_hint_names_an_override_that_works():
    line = check_command_line(["trainer.max_step=3"])
    assert line.startswith(
        "trainer.max_step=3: trainer has no key 'max_step'; did you mean +trainer.max_steps=3"
    )
    # the hint, as given, composes and passes the checks
    assert check_command_line(["+trainer.max_steps=3"]) is None
    assert check_command_line(["iter=3"]) == "iter=3: the config has no key 'iter'; did you mean iters=3?"
    line = check_command_line(["model=cycelgan"])
    assert line.startswith("model=cycelgan: no such model config; did you mean model=cyclegan?")
    # a U-Net depth the crop size cannot give (a resolver of the config)
    line = check_command_line(["model=pix2pix", "data=shapes_paired", "data.size=16"])
    assert (
        line
        == "data.crop_size=16: the U-Net generator needs a multiple of 32 (at least 32); use data.crop_size=32"
    )


# ---------------------------------------------------------------------------- networks and data
def _tiny_model(model: str, extra: list[str] | None = None):
    cfg = compose_config(tiny_run_overrides(model, "shapes", extra=extra))
    return hydra.utils.instantiate(cfg.model)


def test_crops_too_small_for_the_networks_are_refused_from_the_networks():
    model = _tiny_model("cyclegan")
    model.train()
    before = torch.random.get_rng_state()
    with pytest.raises(ConfigError) as err:
        model.check_image_size(4, 4, key="data.size")
    message = str(err.value)
    assert message.startswith("data.size=4: the networks of CycleGAN cannot take 4 x 4 images (")
    assert message.endswith("; use data.size=16 or more")  # found by running them, not from a table
    model.check_image_size(16, 16)  # the size it suggests works
    assert torch.equal(torch.random.get_rng_state(), before), "the check consumed random numbers"
    assert all(m.training for m in model.modules()), "the check left modules in eval mode"


def test_domain_count_against_the_data():
    cfg = compose_config(["model=stargan_v2", "data=domains"])
    model = hydra.utils.instantiate(cfg.model)
    with pytest.raises(ConfigError) as err:
        model.check_domains(SimpleNamespace(domains=["cat"], root="/data/one"))
    assert str(err.value).startswith(
        "model.num_domains=3: the data has 1 domain folder(s) (cat in /data/one)"
    )
    with pytest.raises(ConfigError, match="set model.num_domains=2"):
        model.check_domains(SimpleNamespace(domains=["cat", "dog"], root="/data/two"))
    model.check_domains(SimpleNamespace(domains=["cat", "dog", "wild"], root="/data/afhq"))


def test_workers_capped_to_the_cpus(capsys):
    cfg = compose_config(["data.num_workers=512"])
    cap_workers(cfg)
    assert cfg.data.num_workers == len(os.sched_getaffinity(0))
    assert "data.num_workers=512 lowered to" in capsys.readouterr().out


# ---------------------------------------------------------------------------- ckpt_path=auto
def _sibling(parent: Path, name: str, config: dict, mtime: float) -> Path:
    run = parent / name
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    last = run / "checkpoints" / "last.ckpt"
    last.write_bytes(b"x")
    os.utime(last, (mtime, mtime))
    return last


def test_auto_resumes_only_the_same_configuration(tmp_path):
    cut = _config_dict(compose_config(["model=cut"]))
    fastcut = _config_dict(compose_config(["model=cut", "model.mode=fastcut"]))
    differs = config_differences(fastcut, cut)  # (ours, theirs): "key: theirs -> ours"
    assert "model.mode: cut -> fastcut" in differs and "model.flip_equivariance: False -> True" in differs
    assert not any(d.startswith("model.loss.") for d in differs)  # the loss group says it once

    parent = tmp_path / "outputs" / "cut_shapes"
    same = _sibling(parent, "older", fastcut, 1000)
    _sibling(parent, "newer", cut, 2000)
    out = parent / "this"
    # the newest sibling trained CUT: a FastCUT run takes the older FastCUT one
    assert resolve_ckpt_path("auto", out, fastcut) == str(same)
    same.unlink()
    with pytest.raises(ConfigError) as err:
        resolve_ckpt_path("auto", out, fastcut)
    message = str(err.value)
    assert message.startswith(
        f"ckpt_path=auto: the runs under {parent} trained another configuration (newest newer:"
    )
    assert "model.mode: cut -> fastcut" in message and "resume_any_config=true" in message
    assert resolve_ckpt_path("auto", out, fastcut, any_config=True).endswith("newer/checkpoints/last.ckpt")


def test_run_names_tell_variants_apart():
    def name(overrides):
        return compose_config(overrides).name

    assert name(["model=cut"]) == "cut_shapes"
    assert name(["model=cut", "model.mode=fastcut"]) == "fastcut_shapes"
    assert name(["model=ugatit"]) == "ugatit_light_shapes"
    assert name(["model=ugatit", "model.generator.light=false"]) == "ugatit_full_shapes"
    assert name(["model=cyclegan"]) == "cyclegan_shapes"


def test_a_sibling_of_another_configuration_stops_the_run_before_work(tmp_path):
    parent = tmp_path / "outputs" / "cyclegan_shapes"
    other = _config_dict(
        compose_config(tiny_run_overrides("cyclegan", "shapes", extra=["loss.weights.idt_A=0"]))
    )
    _sibling(parent, "before", other, 1000)
    cfg = compose_config(tiny_run_overrides("cyclegan", "shapes", extra=["ckpt_path=auto"]), parent / "now")
    with pytest.raises(ConfigError, match=r"\(newest before: loss.weights.idt_A: 0 -> 5.0\)"):
        train(cfg)


# ---------------------------------------------------------------------------- the command line
def test_mistakes_end_in_one_line_and_leave_no_run_folder(tmp_path):
    """The crop check runs after Hydra made the run folder: it is removed again."""
    res = run_imtrans(
        ["logger=none", "metrics=none", "data.size=8", "iters=2"], tmp_path, 300, WANDB_MODE="disabled"
    )
    assert res.returncode == 2, res.stderr[-2000:]
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert lines == [lines[0]] and lines[0].startswith("imtrans: config error: data.size=8: the networks of")
    assert "Traceback" not in res.stdout + res.stderr
    assert not (tmp_path / "outputs").exists() or not any((tmp_path / "outputs").iterdir())


def test_config_value_in_sibling_yaml_is_plain():
    """``config.yaml`` holds plain values that :func:`config_differences` compares as they are."""
    cfg = _config_dict(compose_config([]))
    again = OmegaConf.to_container(OmegaConf.create(yaml.safe_dump(cfg)))
    assert config_differences(cfg, again) == []
