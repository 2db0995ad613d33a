"""Lightning callbacks: checkpoints, sample grids, generator EMA."""

from imtrans.callbacks.checkpoint import LastCheckpoint, save_checkpoint_atomic
from imtrans.callbacks.ema import GeneratorEMA
from imtrans.callbacks.images import SampleGrid, make_grid, to_uint8, translation_grid

__all__ = [
    "GeneratorEMA",
    "LastCheckpoint",
    "SampleGrid",
    "make_grid",
    "save_checkpoint_atomic",
    "to_uint8",
    "translation_grid",
]
