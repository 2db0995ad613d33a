"""Lightning callbacks: checkpoints, sample grids, evaluation, generator EMA."""

from imtrans.callbacks.checkpoint import LastCheckpoint, save_checkpoint_atomic
from imtrans.callbacks.ema import GeneratorEMA
from imtrans.callbacks.evaluation import Evaluation
from imtrans.callbacks.images import SampleGrid, make_grid, to_uint8, translation_grid
from imtrans.callbacks.iterations import IterationLimit, ProgressBar

__all__ = [
    "GeneratorEMA",
    "Evaluation",
    "IterationLimit",
    "LastCheckpoint",
    "ProgressBar",
    "SampleGrid",
    "make_grid",
    "save_checkpoint_atomic",
    "to_uint8",
    "translation_grid",
]
