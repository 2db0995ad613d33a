"""Errors that are the user's to fix, reported by the command-line tools in one line (exit 2).

- :class:`imtrans.data.DataError`: a data file or folder that cannot be read;
- :class:`imtrans.losses.perceptual.MissingWeightsError`: a pretrained-weights file not found;
- :class:`ConfigError` (here): a configuration that cannot work on this machine or with this
  data, its message naming the key and the fix.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value that cannot work: ``"<key>=<value>: <why>; <what to set instead>"``."""
