"""A checkpoint that cannot be used is one line naming the key, the file and the problem, before
any work: in ``imtrans.run`` (``ckpt_path``, ``model.init_from``), ``translate`` and ``export``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from imtrans.errors import CheckpointError
from imtrans.export import export
from imtrans.run import train
from imtrans.translate import translate
from tests.helpers import compose_config, tiny_run_overrides
from tests.trained import trained_run

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, request):
    """``{case: (path, words of the message)}`` plus the cyclegan run they are compared with."""
    root = tmp_path_factory.mktemp("bad")
    run = trained_run("cyclegan", tmp_path_factory.mktemp("runs"))
    (root / "empty.ckpt").write_bytes(b"")
    (root / "text.ckpt").write_text("not a checkpoint\n")
    whole = (run / "checkpoints" / "last.ckpt").read_bytes()
    (root / "truncated.ckpt").write_bytes(whole[: len(whole) // 2])
    torch.save({"state_dict": {}}, root / "foreign.ckpt")
    newer = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert newer["imtrans_format"] == 1 and newer["imtrans_version"]  # what this imtrans writes
    newer.update(imtrans_format=99, imtrans_version="9.0.0")
    torch.save(newer, root / "newer.ckpt")
    (root / "no_last" / "checkpoints").mkdir(parents=True)
    cases = {
        "missing": (root / "nope.ckpt", "no such file"),
        "empty": (root / "empty.ckpt", "empty file (0 bytes)"),
        "text": (root / "text.ckpt", "not a readable PyTorch checkpoint (a text file)"),
        "truncated": (root / "truncated.ckpt", "not a readable PyTorch checkpoint"),
        "not imtrans": (root / "foreign.ckpt", "not an imtrans checkpoint"),
        "newer": (root / "newer.ckpt", "written by a newer imtrans (9.0.0, checkpoint format 99"),
    }
    return run, cases


@pytest.mark.parametrize("case", ["missing", "empty", "text", "truncated", "not imtrans", "newer"])
def test_translate_and_export_name_the_file(bad_files, case, tmp_path):
    _, cases = bad_files
    path, words = cases[case]
    for tool in (
        lambda: translate([f"ckpt={path}", f"input={tmp_path}", "progress=false"]),
        lambda: export(path, out=tmp_path / "export", log=lambda *a: None),
    ):
        with pytest.raises((CheckpointError, FileNotFoundError)) as err:
            tool()
        assert str(path.name) in str(err.value) and (words in str(err.value) or case == "missing"), str(
            err.value
        )
        assert "\n" not in str(err.value)


def _overrides(model: str, extra: list[str]) -> list[str]:
    return tiny_run_overrides(model, "shapes", iters=2, extra=["task=fit", "metrics=none", *extra])


@pytest.mark.parametrize("case", ["empty", "text", "truncated", "not imtrans", "newer"])
def test_run_refuses_a_bad_ckpt_path_before_training(bad_files, case, tmp_path):
    _, cases = bad_files
    path, words = cases[case]
    with pytest.raises(CheckpointError, match=f"ckpt_path={path}: .*{words.split(' (')[0]}"):
        train(compose_config(_overrides("cyclegan", [f"ckpt_path={path}"]), output_dir=tmp_path / "run"))
    assert not (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()  # no iteration ran


def test_run_refuses_another_method_or_architecture(bad_files, tmp_path):
    run, _ = bad_files
    last = run / "checkpoints" / "last.ckpt"
    with pytest.raises(
        CheckpointError,
        match=r"a checkpoint of imtrans.methods.CycleGAN, this run builds imtrans.methods.MUNIT",
    ):
        train(compose_config(_overrides("munit", [f"ckpt_path={last}"]), output_dir=tmp_path / "munit"))
    # the same method with other widths: the first differing tensor is named
    with pytest.raises(
        CheckpointError, match=r"do not fit the networks of this config \(.*of another shape, first 'G_A"
    ):
        train(
            compose_config(
                _overrides("cyclegan", [f"ckpt_path={last}", "model.generator.ngf=16"]),
                output_dir=tmp_path / "wide",
            )
        )


def test_init_from_names_the_problem(bad_files, tmp_path):
    _, cases = bad_files
    path, words = cases["empty"]
    with pytest.raises(CheckpointError, match=re.escape(f"model.init_from={path}: {words}")):
        train(
            compose_config(_overrides("cyclegan", [f"model.init_from={path}"]), output_dir=tmp_path / "run")
        )


def test_command_line_one_line_exit_2(bad_files, tmp_path):
    _, cases = bad_files
    path, _ = cases["text"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [
        sys.executable,
        "-m",
        "imtrans.run",
        *_overrides("cyclegan", [f"ckpt_path={path}"]),
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert f"imtrans: checkpoint error: ckpt_path={path}: not a readable PyTorch checkpoint" in done.stderr
