"""Lightning callbacks: checkpoints, sample grids, evaluation, generator EMA, speed and memory switches."""

from imtrans.callbacks.checkpoint import LastCheckpoint, save_checkpoint_atomic
from imtrans.callbacks.ema import GeneratorEMA
from imtrans.callbacks.evaluation import Evaluation
from imtrans.callbacks.images import SampleGrid, make_grid, to_uint8, translation_grid
from imtrans.callbacks.iterations import IterationLimit, ProgressBar
from imtrans.callbacks.memory import ActivationCheckpointing, checkpoint_activations, memory_switches
from imtrans.callbacks.speed import SpeedSwitches, split_trainer_config

__all__ = [
    "ActivationCheckpointing",
    "GeneratorEMA",
    "Evaluation",
    "IterationLimit",
    "LastCheckpoint",
    "ProgressBar",
    "checkpoint_activations",
    "SampleGrid",
    "SpeedSwitches",
    "make_grid",
    "memory_switches",
    "save_checkpoint_atomic",
    "split_trainer_config",
    "to_uint8",
    "translation_grid",
]
