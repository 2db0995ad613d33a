"""Errors that are the user's to fix, reported by the command-line tools in one line (exit 2).

- :class:`imtrans.data.DataError`: a data file or folder that cannot be read;
- :class:`imtrans.losses.perceptual.MissingWeightsError`: a pretrained-weights file not found;
- :class:`ConfigError` (here): a configuration that cannot work on this machine or with this
  data, its message naming the key and the fix;
- :class:`OutputError` (here): an output folder that cannot be written, or a checkpoint whose
  write failed (disk full), the message saying what was kept;
- :class:`CheckpointError` (here): a checkpoint given to a tool or a run that is missing, empty,
  unreadable, not imtrans's, or of another method or architecture.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value that cannot work: ``"<key>=<value>: <why>; <what to set instead>"``."""


class OutputError(ValueError):
    """The run's outputs cannot be written: ``"<path>: <what failed> (<OS reason>); <what is kept>"``."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: ``"<key>=<path>: <what is wrong>"``."""
