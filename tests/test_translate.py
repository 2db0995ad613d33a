"""``imtrans.translate``: folders of any size and mode, multimodal samples, references, interpolation, EMA."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from imtrans import inference as inf
from imtrans.callbacks.images import title_band_height, to_uint8
from imtrans.cli import SUBCOMMANDS
from imtrans.data.errors import DataError
from imtrans.translate import Translator, find_inputs, load_image, translate
from tests.trained import trained_run

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def cyclegan_run(tmp_path_factory):
    return trained_run("cyclegan", tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="session")
def bicyclegan_run(tmp_path_factory):
    return trained_run("bicyclegan", tmp_path_factory.mktemp("runs"))


def _save(path: Path, shape, seed: int, mode: str | None = None) -> Path:
    array = np.random.RandomState(seed).randint(0, 256, shape, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path)
    return path


@pytest.fixture
def folder(tmp_path):
    """Images of several sizes and modes, one in a sub-folder, plus a file that is not an image."""
    root = tmp_path / "in"
    _save(root / "wide.png", (50, 70, 3), 0)  # H 50, W 70: not a multiple of 4 or 64
    _save(root / "square.jpg", (64, 64, 3), 1)
    _save(root / "sub" / "alpha.png", (33, 31, 4), 2)  # RGBA, odd sizes
    _save(root / "sub" / "gray.png", (64, 64), 3)  # mode L
    (root / "notes.txt").write_text("not an image")
    return root


SIZES = {"wide": (70, 50), "square": (64, 64), "sub/alpha": (31, 33), "sub/gray": (64, 64)}


def test_find_inputs_folder_and_glob(folder):
    assert sorted(str(r) for _, r in find_inputs(folder)) == [
        "square.jpg",
        "sub/alpha.png",
        "sub/gray.png",
        "wide.png",
    ]
    assert [str(r) for _, r in find_inputs(f"{folder}/*.png")] == ["wide.png"]
    assert [str(r) for _, r in find_inputs(f"{folder}/**/*.png")] == [
        "sub/alpha.png",
        "sub/gray.png",
        "wide.png",
    ]
    assert [str(r) for _, r in find_inputs(folder / "wide.png")] == ["wide.png"]
    with pytest.raises(DataError, match="no image file matches"):
        find_inputs(folder / "*.bmp")


@pytest.mark.parametrize("direction", ["a2b", "b2a"])
def test_cyclegan_folder_names_counts_sizes(cyclegan_run, folder, tmp_path, direction):
    out = tmp_path / "out"
    result = translate([f"ckpt={cyclegan_run}", f"input={folder}", f"output={out}", f"direction={direction}",
                        "grid=true", "batch_size=2", "progress=false"])  # fmt: skip
    assert len(result.inputs) == 4
    expected = set()
    for rel, size in SIZES.items():
        path = out / f"{rel}_{direction}.png"
        expected |= {path, out / f"{rel}_{direction}_grid.png"}
        with Image.open(path) as im:
            assert im.size == size and im.mode == "RGB", rel
        with Image.open(out / f"{rel}_{direction}_grid.png") as im:  # input | output, 2 px gaps, titles
            assert im.size == (2 * size[0] + 6, size[1] + 4 + title_band_height(size[1]))
    assert set(result.written) == expected
    assert set(out.rglob("*.png")) == expected

    # a 64 px image needs no padding: the file is exactly the module's translation
    model, _ = inf.load_for_inference(cyclegan_run)
    x = load_image(folder / "square.jpg", 3)[None]
    want = to_uint8(model.translate(x, direction))[0].permute(1, 2, 0).numpy()
    got = np.asarray(Image.open(out / f"square_{direction}.png"))
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1


def test_padding_and_resizing_restore_the_size(cyclegan_run, folder, tmp_path):
    model, _ = inf.load_for_inference(cyclegan_run)
    for fit in ("pad", "resize"):
        t = Translator(model, fit=fit, progress=False)
        result = t.run(find_inputs(folder), tmp_path / fit, keep_outputs=True)
        for path, y in zip(result.inputs, result.outputs):
            assert y.shape[-2:] == load_image(path, 3).shape[-2:]
    with pytest.raises(DataError, match="wide.png: image is 70x50; the generator needs sides divisible by 4"):
        Translator(model, fit="none", progress=False).run(find_inputs(folder / "wide.png"), tmp_path / "none")


def test_multimodal_samples_grid_and_seed(bicyclegan_run, folder, tmp_path):
    args = [f"ckpt={bicyclegan_run}", f"input={folder}", "num_samples=3", "grid=true", "progress=false"]
    first = translate([*args, f"output={tmp_path / 'a'}", "batch_size=3"])
    again = translate([*args, f"output={tmp_path / 'b'}", "batch_size=1"])  # batching does not matter
    assert len(first.written) == len(again.written) == 4 * 4
    for rel, size in SIZES.items():
        outs = [np.asarray(Image.open(tmp_path / "a" / f"{rel}_a2b_{j}.png")) for j in range(3)]
        assert all(o.shape[:2] == size[::-1] for o in outs)
        assert not np.array_equal(outs[0], outs[1])  # different style codes
        for j in range(3):
            same = np.asarray(Image.open(tmp_path / "b" / f"{rel}_a2b_{j}.png"))
            assert np.abs(same.astype(int) - outs[j].astype(int)).max() <= 1  # same seed, same codes
        with Image.open(tmp_path / "a" / f"{rel}_a2b_grid.png") as im:
            assert im.size == (4 * size[0] + 10, size[1] + 4 + title_band_height(size[1]))
    other = translate([*args[:3], "progress=false", "seed=1", f"output={tmp_path / 'c'}"])
    assert len(other.written) == 4 * 3
    assert not np.array_equal(
        np.asarray(Image.open(tmp_path / "a" / "square_a2b_0.png")),
        np.asarray(Image.open(tmp_path / "c" / "square_a2b_0.png")),
    )


def test_reference_output_equals_module_translate(bicyclegan_run, tmp_path):
    inputs = [_save(tmp_path / "in" / f"{i}.png", (64, 64, 3), 10 + i) for i in range(3)]
    ref = _save(tmp_path / "ref.png", (64, 64, 3), 20)
    out = tmp_path / "out"
    translate(
        [
            f"ckpt={bicyclegan_run}",
            f"input={tmp_path / 'in'}",
            f"reference={ref}",
            f"output={out}",
            "progress=false",
        ]
    )
    model, _ = inf.load_for_inference(bicyclegan_run)
    x = torch.stack([load_image(p, 3) for p in inputs])
    want = to_uint8(model.translate(x, "a2b", reference=load_image(ref, 3)[None].expand(3, -1, -1, -1)))
    for i, path in enumerate(inputs):
        got = np.asarray(Image.open(out / f"{path.stem}_a2b.png"))
        assert np.abs(got.astype(int) - want[i].permute(1, 2, 0).numpy().astype(int)).max() <= 1


def test_interpolation_frames_and_end_points(bicyclegan_run, tmp_path):
    x_path = _save(tmp_path / "in" / "x.png", (64, 64, 3), 30)
    r1, r2 = _save(tmp_path / "r1.png", (64, 64, 3), 31), _save(tmp_path / "r2.png", (64, 64, 3), 32)
    model, _ = inf.load_for_inference(bicyclegan_run)
    k = 5
    t = Translator(model, interpolate=k, style_from=r1, style_to=r2, frame_ms=100, progress=False)
    result = t.run(find_inputs(x_path), tmp_path / "out", keep_outputs=True)
    frames = result.outputs[0]
    assert frames.shape == (k, 3, 64, 64)
    x = load_image(x_path, 3)[None]
    for end, ref in ((0, r1), (k - 1, r2)):
        want = model.translate(x, "a2b", reference=load_image(ref, 3)[None])
        torch.testing.assert_close(frames[end], want[0], atol=1e-5, rtol=0)
    assert sorted(p.name for p in result.written) == ["x_a2b_interp.gif", "x_a2b_interp.png"]
    with Image.open(tmp_path / "out" / "x_a2b_interp.png") as grid:
        assert grid.size == ((k + 1) * 66 + 2, 68 + title_band_height(64))  # input | k frames, titled
    with Image.open(tmp_path / "out" / "x_a2b_interp.gif") as gif:
        # Pillow merges consecutive frames that are identical after quantisation (a model trained
        # for 2 iterations barely responds to z), adding up their durations: k frames in total.
        durations = []
        for i in range(gif.n_frames):
            gif.seek(i)
            durations.append(gif.info["duration"])
        assert gif.size == (64, 64) and 1 <= gif.n_frames <= k and sum(durations) == k * 100

    # sampled end points (no reference images): still k frames, reproducible with the seed
    a = Translator(model, interpolate=3, seed=4, progress=False).run(
        find_inputs(x_path), tmp_path / "s", True
    )
    b = Translator(model, interpolate=3, seed=4, progress=False).run(
        find_inputs(x_path), tmp_path / "t", True
    )
    assert a.outputs[0].shape[0] == 3 and torch.equal(a.outputs[0], b.outputs[0])


def test_ema_weights_are_used_when_present(cyclegan_run, tmp_path, folder):
    ckpt = torch.load(cyclegan_run / "checkpoints" / "last.ckpt", weights_only=False)
    # EMA copies with the generators swapped (same shapes for 3 -> 3 channels): easy to recognise
    swap = {"G_A.": "ema.G_B.", "G_B.": "ema.G_A."}
    ema = {swap[k[:4]] + k[4:]: v.clone() for k, v in ckpt["state_dict"].items() if k[:4] in swap}
    ckpt["state_dict"].update(ema)
    path = tmp_path / "ema.ckpt"
    torch.save(ckpt, path)
    model, used = inf.load_for_inference(path)
    raw, raw_used = inf.load_for_inference(path, ema="false")
    assert used and not raw_used
    x = load_image(folder / "square.jpg", 3)[None]
    torch.testing.assert_close(model.translate(x, "a2b"), raw.translate(x, "b2a"))
    assert not torch.allclose(raw.translate(x, "a2b"), raw.translate(x, "b2a"))
    with pytest.raises(ValueError, match="ema=true"):
        inf.load_for_inference(cyclegan_run, ema="true")


def test_usage_errors(cyclegan_run, folder, tmp_path):
    with pytest.raises(inf.UsageError, match="unknown key 'inputs'"):
        translate([f"ckpt={cyclegan_run}", f"inputs={folder}"])
    with pytest.raises(inf.UsageError, match="input=... is required"):
        translate([f"ckpt={cyclegan_run}"])
    with pytest.raises(inf.UsageError, match="deterministic"):
        translate([f"ckpt={cyclegan_run}", f"input={folder}", f"reference={folder / 'wide.png'}"])
    with pytest.raises(inf.UsageError, match="translates a2b, b2a"):
        translate([f"ckpt={cyclegan_run}", f"input={folder}", "direction=c2d"])


def test_command_line(cyclegan_run, folder, tmp_path):
    shutil.rmtree(folder / "sub")
    # `imtrans translate` once the console script lists it, else the module itself
    entry = ["imtrans.cli", "translate"] if "translate" in SUBCOMMANDS else ["imtrans.translate"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [
        sys.executable,
        "-m",
        *entry,
        f"ckpt={cyclegan_run}",
        f"input={folder}",
        f"output={tmp_path / 'out'}",
        "device=cpu",
    ]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "translated 2 image(s) a2b, b2a" in done.stdout  # no direction: both
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "square_a2b.png", "square_b2a.png", "wide_a2b.png", "wide_b2a.png"
    ]  # fmt: skip
    cmd = [sys.executable, "-m", *entry, f"ckpt={cyclegan_run}", f"input={folder / 'x*.png'}"]
    bad = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2
    assert bad.stderr.strip().endswith("no image file matches (give an image, a folder or a glob pattern)")
    assert len(bad.stderr.strip().splitlines()) == 1


def test_attention_needs_a_method_with_attention_maps(tmp_path):
    from imtrans.inference import UsageError
    from imtrans.load import load_model
    from imtrans.translate import Translator
    from tests.trained import trained_run

    model = load_model(trained_run("cyclegan", tmp_path))
    with pytest.raises(UsageError, match="attention=true: CycleGAN has no attention maps"):
        Translator(model, attention=True)
