"""The method x tool matrix: every model of ``conf/model`` (and each variant a user selects by an
option) through every tool a user runs after training.

For each variant, one tiny run (2 iterations, tiny widths) is trained once and shared:

- ``translate`` with no key (every task the model declares: both directions, or every target
  domain) and with each option the model's ``inference_spec()`` declares, on inputs of other sizes
  than the training crop (75x61 RGB, grayscale, RGBA; label maps for label-map methods);
- ``export`` (TorchScript; ONNX where installed), its files equal to the eager module;
- ``evaluate ckpt=`` with the run's own protocol, and ``evaluate samples=`` on what
  ``translate num_samples=... grid=true`` wrote;
- ``imtrans.data.check`` on the layout the run trained on;
- resume (``ckpt_path=auto``, ``iters`` doubled).

A model added to ``conf/model`` without a row here fails ``test_every_model_is_in_the_matrix``.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from imtrans import inference as inf
from imtrans.export import export
from imtrans.run import train
from imtrans.translate import translate
from tests.helpers import compose_config, method_overrides

REPO = Path(__file__).resolve().parents[1]
CITYSCAPES = REPO.parent / "shared" / "data" / "cityscapes_sample"

#: variant -> (model config, options that select it)
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "cyclegan": ("cyclegan", []),
    "pix2pix": ("pix2pix", []),
    "bicyclegan": ("bicyclegan", []),
    "munit": ("munit", []),
    "unit": ("unit", []),
    "cut": ("cut", ["metrics=cut"]),
    "fastcut": ("cut", ["model.mode=fastcut"]),
    "ugatit_light": ("ugatit", []),
    "ugatit_full": ("ugatit", ["model.generator.light=false"]),
    "drit": ("drit", ["loss=drit_no_ms"]),
    "drit++": ("drit", ["loss=drit"]),
    "drit_multi": ("drit_multi", []),
    "stargan_v2": ("stargan_v2", ["metrics=stargan_v2"]),
    "stargan_v2_hpf": ("stargan_v2", ["model.w_hpf=1"]),
    "pix2pixhd": ("pix2pixhd", []),
    "pix2pixhd_feat": ("pix2pixhd", ["model.instance_feat=true"]),
    "spade": ("spade", []),
    "spade_vae": ("spade", ["model.generator.use_vae=true"]),
}
ITERS = 2
_RUNS: dict[str, tuple[Path, list[str]]] = {}


def test_every_model_is_in_the_matrix():
    models = {p.stem for p in (REPO / "imtrans" / "conf" / "model").glob("*.yaml")}
    assert models == {m for m, _ in VARIANTS.values()}, "add the new model (and its variants) to VARIANTS"


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory):
    return tmp_path_factory.mktemp("matrix")


def trained(variant: str, root: Path) -> tuple[Path, list[str]]:
    """(run directory, its overrides): trained once per session."""
    if variant not in _RUNS:
        model, options = VARIANTS[variant]
        work = root / variant.replace("+", "p")
        overrides = method_overrides(model, work, ITERS, ["task=fit", *options])
        train(compose_config(overrides, output_dir=work / "run"))
        _RUNS[variant] = (work / "run", overrides)
    return _RUNS[variant]


def _save(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path)
    return path


def make_inputs(root: Path, spec) -> dict[str, tuple[Path, tuple[int, int]]]:
    """Input files of odd sizes and modes: ``{name: (path, (W, H))}``. Label-map methods get label
    (and instance) maps cut from the Cityscapes sample; multi-domain methods one more image in a
    folder named as the first domain (translated into the other domains only)."""
    rng = np.random.RandomState(0)
    files = {}
    if spec.input_kind == "labels":
        label = np.asarray(Image.open(sorted((CITYSCAPES / "test_label").rglob("*.png"))[0]))
        inst = np.asarray(Image.open(sorted((CITYSCAPES / "test_inst").rglob("*.png"))[0]))
        for name, (h, w) in {"odd": (61, 75), "wide": (40, 96)}.items():
            ys, xs = (
                np.linspace(0, label.shape[0] - 1, h).astype(int),
                np.linspace(0, label.shape[1] - 1, w).astype(int),
            )
            files[name] = (_save(root / "in" / f"{name}.png", label[np.ix_(ys, xs)]), (w, h))
            _save(root / "inst" / f"{name}.png", inst[np.ix_(ys, xs)].astype(np.uint16))  # 16-bit PNG
        return files
    files["odd"] = (
        _save(root / "in" / "odd.png", rng.randint(0, 256, (61, 75, 3), dtype=np.uint8)),
        (75, 61),
    )
    files["gray"] = (_save(root / "in" / "gray.png", rng.randint(0, 256, (48, 40), dtype=np.uint8)), (40, 48))
    files["alpha"] = (
        _save(root / "in" / "alpha.png", rng.randint(0, 256, (31, 33, 4), dtype=np.uint8)),
        (33, 31),
    )
    if spec.domains:
        own = Path(spec.domains[0]) / "own"
        files[str(own)] = (
            _save(root / "in" / f"{own}.png", rng.randint(0, 256, (36, 44, 3), dtype=np.uint8)),
            (44, 36),
        )
    return files


def _size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        return im.size


def _cli(run: Path, inputs: Path, out: Path, *keys: str):
    return translate([f"ckpt={run}", f"input={inputs}", f"output={out}", "progress=false", *keys])


@pytest.mark.parametrize("variant", VARIANTS)
def test_translate(variant, runs_root, tmp_path, capsys):
    run, _ = trained(variant, runs_root)
    model, _ = inf.load_for_inference(run)
    spec = model.inference_spec()
    files = make_inputs(tmp_path, spec)
    inst = [f"inst={tmp_path / 'inst'}"] if spec.instance_maps else []

    # no key: every task, every input at its own size
    result = _cli(run, tmp_path / "in", tmp_path / "default", *inst)
    expected = set()
    for name, (_, size) in files.items():
        for task in spec.tasks:
            if Path(name).parent.name == task.target:
                continue  # already in that domain
            path = tmp_path / "default" / f"{name}_{task.name}.png"
            assert path.is_file() and _size(path) == size, path
            expected.add(path)
    assert set(result.written) == expected
    if spec.fixed_size:
        assert f"takes {spec.fixed_size}x{spec.fixed_size} inputs only" in capsys.readouterr().err

    first, last = spec.tasks[0], spec.tasks[-1]
    name, (path, size) = next(iter(files.items()))

    one_inst = [f"inst={tmp_path / 'inst' / path.name}"] if spec.instance_maps else []

    def written(out: str, *keys: str) -> list[Path]:
        return _cli(run, path, tmp_path / out, *one_inst, *keys).written

    # the task by name (and, for multi-domain models, by index and as <source>2<target>)
    assert [p.name for p in written("named", f"direction={last.name}")] == [f"{name}_{last.name}.png"]
    if spec.domains:
        assert [p.name for p in written("index", f"target_domain={len(spec.domains) - 1}")] == [
            f"{name}_{last.name}.png"
        ]
        pair = f"{spec.domains[0]}2{last.name}"
        assert [p.name for p in written("pair", f"direction={pair}")] == [f"{name}_{last.name}.png"]
    # fit=resize and fit=none (a size the model takes)
    assert all(_size(p) == size for p in written("resize", "fit=resize"))
    side = spec.fixed_size or spec.size_multiple * max(1, 32 // spec.size_multiple)
    if spec.input_kind == "image":
        fitting = _save(tmp_path / "fit" / "fits.png", np.zeros((side, side, 3), np.uint8))
        out = _cli(run, fitting, tmp_path / "none", "fit=none", f"direction={first.name}").written
        assert [_size(p) for p in out] == [(side, side)]
    # what the model declares
    if spec.samples:
        out = written("samples", "num_samples=2", "grid=true", f"direction={first.name}")
        assert sorted(p.name for p in out) == [f"{name}_{first.name}_{k}.png" for k in (0, 1)] + [
            f"{name}_{first.name}_grid.png"
        ]
        assert all(_size(p) == size for p in out if "grid" not in p.name)
    if spec.reference:
        ref = _save(tmp_path / "ref" / "ref.png", np.full((50, 40, 3), 200, np.uint8))
        keys = [f"reference={ref}", f"direction={last.name}", "grid=true"]
        out = written("reference", *keys)
        assert sorted(p.name for p in out) == [f"{name}_{last.name}.png", f"{name}_{last.name}_grid.png"]
    if spec.style is not None and not spec.style.per_pixel:
        out = written("interp", "interpolate=3", f"direction={first.name}")
        assert sorted(p.name for p in out) == [
            f"{name}_{first.name}_interp.gif",
            f"{name}_{first.name}_interp.png",
        ]
        if spec.style.encodable:
            # two images of the target domain: the odd inputs, or photos for a label-map model
            ends = [tmp_path / "in" / "odd.png", tmp_path / "in" / "gray.png"]
            if spec.input_kind == "labels":
                ends = [
                    _save(tmp_path / "style" / f"{k}.png", np.full((30, 44, 3), v, np.uint8))
                    for k, v in (("a", 40), ("b", 220))
                ]
            ends = [f"style_from={ends[0]}", f"style_to={ends[1]}"]
            assert len(written("interp_ref", "interpolate=3", f"direction={first.name}", *ends)) == 2
    if spec.attention:
        out = written("attention", "attention=true", f"direction={first.name}")
        assert [p.name for p in out if "attention" in p.name] == [f"{name}_{first.name}_attention.png"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_export(variant, runs_root, tmp_path):
    run, _ = trained(variant, runs_root)
    info = export(run, out=tmp_path, formats="torchscript,onnx", log=lambda *_: None)
    model, _ = inf.load_for_inference(run)
    spec = model.inference_spec()
    modes = (
        {"plain", "reference"} if spec.reference and not (spec.style and spec.style.per_pixel) else {"plain"}
    )
    assert {(f["task"], f["mode"]) for f in info["files"]} == {(t.name, m) for t in spec.tasks for m in modes}
    assert all(f["ok"] for f in info["files"]), info["files"]
    # one file again on inputs of another size than the check's, against the module itself
    from imtrans.export import InferenceGenerator, eval_networks, example_inputs, input_names

    entry = next(f for f in info["files"] if f["format"] == "torchscript")
    task = spec.task(entry["task"])
    side = spec.fixed_size or max(2 * spec.size_multiple, 32)
    example = example_inputs(
        model,
        task,
        entry["mode"],
        side,
        3,
        seed=7,
        width=None if spec.fixed_size else side + spec.size_multiple,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.load(str(tmp_path / entry["file"]))
    eager = InferenceGenerator(model, task, input_names(spec, entry["mode"]), {})
    with torch.no_grad(), eval_networks(model):
        torch.testing.assert_close(scripted(*example), eager(*example), atol=1e-4, rtol=0)


@pytest.fixture
def metric_files(tmp_path_factory, monkeypatch):
    """Random-weight metric networks under a temporary TORCH_HOME (never a download)."""
    from tests.metrics.weights import write_all

    home = tmp_path_factory.getbasetemp() / "matrix_torch_home"
    if not (home / "hub" / "checkpoints").is_dir():
        write_all(home / "hub" / "checkpoints")
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setenv("IMTRANS_METRICS_DOWNLOAD", "0")
    monkeypatch.delenv("IMTRANS_WEIGHTS", raising=False)


@pytest.mark.parametrize("variant", VARIANTS)
def test_evaluate(variant, runs_root, tmp_path, metric_files, capsys):
    from imtrans.evaluate import main as evaluate

    run, _ = trained(variant, runs_root)
    stored = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    protocol = stored["imtrans_config"]["metrics"].get("protocol", "quick")
    out = tmp_path / "eval.json"
    # Few inputs and reference images (Inception on the CPU is the cost); the tiny models are
    # 32-64 px, which the paper protocols' 256 px would not fit (style encoders). The Cityscapes
    # sample has photos in its train split only: label-map runs are scored there (paired scores).
    small = [
        f"+metrics.overrides.{k}"
        for k in (
            "num_inputs=2",
            "num_reference=4",
            "samples_per_input=2",
            "fid_samples_per_input=1",
            "image_size=null",
        )
    ]
    split = ["split=train"] if VARIANTS[variant][0] == "pix2pixhd" else []
    result = evaluate([f"ckpt={run}", f"out={out}", *small, *split])
    assert json.loads(out.read_text())["protocol"]["name"] == protocol == result["protocol"]["name"]
    assert result["scores"], result["notices"]

    model, _ = inf.load_for_inference(run)
    spec = model.inference_spec()
    if spec.samples:
        files = make_inputs(tmp_path, spec)
        inst = [f"inst={tmp_path / 'inst'}"] if spec.instance_maps else []
        _cli(run, tmp_path / "in", tmp_path / "samples", "num_samples=4", "grid=true", *inst)
        samples = evaluate(
            [
                f"samples={tmp_path / 'samples'}",
                f"out={tmp_path / 's.json'}",
                "+metrics.overrides.samples_per_input=4",
            ]
        )
        assert "lpips_div" in samples["scores"] and len(files) > 0


@pytest.mark.parametrize("variant", VARIANTS)
def test_data_check(variant, runs_root, capsys):
    from imtrans.data.check import run as check

    _, overrides = trained(variant, runs_root)
    assert check(overrides) == 0, capsys.readouterr()


@pytest.mark.parametrize("variant", VARIANTS)
def test_resume(variant, runs_root, tmp_path, capsys):
    run, overrides = trained(variant, runs_root)
    resumed = tmp_path / "run"
    shutil.copytree(run, resumed)
    overrides = [o for o in overrides if not o.startswith("iters=")] + [
        f"iters={2 * ITERS}",
        "ckpt_path=auto",
    ]
    train(compose_config(overrides, output_dir=resumed))
    assert f"ckpt_path=auto: resuming from {resumed}" in capsys.readouterr().out
    ckpt = torch.load(resumed / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert int(ckpt["state_dict"]["_iteration"]) == 2 * ITERS
