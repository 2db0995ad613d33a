"""Metric tests: random-weight files in their own temporary TORCH_HOME, never a download.

The files live apart from the TORCH_HOME the rest of the suite uses (tests/conftest.py), so
other tests' runs find no weights and skip FID/KID/LPIPS instead of paying for Inception.
"""

from __future__ import annotations

import pytest

from tests.helpers import compose_config
from tests.metrics.weights import write_all


@pytest.fixture(scope="session")
def metric_weights(tmp_path_factory):
    """``{"inception": path, "alexnet": path}`` in ``<metrics TORCH_HOME>/hub/checkpoints``."""
    return write_all(tmp_path_factory.getbasetemp() / "metrics_torch_home" / "hub" / "checkpoints")


@pytest.fixture(autouse=True)
def _metrics_env(monkeypatch, metric_weights):
    monkeypatch.setenv("IMTRANS_METRICS_DOWNLOAD", "0")
    monkeypatch.delenv("IMTRANS_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(metric_weights["inception"].parents[2]))


def without_group_metrics() -> list[str]:
    """``metrics=none`` once config.yaml's defaults hold the group: tests add their own callback."""
    return ["metrics=none"] if "metrics" in compose_config([]) else []
