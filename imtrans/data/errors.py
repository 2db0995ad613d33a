"""The one exception type for bad input data."""

from __future__ import annotations

from os import PathLike


def _one_line(text: str) -> str:
    return " ".join(text.splitlines())


class DataError(ValueError):
    """An input file or folder that cannot be read, or that does not fit its layout.

    ``DataError(path, problem)`` gives the one-line message ``"<path>: <problem>"`` (line breaks in
    either part are folded), so that it reads well at the end of a traceback and in a log.
    ``DataError(message)`` keeps a ready message as it is; PyTorch rebuilds exceptions raised in
    DataLoader workers that way, with the worker's traceback appended.
    """

    def __init__(self, path: str | PathLike, problem: str | None = None) -> None:
        self.path = str(path)
        self.problem = problem
        if problem is None:
            super().__init__(self.path)
        else:
            super().__init__(f"{_one_line(self.path)}: {_one_line(problem)}")
