"""Lightning callbacks: checkpoints, sample grids (metrics and EMA join here)."""

from imtrans.callbacks.checkpoint import LastCheckpoint, save_checkpoint_atomic
from imtrans.callbacks.images import SampleGrid, make_grid, to_uint8, translation_grid

__all__ = [
    "LastCheckpoint",
    "SampleGrid",
    "make_grid",
    "save_checkpoint_atomic",
    "to_uint8",
    "translation_grid",
]
