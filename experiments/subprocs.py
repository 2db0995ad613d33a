"""How the benchmarks start their child processes (standard library only, so that
``experiments/gpu_check.py`` can use it without importing torch)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def start_in_group(cmd: list[str], **env: str) -> subprocess.Popen:
    """``cmd`` started from the repository root with the repository on ``PYTHONPATH`` (the children
    import ``experiments`` and ``tests``) and ``env`` added to the environment; in a new session,
    so that its process group, with every process it starts, can be signalled at once
    (``os.killpg(proc.pid, ...)``); stdout and stderr captured together, as text."""
    return subprocess.Popen(
        cmd,
        cwd=REPO,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
            **env,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
