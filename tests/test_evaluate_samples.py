"""``python -m imtrans.evaluate``: reading what ``imtrans.translate`` writes (``samples=``), the
protocol of ``ckpt=`` taken from the run's own config, and one-line errors (exit status 2)."""

from __future__ import annotations

import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import torch
from PIL import Image

from imtrans import evaluate as E
from tests.metrics.conftest import metric_weights, without_group_metrics  # noqa: F401  (session fixture)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _metrics_env(monkeypatch, metric_weights):  # noqa: F811
    monkeypatch.setenv("IMTRANS_METRICS_DOWNLOAD", "0")
    monkeypatch.setenv("TORCH_HOME", str(metric_weights["inception"].parents[2]))


def _png(path: Path, seed: int, size: int = 32) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    Image.fromarray((torch.rand(size, size, 3, generator=g) * 255).to(torch.uint8).numpy()).save(path)


def _translate_output(root: Path, samples: int, tasks=("a2b", "b2a"), stems=("x", "y_1")) -> int:
    """The files ``imtrans.translate ... num_samples=S grid=true attention=true`` writes, plus an
    ``interpolate`` pair, for ``stems`` at the top and in a mirrored sub-folder; returns how many
    extra (non-sample) files there are. Each image is seeded by its path below ``root``."""
    extras = 0
    for sub in (root, root / "sub" / "deeper"):
        for stem in stems:
            for task in tasks:
                names = (
                    [f"{stem}_{task}_{k}.png" for k in range(samples)]
                    if samples > 1
                    else [f"{stem}_{task}.png"]
                )
                for name in names:
                    _png(sub / name, zlib.crc32(str((sub / name).relative_to(root)).encode()))
                for extra in ("grid", "attention", "interp"):
                    _png(sub / f"{stem}_{task}_{extra}.png", 0, size=16)
                (sub / f"{stem}_{task}_interp.gif").write_bytes(b"GIF89a")
                extras += 4
    return extras


def test_find_samples_groups_translate_output(tmp_path):
    extras = _translate_output(tmp_path, samples=12)
    found = E.find_samples(tmp_path)
    keys = {
        f"{sub}{stem}_{task}"
        for sub in ("", "sub/deeper/")
        for stem in ("x", "y_1")
        for task in ("a2b", "b2a")
    }
    assert set(found.groups) == keys
    # sample k is the k-th, numerically (10 and 11 after 9), and the grid/attention/interp files are out
    assert [p.name for p in found.groups["sub/deeper/y_1_b2a"]] == [f"y_1_b2a_{k}.png" for k in range(12)]
    assert sum(found.skipped.values()) == extras
    assert found.skipped == {"grid": extras // 4, "attention": extras // 4, "interpolation": extras // 2}
    assert set(found.tasks()) == {"a2b", "b2a"} and len(found.tasks()["a2b"]) == 4


def test_samples_cli_scores_translate_output_per_task(tmp_path, capsys):
    extras = _translate_output(tmp_path / "out", samples=4)
    over = ["metrics=quick", "+metrics.overrides.samples_per_input=4"]
    result = E.main([f"samples={tmp_path / 'out'}", *over, f"out={tmp_path / 'all.json'}"])
    out = capsys.readouterr().out
    skipped = [line for line in out.splitlines() if "skipped" in line]
    assert len(skipped) == 1 and f"skipped {extras} file(s)" in skipped[0], out
    scores = result["scores"]
    assert scores["n_inputs"] == 8 and scores["a2b/n_inputs"] == 4 and scores["b2a/n_inputs"] == 4
    assert result["protocol"]["pairs_per_input"] == 6 and scores["lpips_div"] > 0

    # a task's score is that of a folder holding only that task; the overall one is the mean
    # over every input, as Evaluator.diversity computes it on all groups at once
    _translate_output(tmp_path / "a2b_only", samples=4, tasks=("a2b",))
    alone = E.main([f"samples={tmp_path / 'a2b_only'}", *over, f"out={tmp_path / 'a2b.json'}"])["scores"]
    assert "a2b/lpips_div" not in alone and alone["n_inputs"] == 4
    assert scores["a2b/lpips_div"] == pytest.approx(alone["lpips_div"], rel=1e-6)
    ev = E.build_evaluator(E.compose_run_config(over).metrics, "cpu")
    ev.prepare()
    direct = ev.diversity(E.sample_groups(tmp_path / "out"))
    assert scores["lpips_div"] == pytest.approx(direct["lpips_div"], rel=1e-6)


def test_too_few_samples_is_one_line_with_the_fix(tmp_path):
    _translate_output(tmp_path / "out", samples=4)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    res = subprocess.run(
        [sys.executable, "-m", "imtrans.evaluate", f"samples={tmp_path / 'out'}", f"out={tmp_path / 'e.json'}"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert res.returncode == 2, res.stderr[-3000:]
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    line = res.stderr.strip()
    assert "protocol quick needs 8 samples per input" in line and "found 4 for 8 of 8 input(s)" in line
    assert "num_samples=8" in line and "+metrics.overrides.samples_per_input=4" in line
    assert "skipped 32 file(s)" in res.stdout and not (tmp_path / "e.json").exists()


def test_single_outputs_and_odd_counts(tmp_path, capsys):
    # S = 1 outputs (<stem>_<task>.png) are inputs of one sample each: too few for any pairing
    _translate_output(tmp_path / "s1", samples=1)
    with pytest.raises(SystemExit, match="needs 8 samples per input.*found 1") as err:
        E.main([f"samples={tmp_path / 's1'}", f"out={tmp_path / 'e.json'}"])
    assert err.value.code == 2 and "samples_per_input" not in str(err.value)
    assert str(err.value) in capsys.readouterr().err
    # disjoint pairs need an even count: 3 found, the suggestion reads 2
    _translate_output(tmp_path / "s3", samples=3)
    with pytest.raises(SystemExit, match=r"samples_per_input=2 ") as err:
        E.main([f"samples={tmp_path / 's3'}", "metrics=munit", f"out={tmp_path / 'e.json'}"])
    assert err.value.code == 2
    # an S = 1 output left beside numbered samples of the same input (an earlier translate) is skipped
    _png(tmp_path / "s3" / "x_a2b.png", 99)
    found = E.find_samples(tmp_path / "s3")
    assert found.skipped["single"] == 1 and len(found.groups["x_a2b"]) == 3


def test_one_folder_per_input_layout_still_read(tmp_path):
    for i in range(2):
        for k in range(4):
            _png(tmp_path / "nested" / "part" / f"in{i}" / f"{k:03d}.png", 10 * i + k)
    found = E.find_samples(tmp_path / "nested")
    assert list(found.groups) == ["part/in0/", "part/in1/"] and found.tasks() is None
    result = E.main([f"samples={tmp_path / 'nested'}", "+metrics.overrides.samples_per_input=4",
                     f"out={tmp_path / 'e.json'}"])  # fmt: skip
    assert result["scores"]["n_inputs"] == 2 and result["protocol_source"] == (
        "the default metrics group (quick), with the command line's metrics.* on top"
    )


# ---------------------------------------------------------------------- ckpt=
@pytest.fixture(scope="module")
def cut_run(tmp_path_factory):
    """A one-iteration pix2pix run trained with ``metrics=cut`` (FID/KID off, 2 inputs): the
    protocol evaluate should use unless told otherwise."""
    from imtrans.run import train
    from tests.helpers import compose_config, tiny_run_overrides

    out = tmp_path_factory.mktemp("cut_run")
    metrics = ["metrics=cut", "metrics.fid=false", "metrics.kid=false", "metrics.every_n_iters=null",
               "metrics.test=false", "+metrics.overrides.num_inputs=2", "+metrics.overrides.num_reference=2"]  # fmt: skip
    extra = ["callbacks.sample_grid=null", "task=fit", "data.test_size=4", *metrics]
    train(
        compose_config(tiny_run_overrides("pix2pix", "shapes_paired", iters=1, extra=extra), output_dir=out)
    )
    return out


def test_checkpoint_uses_the_runs_own_protocol(cut_run, tmp_path, capsys):
    stored = torch.load(cut_run / "checkpoints" / "last.ckpt", weights_only=False)["imtrans_config"][
        "metrics"
    ]
    assert stored["protocol"] == "cut" and stored["overrides"] == {"num_inputs": 2, "num_reference": 2}

    result = E.main([f"ckpt={cut_run}", "directions=a2b", f"out={tmp_path / 'a.json'}"])
    assert result["protocol"]["name"] == "cut"
    assert result["protocol"]["overrides"] == {"num_inputs": 2, "num_reference": 2}
    assert "a2b/fid" not in result["scores"] and result["scores"]["a2b/n_inputs"] == 2  # the run's fid: false
    assert f"protocol cut, from the run's config in {cut_run}" in capsys.readouterr().out

    # metrics.* of the command line apply on top of the run's config
    result = E.main([f"ckpt={cut_run}", "directions=a2b", "+metrics.overrides.num_inputs=1",
                     f"out={tmp_path / 'b.json'}"])  # fmt: skip
    assert result["protocol"]["name"] == "cut" and result["protocol"]["overrides"]["num_inputs"] == 1
    assert result["scores"]["a2b/n_inputs"] == 1 and "metrics.* on top" in result["protocol_source"]

    # metrics=<name> replaces it: the group's own settings (quick, fid on, no overrides)
    result = E.main([f"ckpt={cut_run}", "directions=a2b", "metrics=quick", "metrics.kid=false",
                     "+metrics.overrides.num_inputs=2", "+metrics.overrides.num_reference=2",
                     "+metrics.overrides.samples_per_input=2", f"out={tmp_path / 'c.json'}"])  # fmt: skip
    assert result["protocol"]["name"] == "quick" and "a2b/fid" in result["scores"]
    assert result["protocol_source"] == "metrics=quick on the command line"


def test_unreadable_checkpoints_are_one_line(tmp_path, capsys):
    cases = {
        "missing": (tmp_path / "nope.ckpt", "no such file or folder"),
        "run folder": (tmp_path / "run", "give ckpt="),
        "garbage": (tmp_path / "bad.ckpt", "bad.ckpt: not a readable PyTorch checkpoint"),
        "not imtrans": (tmp_path / "other.ckpt", "not an imtrans checkpoint (no 'imtrans_config')"),
        "empty": (tmp_path / "empty.ckpt", "empty file (0 bytes)"),
    }
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "run" / "checkpoints" / "best.ckpt").write_bytes(b"")
    (tmp_path / "bad.ckpt").write_bytes(b"not a checkpoint at all")
    (tmp_path / "empty.ckpt").write_bytes(b"")
    torch.save({"state_dict": {}}, tmp_path / "other.ckpt")
    for name, (path, words) in cases.items():
        with pytest.raises(SystemExit) as err:
            E.main([f"ckpt={path}", f"out={tmp_path / 'e.json'}"])
        assert err.value.code == 2 and words in str(err.value), (name, str(err.value))
        assert "\n" not in str(err.value) and str(err.value) in capsys.readouterr().err
    with pytest.raises(SystemExit, match=r"checkpoints/last\.ckpt not found; it has best\.ckpt"):
        E.main([f"ckpt={tmp_path / 'run'}"])


def test_wrong_command_lines_exit_2(tmp_path):
    for argv, words in (
        ([f"fake={tmp_path}"], "exactly one of"),
        (["oops"], "key=value"),
        ([f"samples={tmp_path}", "metrics=nope"], "metrics"),
        ([f"samples={tmp_path}", "metrics.protocol=nope"], "not one of"),
        ([f"samples={tmp_path / 'none'}"], "no such folder"),
    ):
        with pytest.raises(SystemExit, match=words) as err:
            E.main(argv)
        assert err.value.code == 2, argv
