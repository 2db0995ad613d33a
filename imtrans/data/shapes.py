"""The procedural shapes data set: known content (shape layout) and style (colours).

Generated on the fly, seeded, no files:

- **Layout** (the content): 1 to 3 shapes, each a circle, an axis-aligned square (half-side
  0.85 r) or an upright equilateral triangle (circumradius r), with r ~ U(7, 16) px at 64 px
  (scaled by size / 64). Each centre keeps its shape fully inside the image; shapes may overlap.
- **Domain A**: white background, each shape a black outline 2 px wide (scaled by size / 64).
- **Domain B**: a light background (each channel ~ U(190, 255)) with the shapes filled, no
  outline, in HSV colours with hue ~ U(0, 1), saturation ~ U(0.8, 1), value ~ U(0.55, 0.95).

Item i of a split is generated from ``numpy.random.default_rng([seed, split_id, i])``, so it is
the same in any worker or process. With ``paired=False`` the training split draws independent
layouts for A and B (unpaired training); val and test render A and B from one layout. With
``paired=True`` A and B always share the layout.

The render functions (:func:`render_layout`, :func:`render_a`, :func:`render_b`,
:func:`render_mask`, :func:`render_outline`) and :func:`layout_from_tensor` let metrics
re-render ground truth from an item's ``A_layout`` / ``B_layout``.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch.utils.data import Dataset

SHAPE_KINDS = ("circle", "square", "triangle")
SPLIT_IDS = {"train": 0, "val": 1, "test": 2}
MAX_SHAPES = 3
BASE_SIZE = 64  # the size at which the radii and outline width of the notes are given


@dataclass(frozen=True)
class Shape:
    """One shape of a layout: ``kind`` in :data:`SHAPE_KINDS`, centre (cx, cy) and size r in px."""

    kind: str
    cx: float
    cy: float
    r: float


Layout = Sequence[Shape]


def _f32(value: float) -> float:
    """Round to float32 so that a layout survives :func:`layout_to_tensor` exactly."""
    return float(np.float32(value))


def sample_layout(rng: np.random.Generator, size: int = BASE_SIZE) -> list[Shape]:
    """Draw 1 to 3 shapes for a ``size`` x ``size`` image."""
    scale = size / BASE_SIZE
    shapes = []
    for _ in range(int(rng.integers(1, MAX_SHAPES + 1))):
        kind = SHAPE_KINDS[int(rng.integers(len(SHAPE_KINDS)))]
        r = _f32(rng.uniform(7, 16) * scale)
        # Every shape lies within distance r of its centre; one more pixel keeps the outline in.
        cx, cy = (_f32(v) for v in rng.uniform(r + 1, size - 1 - r, size=2))
        shapes.append(Shape(kind, cx, cy, r))
    return shapes


def sample_colors(rng: np.random.Generator, count: int) -> np.ndarray:
    """Domain-B colours: uint8 array (1 + count) x 3, the background then one fill per shape."""
    background = np.round(rng.uniform(190, 255, size=3))
    fills = []
    for _ in range(count):
        hue, saturation, value = rng.uniform(0, 1), rng.uniform(0.8, 1), rng.uniform(0.55, 0.95)
        fills.append(np.round(255 * np.array(colorsys.hsv_to_rgb(hue, saturation, value))))
    return np.stack([background, *fills]).astype(np.uint8)


def outline_width(size: int) -> int:
    """Outline width in px: 2 at 64 px, scaled with the image size."""
    return max(1, round(2 * size / BASE_SIZE))


def _draw(draw: ImageDraw.ImageDraw, shape: Shape, fill=None, outline=None, width: int = 0) -> None:
    cx, cy, r = shape.cx, shape.cy, shape.r
    if shape.kind == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill, outline=outline, width=width)
    elif shape.kind == "square":
        half = 0.85 * r
        draw.rectangle((cx - half, cy - half, cx + half, cy + half), fill=fill, outline=outline, width=width)
    elif shape.kind == "triangle":
        corners = [(cx + r * math.cos(a), cy + r * math.sin(a)) for a in np.radians([-90, 30, 150])]
        draw.polygon(corners, fill=fill, outline=outline, width=width)
    else:
        raise ValueError(f"unknown shape kind {shape.kind!r}; expected one of {SHAPE_KINDS}")


def render_outline(layout: Layout, size: int = BASE_SIZE) -> np.ndarray:
    """Bool H x W: the outline pixels drawn in domain A."""
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    for shape in layout:
        _draw(draw, shape, outline=1, width=outline_width(size))
    return np.asarray(canvas, dtype=bool)


def render_mask(layout: Layout, size: int = BASE_SIZE) -> np.ndarray:
    """Bool H x W: the union of the filled shapes (foreground of domain B)."""
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    for shape in layout:
        _draw(draw, shape, fill=1)
    return np.asarray(canvas, dtype=bool)


def render_a(layout: Layout, size: int = BASE_SIZE) -> np.ndarray:
    """Domain A as uint8 H x W x 3: black outlines on white."""
    image = np.full((size, size, 3), 255, dtype=np.uint8)
    image[render_outline(layout, size)] = 0
    return image


def render_b(layout: Layout, colors: np.ndarray, size: int = BASE_SIZE) -> np.ndarray:
    """Domain B as uint8 H x W x 3: ``colors[0]`` background, shape k filled with ``colors[k + 1]``.

    Later shapes are drawn over earlier ones where they overlap.
    """
    canvas = Image.new("RGB", (size, size), tuple(int(c) for c in colors[0]))
    draw = ImageDraw.Draw(canvas)
    for shape, color in zip(layout, colors[1:]):
        _draw(draw, shape, fill=tuple(int(c) for c in color))
    return np.asarray(canvas).copy()


def render_layout(
    layout: Layout, size: int = BASE_SIZE, colors: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """All ground truth of one layout: ``A`` (uint8 H x W x 3), ``mask`` and ``outline`` (bool H x W),
    and ``B`` (uint8 H x W x 3) when ``colors`` is given."""
    out = {
        "A": render_a(layout, size),
        "mask": render_mask(layout, size),
        "outline": render_outline(layout, size),
    }
    if colors is not None:
        out["B"] = render_b(layout, colors, size)
    return out


def layout_to_tensor(layout: Layout) -> torch.Tensor:
    """Float MAX_SHAPES x 4 rows (kind index, cx, cy, r); unused rows are -1."""
    table = torch.full((MAX_SHAPES, 4), -1.0)
    for row, shape in enumerate(layout):
        table[row] = torch.tensor([SHAPE_KINDS.index(shape.kind), shape.cx, shape.cy, shape.r])
    return table


def layout_from_tensor(table: torch.Tensor) -> list[Shape]:
    """Inverse of :func:`layout_to_tensor` for one item (exact: layouts are sampled in float32)."""
    return [
        Shape(SHAPE_KINDS[int(kind)], float(cx), float(cy), float(r))
        for kind, cx, cy, r in table.tolist()
        if kind >= 0
    ]


def _image_tensor(image: np.ndarray, nc: int) -> torch.Tensor:
    """uint8 H x W x 3 -> float C x H x W in [-1, 1]; C = 1 uses PIL's luminance."""
    if nc == 1:
        image = np.asarray(Image.fromarray(image).convert("L"))[:, :, None]
    return torch.from_numpy(image.transpose(2, 0, 1).copy()).float().div_(127.5).sub_(1.0)


def _mask_tensor(mask: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(mask).float().unsqueeze(0)


def make_item(
    seed: int,
    split: str,
    index: int,
    size: int = BASE_SIZE,
    paired: bool = False,
    nc_a: int = 3,
    nc_b: int = 3,
) -> dict:
    """Item ``index`` of ``split``, generated from ``default_rng([seed, split_id, index])``.

    Keys: ``A``, ``B`` (float C x H x W in [-1, 1]); ``A_mask``, ``B_mask`` (float 1 x H x W in
    {0, 1}, the filled union of each image's layout); ``A_outline`` (float 1 x H x W, the outline
    pixels of A); ``B_colors`` (float 4 x 3 in [0, 1]: background, then one fill colour per shape,
    unused rows -1); ``B_count`` (int64 scalar, shapes in B); ``A_layout``, ``B_layout`` (see
    :func:`layout_to_tensor`); ``A_path``, ``B_path`` (``"shapes/<split>/<index>/A"``).
    """
    rng = np.random.default_rng([seed, SPLIT_IDS[split], index])
    layout_a = sample_layout(rng, size)
    layout_b = sample_layout(rng, size) if split == "train" and not paired else layout_a
    colors = sample_colors(rng, len(layout_b))
    truth_a = render_layout(layout_a, size)
    truth_b = render_layout(layout_b, size, colors)
    color_table = torch.full((1 + MAX_SHAPES, 3), -1.0)
    color_table[: len(colors)] = torch.from_numpy(colors).float() / 255
    return {
        "A": _image_tensor(truth_a["A"], nc_a),
        "B": _image_tensor(truth_b["B"], nc_b),
        "A_mask": _mask_tensor(truth_a["mask"]),
        "B_mask": _mask_tensor(truth_b["mask"]),
        "A_outline": _mask_tensor(truth_a["outline"]),
        "B_colors": color_table,
        "B_count": torch.tensor(len(layout_b), dtype=torch.int64),
        "A_layout": layout_to_tensor(layout_a),
        "B_layout": layout_to_tensor(layout_b),
        "A_path": f"shapes/{split}/{index}/A",
        "B_path": f"shapes/{split}/{index}/B",
    }


class ShapesDataset(Dataset):
    """``length`` items of one split of the shapes data set (see :func:`make_item`)."""

    def __init__(
        self,
        split: str,
        length: int,
        size: int = BASE_SIZE,
        seed: int = 0,
        paired: bool = False,
        nc_a: int = 3,
        nc_b: int = 3,
    ) -> None:
        if split not in SPLIT_IDS:
            raise ValueError(f"split must be one of {', '.join(SPLIT_IDS)}, got {split!r}")
        self.split, self.length, self.size, self.seed, self.paired = split, length, size, seed, paired
        self.nc_a, self.nc_b = nc_a, nc_b

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} items")
        return make_item(self.seed, self.split, index, self.size, self.paired, self.nc_a, self.nc_b)
