"""Finding and reading image files.

Which files are read
    Files are chosen by extension: ``.jpg .jpeg .png .bmp .webp .tif .tiff`` in any letter case.
    Everything else (``.txt`` notes, ``Thumbs.db``, ...) and hidden files and folders (name
    starting with ``.``) are ignored. Folders are searched recursively and read in sorted path
    order. A file with an image extension that is not an image is an error, not skipped.

How photos are converted (``load_photo``)
    - RGB is used as is.
    - L, 1, P (palette), CMYK, YCbCr, LAB, HSV are converted to RGB with PIL.
    - Images with transparency (RGBA, LA, PA, or an RGB/L/P image with a transparent colour)
      are composited on a white background, then made RGB.
    - 16-bit images (modes I;16*, and I, which some readers use for 16-bit PNGs) are scaled to
      8 bit: ``round(value / 257)``, so 65535 becomes 255. 16-bit RGB PNGs are reduced to 8 bit
      by PIL itself.
    - Float images (mode F) are refused.
    - When the side's channel count ``nc`` is 1, the RGB result is converted to L (luminance).
    - The result is a float32 tensor C x H x W with values in [-1, 1] (``photo_to_tensor``).

How label and instance maps are read (``load_id_map``)
    Label maps (class ids) and instance maps (pix2pixHD / Cityscapes instance ids, up to 33001
    and more) must be single-channel: mode L, P (the palette indices are the ids), 1, I;16 or I.
    Their ids are kept exactly (16-bit instance ids included) and become int64 H x W tensors
    (``ids_to_tensor``); resizing them is done with nearest neighbour (see ``transforms``).

Errors
    Every unreadable file raises :class:`~imtrans.data.errors.DataError` naming the file: not an
    image, truncated or corrupt (e.g. a cut-off JPEG), missing, unreadable. With
    ``verify="full"`` the data modules decode every file once in ``setup``; with ``"header"``
    only headers are opened (cheap, but truncation is found only when the file is used);
    ``"none"`` checks nothing up front. Decoding errors during training raise the same errors.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from imtrans.errors import ConfigError

from .errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VERIFY_LEVELS = ("full", "header", "none")
# Verification prints a progress line only for folders this large; small sets are checked quietly.
PROGRESS_MIN_FILES = 500

_TRANSPARENT_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


def is_image_file(path: str | os.PathLike) -> bool:
    """True for a non-hidden file name with one of :data:`IMAGE_EXTENSIONS` (any case)."""
    name = os.path.basename(path)
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def list_images(folder: Path) -> list[Path]:
    """All image files under ``folder`` (recursively), sorted by path.

    Raises DataError when the folder does not exist or holds no image file.
    """
    if not folder.is_dir():
        raise DataError(folder, "folder not found")
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found.extend(Path(dirpath) / name for name in filenames if is_image_file(name))
    if not found:
        raise DataError(folder, f"no image files ({', '.join(IMAGE_EXTENSIONS)}) in this folder")
    return sorted(found)


def read_list_file(list_file: Path, base: Path) -> list[Path]:
    """Paths listed in a text file, one per line, relative to ``base`` unless absolute.

    Blank lines are skipped. Every listed file must exist. This is the format of MUNIT's
    ``list_trainA.txt`` files, whose lines look like ``./00002.jpg``.
    """
    try:
        lines = list_file.read_text().splitlines()
    except OSError as err:
        raise DataError(list_file, f"cannot read list file ({err.strerror})") from None
    paths = []
    for number, line in enumerate(lines, start=1):
        entry = line.strip()
        if not entry:
            continue
        path = Path(os.path.normpath(base / entry))
        if not path.is_file():
            raise DataError(path, f"file listed in {list_file} (line {number}) not found")
        paths.append(path)
    if not paths:
        raise DataError(list_file, "list file names no files")
    return paths


def open_image(path: Path, decode: bool = True) -> Image.Image:
    """Open an image file; with ``decode`` read all pixels (finds truncated files).

    Without ``decode`` only the header is read: size and mode are known, the pixels are not
    available. Any failure raises DataError naming ``path``.
    """
    try:
        with Image.open(path) as img:
            if decode:
                img.load()
            return img
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except (PermissionError, IsADirectoryError) as err:
        raise DataError(path, f"cannot read file ({err.strerror})") from None
    except UnidentifiedImageError:
        raise DataError(path, "not an image (PIL cannot identify the file's format)") from None
    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, zlib errors, ...
        raise DataError(path, f"truncated or corrupt image ({err})") from err


def to_photo(img: Image.Image, nc: int, path: Path) -> Image.Image:
    """Convert a decoded image to mode RGB (``nc=3``) or L (``nc=1``) by the rules above."""
    if img.mode == "F":
        raise DataError(path, "32-bit float image (mode F) is not supported; save it as 8 or 16 bit")
    if img.mode.startswith("I"):
        # PIL's own I;16 -> L conversion clips at 255 instead of scaling; scale explicitly.
        values = np.asarray(img).astype(np.float64)
        img = Image.fromarray(np.round(np.clip(values, 0, 65535) / 257).astype(np.uint8))
    if img.mode in _TRANSPARENT_MODES or "transparency" in img.info:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return img.convert("L") if nc == 1 else img


def load_photo(path: Path, nc: int) -> Image.Image:
    """Read a photo as a PIL image of mode RGB (``nc=3``) or L (``nc=1``)."""
    return to_photo(open_image(path), nc, path)


def load_id_map(path: Path) -> Image.Image:
    """Read a label or instance map, keeping its integer ids exactly.

    Returns a PIL image of mode L, P, 1 or I (16-bit maps become I, which holds them exactly),
    ready for nearest-neighbour resizing and :func:`ids_to_tensor`.
    """
    img = open_image(path)
    check_id_map_mode(path, img.mode)
    return img.convert("I") if img.mode.startswith("I;16") else img


def check_id_map_mode(path: Path, mode: str) -> None:
    """Raise DataError naming ``path`` unless ``mode`` holds single-channel integer ids."""
    if mode not in ("L", "P", "1", "I") and not mode.startswith("I;16"):
        raise DataError(
            path, f"map has mode {mode}; expected single-channel integer ids (mode L, P, I;16 or I)"
        )


def photo_to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL RGB/L image -> float32 tensor C x H x W (C = 3 or 1) with values in [-1, 1]."""
    array = np.asarray(img, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.transpose(2, 0, 1).copy()).float().div_(127.5).sub_(1.0)


def ids_to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL map from :func:`load_id_map` -> int64 tensor H x W of its ids."""
    return torch.from_numpy(np.asarray(img).astype(np.int64))


class ImageHeader(NamedTuple):
    """What ``scan_images`` keeps of each file: (width, height) and PIL mode."""

    size: tuple[int, int]
    mode: str


def scan_images(
    paths: Sequence[Path],
    level: str,
    inspect: Callable[[Path, Image.Image], None] | None = None,
    what: str = "images",
) -> dict[Path, ImageHeader]:
    """Check that every file opens, at ``level`` ``"full"``, ``"header"`` or ``"none"``.

    Returns each file's :class:`ImageHeader`; empty for ``"none"``. ``inspect(path, image)`` is
    called on each decoded image when ``level == "full"`` (e.g. to check label ids). Sets of more
    than :data:`PROGRESS_MIN_FILES` files show one progress line on stderr.
    """
    if level not in VERIFY_LEVELS:
        raise ConfigError(f"data.verify: {level!r} is not one of {', '.join(VERIFY_LEVELS)}")
    if level == "none":
        return {}
    show = len(paths) > PROGRESS_MIN_FILES
    start = time.monotonic()
    headers = {}
    for done, path in enumerate(paths, start=1):
        img = open_image(path, decode=level == "full")
        headers[path] = ImageHeader(img.size, img.mode)
        if inspect is not None and level == "full":
            inspect(path, img)
        if show and (done % 100 == 0 or done == len(paths)):
            print(f"\rimtrans: checking {what} ({level}): {done}/{len(paths)}", end="", file=sys.stderr)
    if show:
        print(f" done in {time.monotonic() - start:.0f} s", file=sys.stderr)
    return headers
