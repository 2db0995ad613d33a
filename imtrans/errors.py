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

import re
from pathlib import Path


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


def is_text_file(path: Path) -> bool:
    """Whether the file opens with text (no control bytes but tabs and line ends): the unpickler's
    complaint about a text file is a meaningless opcode, the plain fact helps more."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return False
    return bool(head) and all(b >= 32 or b in b"\t\n\r" for b in head)


def load_error(err: BaseException, width: int = 120) -> str:
    """The useful part of a failed ``torch.load`` / unpickling, for a one-line message.

    PyTorch's refusal of a pickled object is a paragraph of advice (load with
    ``weights_only=False``, which the importer never does, or file an issue) around one sentence
    that says what the file holds; only that sentence is kept. Other long texts keep their first
    sentence (the rest is PyTorch's advice), and anything still too long is cut between words.
    """
    text = " ".join(str(err).split())
    marker = "WeightsUnpickler error:"
    if marker in text:
        text = text.split(marker, 1)[1]
        text = re.split(r" (?:Please use|Check the documentation|To allowlist)", text)[0]
    elif len(text) > width:
        text = re.split(r"(?<=\.) ", text, maxsplit=1)[0]
    return shorten(text.strip() or type(err).__name__, width)
