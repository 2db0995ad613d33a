"""Exact scores on the procedural shapes data set; no pretrained network (data: :mod:`imtrans.data.shapes`).

All colour distances are Euclidean in RGB on the 0-255 scale; images are uint8 N x 3 x H x W
(grayscale repeated), masks bool N x H x W.

- :func:`content_iou` (IoU_AB@60, content kept): the output's foreground is every pixel farther
  than ``threshold`` from the median colour of the output's border pixels; its IoU with the
  input layout's filled mask. Real B images score 1.00, passing A through 0.35.
- :func:`style_spread` (div_fg / div_bg, style diversity): per sample, the mean colour inside
  (fg) and outside (bg) the known mask; the mean pairwise distance over all pairs of an input's
  samples. Real B recoloured 8 times: 151 / 42; an untrained MUNIT: 23 (fg).
- :func:`outline_iou` (IoU_BA): the IoU of the output's dark pixels (mean RGB < 128) with the
  layout's outline dilated by 1 px. Information only.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from imtrans.data.shapes import layout_from_tensor, render_outline

CONTENT_THRESHOLD = 60.0
DARK_THRESHOLD = 128.0


def _iou(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Per-image IoU of two bool N x H x W masks (1 when both are empty)."""
    inter = (pred & truth).flatten(1).sum(1).double()
    union = (pred | truth).flatten(1).sum(1).double()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


def foreground(images: torch.Tensor, threshold: float = CONTENT_THRESHOLD) -> torch.Tensor:
    """Bool N x H x W: pixels farther than ``threshold`` from the median colour of the border ring."""
    x = images.double()
    border = torch.cat([x[:, :, 0, :], x[:, :, -1, :], x[:, :, 1:-1, 0], x[:, :, 1:-1, -1]], dim=2)
    median = torch.quantile(border, 0.5, dim=2)  # numpy's median (the mean of the middle two)
    return (x - median[:, :, None, None]).pow(2).sum(1).sqrt() > threshold


def content_iou(
    images: torch.Tensor, masks: torch.Tensor, threshold: float = CONTENT_THRESHOLD
) -> torch.Tensor:
    """Per-image IoU_AB@threshold of uint8 outputs against the input layouts' filled masks."""
    truth = masks.reshape(len(images), *images.shape[-2:]).to(images.device) > 0.5
    return _iou(foreground(images, threshold), truth)


def style_spread(samples: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-input (div_fg, div_bg) of uint8 samples N x S x 3 x H x W (S >= 2) given bool masks N x H x W."""
    n, s = samples.shape[:2]
    x = samples.double()
    fg = (masks.reshape(n, 1, 1, *samples.shape[-2:]).to(samples.device) > 0.5).double()
    bg = 1.0 - fg
    mean_fg = (x * fg).sum((3, 4)) / fg.sum((3, 4)).clamp_min(1)  # N x S x 3
    mean_bg = (x * bg).sum((3, 4)) / bg.sum((3, 4)).clamp_min(1)
    iu = torch.triu_indices(s, s, offset=1)

    def spread(means):
        dist = torch.cdist(means, means)  # N x S x S
        return dist[:, iu[0], iu[1]].mean(1)

    return spread(mean_fg), spread(mean_bg)


def outline_masks(layouts: torch.Tensor, size: int, dilate: int = 1) -> torch.Tensor:
    """Bool N x size x size: each layout's outline (as rendered in domain A), dilated by ``dilate`` px."""
    masks = np.stack([render_outline(layout_from_tensor(t), size) for t in layouts.cpu()])
    out = torch.from_numpy(masks).float()[:, None]
    if dilate:
        out = F.max_pool2d(out, 2 * dilate + 1, stride=1, padding=dilate)
    return out[:, 0] > 0


def outline_iou(images: torch.Tensor, outlines: torch.Tensor) -> torch.Tensor:
    """Per-image IoU of the dark pixels of uint8 outputs with (dilated) outline masks."""
    dark = images.double().mean(1) < DARK_THRESHOLD
    return _iou(dark, outlines.to(dark.device))
