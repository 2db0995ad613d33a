"""No checkpoint runs code when read (``imtrans.load``): a file whose unpickling would create a
file is refused by every reader, one line each, and the file is not created; ``trust=true``
reads one's own older files; ``imtrans export formats=safetensors`` writes the inference
weights alone, and the tools take that file with the same outputs."""

from __future__ import annotations

import os
import pathlib
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from imtrans import inference as inf
from imtrans.errors import CheckpointError
from imtrans.evaluate import UsageExit, load_checkpoint
from imtrans.export import export
from imtrans.load import inference_state, load_model, read_checkpoint
from imtrans.run import train
from imtrans.translate import translate
from tests.helpers import compose_config, tiny_run_overrides
from tests.trained import trained_run

REFUSED = "holds Python objects other than tensors and plain containers"


class Touch:
    """Unpickled, it calls ``Path.touch(path)``: what a shared file could do instead."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.path),)


@pytest.fixture(scope="module")
def cyclegan_run(tmp_path_factory):
    return trained_run("cyclegan", tmp_path_factory.mktemp("runs"))


def booby_trapped(run: Path, folder: Path, **save_options) -> tuple[Path, Path]:
    """``(checkpoint, marker)``: ``run``'s last.ckpt, whole, plus an entry that creates ``marker``
    when unpickled (so a reader that unpickles it would go on to use the checkpoint);
    ``save_options`` of ``torch.save`` (pickle protocol, file format)."""
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    marker = folder / "created_by_unpickling"
    ckpt["payload"] = Touch(marker)
    path = folder / "shared.ckpt"
    torch.save(ckpt, path, **save_options)
    return path, marker


def _one_line_refusal(call, key: str, path: Path, marker: Path, error=CheckpointError) -> None:
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    assert f"{key}={path}: " in message and REFUSED in message and "trust=true" in message, message
    assert "\n" not in message
    assert not marker.exists(), "the payload ran"


def test_the_payload_runs_when_unpickled(cyclegan_run, tmp_path):
    """The checkpoint below is a live one: plain torch.load(weights_only=False) creates the file."""
    path, marker = booby_trapped(cyclegan_run, tmp_path)
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_every_reader_refuses_it(cyclegan_run, tmp_path):
    path, marker = booby_trapped(cyclegan_run, tmp_path)
    _one_line_refusal(lambda: read_checkpoint(path), "ckpt", path, marker)
    _one_line_refusal(lambda: load_model(path), "ckpt", path, marker)
    _one_line_refusal(lambda: inf.load_for_inference(path), "ckpt", path, marker)
    out = tmp_path / "out"
    _one_line_refusal(
        lambda: translate([f"ckpt={path}", f"input={tmp_path}", f"output={out}"]), "ckpt", path, marker
    )
    _one_line_refusal(lambda: export(path, out=out, log=lambda *_: None), "ckpt", path, marker)
    _one_line_refusal(lambda: load_checkpoint(str(path), "cpu"), "ckpt", path, marker, error=UsageExit)
    # fine-tuning (model.init_from) and pix2pixHD's model.load_pretrain
    model = load_model(cyclegan_run)
    _one_line_refusal(lambda: model.load_weights_from(str(path)), "model.init_from", path, marker)
    from tests.methods.test_pix2pixhd import _tiny

    with pytest.raises(Exception) as info:  # Hydra wraps what the constructor raises
        _tiny([f"model.load_pretrain={path}"])
    cause = info.value
    while cause is not None and not isinstance(cause, CheckpointError):
        cause = cause.__cause__
    assert cause is not None and f"model.load_pretrain={path}: " in str(cause) and REFUSED in str(cause)
    assert not marker.exists()
    # torch's older (not zip) format, and pickle protocol 4: refused the same way
    for name, options in {
        "legacy": {"_use_new_zipfile_serialization": False},
        "p4": {"pickle_protocol": 4},
    }.items():
        (tmp_path / name).mkdir()
        other, marker = booby_trapped(cyclegan_run, tmp_path / name, **options)
        _one_line_refusal(lambda other=other: load_model(other), "ckpt", other, marker)


def _resume(ckpt: Path, out: Path, *extra: str):
    overrides = tiny_run_overrides(
        "cyclegan",
        "shapes",
        iters=2,
        extra=["task=fit", "callbacks.sample_grid=null", f"ckpt_path={ckpt}", *extra],
    )
    return compose_config(overrides, output_dir=out)  # the run config of tests.trained, resumed


def test_resume_refuses_it_and_lightning_loads_weights_only(cyclegan_run, tmp_path, monkeypatch):
    path, marker = booby_trapped(cyclegan_run, tmp_path)
    _one_line_refusal(lambda: train(_resume(path, tmp_path / "a")), "ckpt_path", path, marker)
    # past imtrans's own check, Lightning's load of ckpt_path is weights_only too
    monkeypatch.setattr("imtrans.run.check_resume_checkpoint", lambda *a: None)
    with pytest.raises(pickle.UnpicklingError, match="Unsupported global"):
        train(_resume(path, tmp_path / "b"))
    assert not marker.exists()


def test_trust_reads_ones_own_older_file(cyclegan_run, tmp_path):
    """trust=true: the tools and the run read a file with Python objects (here: the payload runs)."""
    path, marker = booby_trapped(cyclegan_run, tmp_path)
    image = tmp_path / "in" / "x.png"
    image.parent.mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(image)
    result = translate(
        [f"ckpt={path}", f"input={image}", f"output={tmp_path / 'out'}", "trust=true", "progress=false"]
    )
    assert marker.exists() and len(result.written) == 2
    marker.unlink()
    train(_resume(path, tmp_path / "run", "trust=true"))  # ckpt_path, and Lightning's own load
    assert marker.exists() and (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()


def test_a_stored_config_builds_imtrans_classes_only(cyclegan_run, tmp_path):
    """The config in a checkpoint is data too: a ``_target_`` outside imtrans and torch.optim is refused."""
    ckpt = torch.load(cyclegan_run / "checkpoints" / "last.ckpt", weights_only=True)
    made = tmp_path / "made_by_the_config"
    ckpt["imtrans_config"]["model"] = {"_target_": "os.makedirs", "name": str(made)}
    torch.save(ckpt, tmp_path / "config.ckpt")
    with pytest.raises(CheckpointError, match=r"builds model\._target_=os\.makedirs, not an imtrans class"):
        load_model(tmp_path / "config.ckpt")
    assert not made.exists()
    with pytest.raises(Exception):  # noqa: B017  (trusted, it is built: os.makedirs returns no module)
        load_model(tmp_path / "config.ckpt", trust=True)
    assert made.is_dir()


def test_safetensors_export_translates_the_same(cyclegan_run, tmp_path):
    info = export(cyclegan_run, out=tmp_path / "export", formats="safetensors", log=lambda *_: None)
    (entry,) = info["files"]
    assert entry["ok"] and entry["max_abs_diff"] == 0.0 and entry["file"] == "model.safetensors"
    file = tmp_path / "export" / "model.safetensors"
    from safetensors import safe_open

    with safe_open(str(file), framework="pt") as f:
        keys, meta = list(f.keys()), f.metadata()
    assert keys and all(k.startswith(("G_A.", "G_B.")) or "." not in k for k in keys)  # no D, no optimizer
    assert meta["method"] == "imtrans.methods.CycleGAN" and '"A"' in meta["domains"]
    model = load_model(file)
    assert (
        type(model).__name__ == "CycleGAN" and model.imtrans_config == load_model(cyclegan_run).imtrans_config
    )
    # translate writes the same pixels from the file as from the run
    rng = np.random.RandomState(0)
    Image.fromarray(rng.randint(0, 256, (40, 52, 3), dtype=np.uint8)).save(tmp_path / "x.png")
    outputs = {}
    for name, ckpt in (("run", cyclegan_run), ("file", file)):
        written = translate(
            [f"ckpt={ckpt}", f"input={tmp_path / 'x.png'}", f"output={tmp_path / name}", "progress=false"]
        )
        outputs[name] = {p.name: np.asarray(Image.open(p)) for p in written.written}
    assert outputs["run"].keys() == outputs["file"].keys() and len(outputs["run"]) == 2
    assert all(np.array_equal(outputs["run"][k], outputs["file"][k]) for k in outputs["run"])


def test_safetensors_keeps_the_ema_weights(cyclegan_run, tmp_path):
    ckpt = torch.load(cyclegan_run / "checkpoints" / "last.ckpt", weights_only=True)
    sd = ckpt["state_dict"]
    sd.update({f"ema.{k}": v * 0.5 for k, v in list(sd.items()) if k.startswith(("G_A.", "G_B."))})
    torch.save(ckpt, tmp_path / "ema.ckpt")
    info = export(tmp_path / "ema.ckpt", out=tmp_path, formats="safetensors", log=lambda *_: None)
    assert info["ema"] and info["files"][0]["ok"]
    model, used = inf.load_for_inference(tmp_path / "model.safetensors")
    assert used and all(
        torch.equal(v, sd[f"ema.{k}"]) for k, v in inference_state(model).items() if k.startswith("G_A.")
    )
    with pytest.raises(ValueError, match="holds the EMA generator weights only"):
        inf.load_for_inference(tmp_path / "model.safetensors", ema="false")


def test_a_foreign_safetensors_file_is_named(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(CheckpointError, match="not imtrans's inference weights"):
        load_model(tmp_path / "other.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(os.urandom(64))
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_model(tmp_path / "bad.safetensors")
