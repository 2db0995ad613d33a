"""Fixtures for the data tests: tiny image folders written into tmp_path, and the real samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def write_image(path: Path, size=(8, 6), seed: int = 0, mode: str = "RGB", fmt: str | None = None) -> Path:
    """Write a random image of ``size`` = (width, height) in ``mode`` to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    width, height = size
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    pixels = rng.integers(0, 256, size=(height, width, channels), dtype=np.uint8)
    Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode).save(path, format=fmt)
    return path


def write_ids(path: Path, ids: np.ndarray) -> Path:
    """Write an integer id map as PNG: uint8 -> mode L, uint16 -> 16-bit (I;16)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(ids).save(path)
    return path


@pytest.fixture
def unpaired_root(tmp_path: Path) -> Path:
    """<root>/{trainA (3), trainB (2), testA (2), testB (2)} of 8x6 RGB images."""
    root = tmp_path / "unpaired"
    for k, (folder, count) in enumerate((("trainA", 3), ("trainB", 2), ("testA", 2), ("testB", 2))):
        for i in range(count):
            write_image(root / folder / f"{i:03d}.png", seed=10 * k + i)
    return root


@pytest.fixture
def shared_data() -> Path:
    """The real sample data sets beside the project (see shared/data/README.md)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real sample data not found at {SHARED_DATA} (the project's ../shared/data)")
    return SHARED_DATA
