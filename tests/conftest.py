"""Test-wide settings: one thread, no W&B network, scratch TMPDIR and TORCH_HOME."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["WANDB_MODE"] = "disabled"
# Metric weights are never downloaded in tests; tests/metrics writes random-weight files.
os.environ["IMTRANS_METRICS_DOWNLOAD"] = "0"

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

#: Tests that compare with numbers recorded on another machine (the official code's outputs in
#: ../shared/official_fixtures and tests/official/fixtures, the losses recorded before the
#: augmentation, SHAPES_NOTES.md's scores): marked ``recorded``. Each states its tolerance;
#: `make test-other-kernels` runs them with another CPU's kernels (AVX2), as CI does, so that a
#: brittle one fails there and not on a user's machine.
RECORDED = ("tests/official/", "tests/augment/test_unchanged.py", "tests/metrics/test_shapes_scores.py")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if Path(str(item.fspath)).resolve().relative_to(REPO).as_posix().startswith(RECORDED):
            item.add_marker(pytest.mark.recorded)


@pytest.fixture(scope="session", autouse=True)
def _stand_in_weights(tmp_path_factory):
    """The random-weight files that tests write under standard names (metric networks, VGG, FAN)
    all lie under the session's temporary folder: declared stand-ins (``imtrans.pretrained``),
    used without the SHA-256 check, and said so next to any score computed from them. Session
    scope: module fixtures that train (and subprocesses, which inherit it) see it too. Tests of
    the check itself remove the variable."""
    from imtrans.pretrained import STAND_IN_ENV

    os.environ[STAND_IN_ENV] = str(tmp_path_factory.getbasetemp())
    yield
    os.environ.pop(STAND_IN_ENV, None)


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory, monkeypatch):
    """No test reads or writes the user's torch hub cache or W&B settings."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.getbasetemp() / "torch_home"))
    monkeypatch.setenv("WANDB_DIR", str(tmp_path_factory.getbasetemp() / "wandb"))


def count_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
