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


def shorten(text: str, width: int = 120) -> str:
    """``text`` on one line, at most about ``width`` characters, cut between words with "…".

    For the detail of a one-line error message (an exception's text quoted inside it): whitespace
    and line breaks become single spaces, and a long text is cut at the last space that leaves room
    for the ellipsis, so that no word is cut in half. A first word longer than ``width`` (a long
    path) is kept whole, since half a path is of no use to anyone.
    """
    text = " ".join(str(text).split())
    if len(text) <= width:
        return text
    cut = text.rfind(" ", 0, width)  # the last space before the cut leaves room for "…"
    if cut <= 0:
        first = text.split(" ", 1)[0]
        return first if first == text else first + "…"
    return text[:cut].rstrip(",;:-—( ") + "…"
