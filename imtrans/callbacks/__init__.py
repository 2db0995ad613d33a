"""Lightning callbacks: checkpoints, sample grids, evaluation, generator EMA, speed switches."""

from imtrans.callbacks.checkpoint import LastCheckpoint, save_checkpoint_atomic
from imtrans.callbacks.ema import GeneratorEMA
from imtrans.callbacks.evaluation import Evaluation
from imtrans.callbacks.images import SampleGrid, make_grid, to_uint8, translation_grid
from imtrans.callbacks.iterations import IterationLimit, ProgressBar
from imtrans.callbacks.speed import SpeedSwitches, split_trainer_config

__all__ = [
    "GeneratorEMA",
    "Evaluation",
    "IterationLimit",
    "LastCheckpoint",
    "ProgressBar",
    "SampleGrid",
    "SpeedSwitches",
    "make_grid",
    "save_checkpoint_atomic",
    "split_trainer_config",
    "to_uint8",
    "translation_grid",
]
