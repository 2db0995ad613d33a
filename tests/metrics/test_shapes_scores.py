"""Shapes scores against the references of SHAPES_NOTES.md (no network involved)."""

from __future__ import annotations

import numpy as np
import torch

from imtrans.data.shapes import make_item, render_b, sample_colors
from imtrans.metrics import shapes as S
from imtrans.metrics.networks import to_uint8


def _items(n, size=64):
    return [make_item(1234, "test", i, size) for i in range(n)]


def test_content_iou_is_one_for_real_b_and_low_for_the_identity():
    items = _items(24)
    masks = torch.stack([it["A_mask"] for it in items])
    real_b = to_uint8(torch.stack([it["B"] for it in items]))
    identity = to_uint8(torch.stack([it["A"] for it in items]))
    assert S.content_iou(real_b, masks).min() > 0.97
    assert 0.2 < float(S.content_iou(identity, masks).mean()) < 0.5  # notes: 0.35
    blank = torch.full_like(real_b, 200)
    assert float(S.content_iou(blank, masks).max()) == 0.0


def test_style_spread_of_recoloured_real_images_and_of_a_constant_style():
    rng = np.random.default_rng(0)
    items = _items(8)
    groups = []
    for it in items:
        from imtrans.data.shapes import layout_from_tensor

        layout = layout_from_tensor(it["B_layout"])
        groups.append(
            torch.stack(
                [
                    torch.from_numpy(render_b(layout, sample_colors(rng, len(layout)), 64)).permute(2, 0, 1)
                    for _ in range(8)
                ]
            )
        )
    samples = torch.stack(groups)  # N x 8 x 3 x 64 x 64
    masks = torch.stack([it["B_mask"] for it in items])
    fg, bg = S.style_spread(samples, masks)
    assert 100 < float(fg.mean()) < 200 and 20 < float(bg.mean()) < 70  # notes: 151 / 42
    same = samples[:, :1].expand_as(samples)
    fg0, bg0 = S.style_spread(same, masks)
    assert float(fg0.abs().max()) == 0 and float(bg0.abs().max()) == 0


def test_style_spread_of_two_known_colours():
    img = torch.zeros(1, 2, 3, 4, 4, dtype=torch.uint8)
    img[0, 1] = 30  # second sample: (30, 30, 30) everywhere
    mask = torch.zeros(1, 4, 4)
    mask[0, :2] = 1
    fg, bg = S.style_spread(img, mask)
    assert torch.allclose(fg, torch.tensor([30 * 3**0.5], dtype=torch.float64))
    assert torch.allclose(bg, fg)


def test_outline_iou_of_real_a_images():
    items = _items(8)
    layouts = torch.stack([it["B_layout"] for it in items])
    outlines = S.outline_masks(layouts, 64)
    real_a = to_uint8(torch.stack([it["A"] for it in items]))
    iou = S.outline_iou(real_a, outlines)
    undilated = S.outline_iou(real_a, S.outline_masks(layouts, 64, dilate=0))
    assert float(undilated.min()) == 1.0 and 0.3 < float(iou.mean()) < 0.8
    assert float(S.outline_iou(torch.full_like(real_a, 255), outlines).max()) == 0.0
