"""Shared by the official-checkpoint tests: the fixtures (copied from ../shared/official_fixtures,
written by the official code bases), importing them and fine-tuning an import for 2 iterations."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from imtrans.official import OfficialFormatError, import_official
from imtrans.run import train
from tests.helpers import compose_config

FIXTURES = Path(__file__).parent / "fixtures"
#: the official key tables at the paper configurations (../shared beside the repository, in CI too)
KEYS = Path(__file__).resolve().parents[2].parent / "shared" / "official_keys"
#: outputs reproduce the official ones to ~8e-6 across thread counts (fixtures README)
ATOL = 1e-5


def fixture(method: str) -> Path:
    return FIXTURES / method


def cases(folder: Path) -> dict:
    return torch.load(folder / "cases.pt", map_location="cpu", weights_only=True)


def options(folder: Path) -> dict:
    return json.loads((folder / "options.json").read_text())


def do_import(method: str, path: Path, out: Path, overrides=(), **opts) -> Path:
    return import_official(method, path, out, options=opts, overrides=list(overrides))


def translate_case(module, case: dict) -> torch.Tensor:
    """``module.translate`` as a case of ``cases.pt`` says: ``reference=`` for an example-guided
    case, else ``style=`` its explicit code (None for deterministic methods)."""
    if case.get("reference") is not None:
        return module.translate(case["input"], case["direction"], reference=case["reference"])
    return module.translate(case["input"], case["direction"], style=case.get("style"))


def run_import_cli(*args: str) -> subprocess.CompletedProcess:
    """``python -m imtrans.official ARGS`` (what ``imtrans import`` runs), output captured."""
    return subprocess.run([sys.executable, "-m", "imtrans.official", *args], capture_output=True, text=True)


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a - b).abs().max().item()


def finetune(imported: Path, data: list[str], out: Path, iters: int = 2, extra=()) -> tuple[dict, dict, Path]:
    """Train ``iters`` iterations from ``imported`` through ``model.init_from`` with the
    architecture overrides recorded in its import.json; returns (weights before, after, run dir)."""
    record = json.loads((imported / "import.json").read_text())
    arch = [o for o in record["overrides"] if not o.startswith(("data=", "+model.directions"))]
    cfg = compose_config(
        [
            *arch,
            *data,
            f"model.init_from={imported}",
            "trainer=cpu",
            "logger=none",
            "metrics=none",
            f"iters={iters}",
            "task=fit",
            "callbacks.sample_grid=null",
            "callbacks.progress_bar=null",
            "trainer.enable_model_summary=false",
            *extra,
        ],
        output_dir=out,
    )
    before = torch.load(imported / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    train(cfg)
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)
    return before, ckpt, out


def assert_finetuned(before: dict, ckpt: dict, networks) -> None:
    """Iteration counter at the run's length, finite weights, and every imported network moved."""
    after = ckpt["state_dict"]
    assert ckpt["global_step"] > 0
    for name in networks:
        keys = [k for k in before if k.startswith(f"{name}.") and before[k].is_floating_point()]
        assert keys, name
        assert all(torch.isfinite(after[k]).all() for k in keys), name
        assert any(not torch.equal(before[k], after[k]) for k in keys), f"{name} did not move"


def bad_file(tmp_path: Path, name: str, content: bytes | None = None, sd: dict | None = None) -> Path:
    """``tmp_path/name`` holding ``sd`` (a state dict, saved with torch.save) or raw ``content``:
    a broken or foreign checkpoint for the bad-input tests."""
    path = tmp_path / name
    if sd is not None:
        torch.save(sd, path)
    else:
        path.write_bytes(content)
    return path


def import_error(method: str, path: Path, tmp_path: Path, **opts) -> str:
    """The message of the OfficialFormatError an import of ``path`` raises; asserts it is one
    line and that nothing was written."""
    out = tmp_path / "never"
    with pytest.raises(OfficialFormatError) as info:
        do_import(method, path, out, **opts)
    assert not out.exists(), "nothing may be written for a bad input"
    message = str(info.value)
    assert "\n" not in message
    return message


def key_table(name: str) -> list[tuple[str, str, tuple[int, ...]]]:
    """Rows (official key, imtrans key, shape) of ``official_keys/<name>``; skips when absent."""
    path = KEYS / name
    if not path.is_file():
        pytest.skip(f"{path} not present (../shared is beside the repository)")
    rows = [line.split("\t") for line in path.read_text().splitlines()[1:] if line.strip()]
    return [(a, b, tuple(int(x) for x in re.findall(r"\d+", shape))) for a, b, shape in rows]
