"""Spatial preprocessing shared by all images and maps of one data set item.

The ``preprocess`` words follow the official code of each method:

``resize_and_crop``
    resize to ``load_size`` x ``load_size`` (aspect not kept), then crop ``crop_size`` square
    (CycleGAN, pix2pix; DRIT resizes to 256 and crops 216).
``scale_shorter_side_and_crop``
    scale so the shorter side is ``load_size`` (aspect kept), then crop ``crop_size`` (MUNIT, UNIT).
``scale_width``
    scale so the width is ``load_size`` (aspect kept), then crop ``crop_size`` only when it is set
    (pix2pixHD: Cityscapes 2048x1024 becomes 1024x512).
``random_resized_crop``
    StarGAN v2's training transform: with probability 0.5 crop a random box of 80-100 % of the
    image's area and aspect ratio 0.9-1.1 (torchvision's ``RandomResizedCrop`` sampling), then
    resize to ``crop_size`` x ``crop_size``; evaluation resizes the whole image to that square.
``crop``
    no resize; crop ``crop_size``.
``none``
    neither.

Training draws the crop position and a horizontal flip (probability 0.5, when ``flip``) from
torch's random generator; evaluation takes the centre crop and never flips. One draw
(:class:`Geometry`) is applied to every image and map of an item, so paired images, label maps
and instance maps stay pixel-aligned. Photos are resized bicubically (``resample: bilinear``
for the code bases that resize bilinearly, StarGAN v2's torchvision ``Resize``), label and
instance maps with nearest neighbour so that their ids stay exact integers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from imtrans.errors import ConfigError

from .errors import DataError

PREPROCESS_MODES = (
    "resize_and_crop",
    "scale_shorter_side_and_crop",
    "scale_width",
    "random_resized_crop",
    "crop",
    "none",
)
_RESIZING = ("resize_and_crop", "scale_shorter_side_and_crop", "scale_width")
_CROP_REQUIRED = ("resize_and_crop", "scale_shorter_side_and_crop", "random_resized_crop", "crop")
RESAMPLING = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}
#: StarGAN v2's RandomResizedCrop: probability, area fraction and aspect ratio ranges
RANDOM_RESIZED_CROP = {"prob": 0.5, "scale": (0.8, 1.0), "ratio": (0.9, 1.1)}


@dataclass(frozen=True)
class Geometry:
    """The spatial transform of one item.

    ``resize``: (width, height) to resize to, or None to keep the size. ``box``: crop (left, top,
    right, bottom) in the resized image, or None. ``flip``: mirror left-right after cropping.
    ``first_box``: a crop taken before the resize (``random_resized_crop``), or None.
    """

    resize: tuple[int, int] | None
    box: tuple[int, int, int, int] | None
    flip: bool
    first_box: tuple[int, int, int, int] | None = None


class SpatialTransform:
    """Resize / crop / flip by a ``preprocess`` word (see the module docstring).

    ``augment=True`` is the training behaviour (random crop position, random flip); with
    ``augment=False`` the crop is centred and nothing is flipped, so results are deterministic.
    """

    def __init__(
        self,
        preprocess: str = "resize_and_crop",
        load_size: int | None = 286,
        crop_size: int | None = 256,
        flip: bool = True,
        augment: bool = True,
        resample: str = "bicubic",
    ) -> None:
        if resample not in RESAMPLING:
            raise ConfigError(f"data.resample: {resample!r} is not one of {', '.join(RESAMPLING)}")
        if preprocess not in PREPROCESS_MODES:
            raise ConfigError(f"data.preprocess: {preprocess!r} is not one of {', '.join(PREPROCESS_MODES)}")
        if preprocess in _RESIZING and not (load_size and load_size > 0):
            raise ConfigError(f"data.load_size: preprocess={preprocess} needs a positive load_size")
        if preprocess in _CROP_REQUIRED and not (crop_size and crop_size > 0):
            raise ConfigError(f"data.crop_size: preprocess={preprocess} needs a positive crop_size")
        if preprocess in ("resize_and_crop", "scale_shorter_side_and_crop") and crop_size > load_size:
            raise ConfigError(f"data.crop_size: {crop_size} is larger than data.load_size {load_size}")
        self.preprocess = preprocess
        self.load_size = load_size
        # scale_width crops only when crop_size is set; `none` never crops.
        self.crop_size = None if preprocess == "none" else crop_size
        self.flip = flip
        self.augment = augment
        self.resample = resample

    def sample(
        self, size: tuple[int, int], path: Path | str, generator: torch.Generator | None = None
    ) -> Geometry:
        """Draw the geometry for an item whose first image has ``size`` = (width, height).

        ``path`` names that image in the DataError raised when it is smaller than the crop.
        """
        width, height = size
        if self.preprocess == "random_resized_crop":
            return self._sample_random_resized_crop(width, height, generator)
        resize = self._resized_size(width, height)
        new_w, new_h = resize or (width, height)
        box = None
        if self.crop_size is not None:
            crop = self.crop_size
            if new_w < crop or new_h < crop:
                after = "" if resize is None else f" after {self.preprocess} to {new_w}x{new_h}"
                raise DataError(path, f"image is {width}x{height}{after}, smaller than crop_size {crop}")
            if self.augment:
                left = int(torch.randint(new_w - crop + 1, (1,), generator=generator))
                top = int(torch.randint(new_h - crop + 1, (1,), generator=generator))
            else:
                left, top = (new_w - crop) // 2, (new_h - crop) // 2
            box = (left, top, left + crop, top + crop)
        flip = self._draw_flip(generator)
        return Geometry(resize=resize, box=box, flip=flip)

    def _draw_flip(self, generator) -> bool:
        """A horizontal flip with probability 0.5 in training (when ``flip``), never otherwise."""
        return self.flip and self.augment and bool(torch.rand((), generator=generator) < 0.5)

    def _sample_random_resized_crop(self, width: int, height: int, generator) -> Geometry:
        """torchvision's ``RandomResizedCrop.get_params`` sampling (10 tries at a box of a random
        area fraction and log-uniform aspect ratio that fits, else the centre box of the clamped
        ratio), drawn with probability ``prob`` in training; then the resize to the square."""
        crop = self.crop_size
        first_box = None
        rand = lambda: float(torch.rand((), generator=generator))  # noqa: E731
        if self.augment and rand() < RANDOM_RESIZED_CROP["prob"]:
            (lo, hi), (r0, r1) = RANDOM_RESIZED_CROP["scale"], RANDOM_RESIZED_CROP["ratio"]
            area = width * height
            for _ in range(10):
                target = area * (lo + (hi - lo) * rand())
                aspect = math.exp(math.log(r0) + (math.log(r1) - math.log(r0)) * rand())
                w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
                if 0 < w <= width and 0 < h <= height:
                    top = int(torch.randint(height - h + 1, (1,), generator=generator))
                    left = int(torch.randint(width - w + 1, (1,), generator=generator))
                    first_box = (left, top, left + w, top + h)
                    break
            else:  # no fit: the centred box of the image's aspect clamped to the range
                ratio = width / height
                if ratio < r0:
                    w, h = width, round(width / r0)
                elif ratio > r1:
                    w, h = round(height * r1), height
                else:
                    w, h = width, height
                left, top = (width - w) // 2, (height - h) // 2
                first_box = (left, top, left + w, top + h)
        flip = self._draw_flip(generator)
        cropped = (
            (width, height)
            if first_box is None
            else (first_box[2] - first_box[0], first_box[3] - first_box[1])
        )
        resize = None if cropped == (crop, crop) else (crop, crop)
        return Geometry(resize=resize, box=None, flip=flip, first_box=first_box)

    def _resized_size(self, width: int, height: int) -> tuple[int, int] | None:
        load = self.load_size
        if self.preprocess == "resize_and_crop":
            new = (load, load)
        elif self.preprocess == "scale_shorter_side_and_crop":
            # Like torchvision's Resize(int): the longer side is truncated, not rounded.
            new = (
                (load, int(load * height / width)) if width <= height else (int(load * width / height), load)
            )
        elif self.preprocess == "scale_width":
            new = (load, int(load * height / width))  # as pix2pixHD's __scale_width
        else:
            return None
        return None if new == (width, height) else new

    def apply(self, img: Image.Image, geometry: Geometry, nearest: bool = False) -> Image.Image:
        """Apply ``geometry`` to a PIL image; ``nearest`` for label/instance maps (ids stay exact)."""
        if geometry.first_box is not None:
            img = img.crop(geometry.first_box)
        if geometry.resize is not None:
            img = img.resize(
                geometry.resize, Image.Resampling.NEAREST if nearest else RESAMPLING[self.resample]
            )
        if geometry.box is not None:
            img = img.crop(geometry.box)
        if geometry.flip:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return img
