"""imtrans.augment: each DiffAugment policy against the paper's definition with fixed random
parameters, one transform for every part of a conditional D input, gradients to the generator,
ADA's p schedule and its state, and ``none`` as the identity."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from imtrans.augment import (
    AdaptiveAugment,
    Augment,
    DiffAugment,
    brightness,
    contrast,
    cutout,
    realness_scores,
    saturation,
    translate,
)


def _images(n=2, c=3, h=8, w=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, h, w, generator=g) * 2 - 1


# ------------------------------------------------------------------------- the definitions
def test_color_functions_follow_the_definitions():
    x = _images(n=2, c=3, h=2, w=3)
    shift = torch.tensor([0.3, -0.2]).view(2, 1, 1, 1)
    factor = torch.tensor([1.7, 0.4]).view(2, 1, 1, 1)
    b, s, c = brightness(x, shift), saturation(x, factor), contrast(x, factor)
    for n in range(2):
        image_mean = sum(float(x[n, ch, i, j]) for ch in range(3) for i in range(2) for j in range(3)) / 18
        for i in range(2):
            for j in range(3):
                pixel_mean = sum(float(x[n, ch, i, j]) for ch in range(3)) / 3
                for ch in range(3):
                    v, f = float(x[n, ch, i, j]), float(factor[n])
                    assert float(b[n, ch, i, j]) == pytest.approx(v + float(shift[n]), abs=1e-6)
                    assert float(s[n, ch, i, j]) == pytest.approx((v - pixel_mean) * f + pixel_mean, abs=1e-6)
                    assert float(c[n, ch, i, j]) == pytest.approx((v - image_mean) * f + image_mean, abs=1e-6)


def test_translate_shifts_whole_pixels_with_zero_or_mirrored_padding():
    x = torch.arange(2 * 1 * 4 * 5, dtype=torch.float32).view(2, 1, 4, 5) + 1
    dy, dx = torch.tensor([1, -2]), torch.tensor([-2, 3])
    out = translate(x, dy, dx)
    mirrored = translate(x, dy, dx, padding="reflection")

    def mirror(i, size):
        i = abs(i)
        return 2 * (size - 1) - i if i >= size else i

    for n in range(2):
        for i in range(4):
            for j in range(5):
                si, sj = i - int(dy[n]), j - int(dx[n])
                inside = 0 <= si < 4 and 0 <= sj < 5
                assert out[n, 0, i, j] == (x[n, 0, si, sj] if inside else 0)
                assert mirrored[n, 0, i, j] == x[n, 0, mirror(si, 4), mirror(sj, 5)]


def test_cutout_zeroes_a_rectangle_centred_on_the_given_pixel_clipped_to_the_image():
    x = torch.ones(3, 2, 8, 8)
    out = cutout(x, torch.tensor([4, 0, 8]), torch.tensor([4, 7, 0]), (4, 4))
    expected = torch.ones(3, 2, 8, 8)
    expected[0, :, 2:6, 2:6] = 0  # rows/cols [c - 2, c + 2)
    expected[1, :, 0:2, 5:8] = 0  # over the top and the right edge
    expected[2, :, 6:8, 0:2] = 0  # centre on the bottom edge (even size: centres 0..H)
    assert torch.equal(out, expected)


def test_diffaugment_color_draws_the_papers_ranges():
    x = _images(n=4)
    torch.manual_seed(3)
    out = DiffAugment("color")(x)[0]
    torch.manual_seed(3)
    shift, sat, con = (torch.rand(4, 1, 1, 1) for _ in range(3))
    expected = contrast(saturation(brightness(x, shift - 0.5), sat * 2), con + 0.5)
    assert torch.allclose(out, expected, atol=1e-6)


def test_diffaugment_translation_and_cutout_draw_the_papers_ranges():
    """An impulse at the centre of 32 x 32 images: shifts of up to int(32/8 + 0.5) = 4 pixels
    per axis, every value reached; cutout squares of 16 x 16 pixels (fewer at the edges)."""
    torch.manual_seed(0)
    x = torch.zeros(64, 1, 32, 32)
    x[:, :, 16, 16] = 1
    shifts = set()
    for _ in range(4):
        out = DiffAugment("translation")(x)[0]
        for image in out[:, 0]:
            (i, j), *_ = image.nonzero().tolist()
            shifts.add((i - 16, j - 16))
    assert {s for s, _ in shifts} == set(range(-4, 5)) == {s for _, s in shifts}
    cut = DiffAugment("cutout")(torch.ones(256, 1, 32, 32))[0][:, 0] == 0
    rows, cols = cut.any(2).sum(1), cut.any(1).sum(1)
    assert rows.max() == cols.max() == 16 and rows.min() >= 8 and cols.min() >= 8
    assert torch.equal(cut.sum((1, 2)), rows * cols)  # one rectangle per image


def test_diffaugment_draws_fresh_per_sample_parameters_each_call():
    x = _images(n=1).expand(4, -1, -1, -1)
    aug = DiffAugment()
    a, b = aug(x)[0], aug(x)[0]
    assert not torch.equal(a, b)
    assert not torch.equal(a[0], a[1])  # per sample inside the batch


def test_policy_is_checked():
    with pytest.raises(ValueError, match="unknown"):
        DiffAugment("color,flip")
    assert DiffAugment("cutout, color").policy == ("color", "cutout")


# ------------------------------------------------------------------ one transform for all parts
@pytest.mark.parametrize(
    "aug",
    [DiffAugment(), AdaptiveAugment(p_init=1.0)],
    ids=["diffaugment", "ada"],
)
def test_the_parts_of_a_conditional_input_get_the_same_transform(aug):
    torch.manual_seed(0)
    a = _images(n=4, h=16, w=16)
    out_a, out_b = aug(a, a.clone())
    assert torch.equal(out_a, out_b)
    assert not torch.allclose(out_a, a)


def test_label_maps_get_the_same_geometry_with_nearest_neighbours_and_no_colour():
    torch.manual_seed(0)
    labels = torch.randint(0, 4, (4, 1, 16, 16)).float()
    one_hot = torch.nn.functional.one_hot(labels[:, 0].long(), 4).permute(0, 3, 1, 2).float()
    image = labels.expand(-1, 3, -1, -1) / 3 * 2 - 1  # the label ids as a grey image
    exact = AdaptiveAugment(p_init=1.0, ops="xflip,rotate90,xint")  # no resampling blur
    out_image, out_maps = exact(image, one_hot, maps=(1,))
    # (quarter turns go through kornia's affine warp: exact up to float rounding)
    assert torch.allclose(out_maps.argmax(1, keepdim=True).float() / 3 * 2 - 1, out_image[:, :1], atol=1e-4)
    assert not torch.equal(out_image, image)
    full = AdaptiveAugment(p_init=1.0)
    _, out_maps = full(image, one_hot, maps=(1,))
    assert set(out_maps.unique().tolist()) <= {0.0, 1.0}  # nearest: still one-hot or empty
    _, diff_maps = DiffAugment()(image, one_hot, maps=(1,))
    assert set(diff_maps.unique().tolist()) <= {0.0, 1.0}  # no colour on maps


# --------------------------------------------------------------------------------- gradients
@pytest.mark.parametrize(
    "aug",
    [DiffAugment(), AdaptiveAugment(p_init=1.0)],
    ids=["diffaugment", "ada"],
)
def test_gradients_reach_the_generator_through_the_augmentation(aug):
    torch.manual_seed(0)
    G, D = nn.Conv2d(3, 3, 3, padding=1), nn.Conv2d(6, 1, 3, padding=1)
    a = _images(n=2, h=16, w=16)
    fake = torch.tanh(G(a))
    D(torch.cat(aug(a, fake), 1)).mean().backward()
    assert G.weight.grad is not None and G.weight.grad.abs().sum() > 0
    assert torch.isfinite(G.weight.grad).all()
    # twice differentiable: an R1 penalty w.r.t. the un-augmented real through the augmentation
    real = a.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(torch.cat(aug(real, real), 1)).sum(), real, create_graph=True)
    grad.pow(2).sum().backward()
    assert D.weight.grad.abs().sum() > 0


# ------------------------------------------------------------------------------- ADA schedule
def _observed(aug, value, iterations, images=16):
    values = {}
    for _ in range(iterations):
        aug.observe([torch.full((4, 1, 3, 3), value), torch.full((4, 1, 2, 2), value)])
        values = aug.step(images)
    return values


def test_ada_raises_p_above_the_target_and_lowers_it_below():
    aug = AdaptiveAugment(target=0.6, interval=4, speed=640)
    step = 16 * 4 / 640
    assert _observed(aug, 1.0, 3) == {"augment/p": 0.0, "augment/rt": 0.0}  # not yet adjusted
    assert _observed(aug, 1.0, 1) == {"augment/p": step, "augment/rt": 1.0}
    _observed(aug, 1.0, 8)
    assert float(aug.p) == pytest.approx(3 * step)
    values = _observed(aug, -1.0, 4)
    assert values["augment/rt"] == -1.0 and float(aug.p) == pytest.approx(2 * step)
    _observed(aug, -1.0, 40)
    assert float(aug.p) == 0.0  # clamped
    # the boundary: LSGAN scores of 0.7 are above 0.5 (realistic), below 0.5 for 0.3
    aug.observe(torch.full((2, 1), 0.7), boundary=0.5)
    aug.observe(torch.full((2, 1), 0.3), boundary=0.5)
    aug.observe(torch.full((4, 1), 0.7), boundary=0.5)
    assert float(aug.sign_sum) / float(aug.count) == pytest.approx(0.5)


def test_ada_p_stays_below_one_and_fixed_when_not_adjusting():
    aug = AdaptiveAugment(interval=1, speed=10)
    _observed(aug, 1.0, 5)
    assert float(aug.p) == 1.0
    fixed = AdaptiveAugment(interval=1, p_init=0.3, adjust=False)
    assert _observed(fixed, 1.0, 3)["augment/p"] == pytest.approx(0.3)


def test_ada_state_survives_a_state_dict_round_trip_bit_exactly():
    aug = AdaptiveAugment(interval=3, speed=1000)
    _observed(aug, 1.0, 7)
    aug.observe(torch.randn(5, 7))
    state = aug.state_dict()
    assert sorted(state) == sorted(["count", "p", "rt", "sign_sum", "since"])
    copy = AdaptiveAugment(interval=3, speed=1000)
    copy.load_state_dict(state)
    for key, value in copy.state_dict().items():
        assert torch.equal(value, state[key]) and value.dtype == state[key].dtype, key
    assert _observed(copy, -1.0, 5) == _observed(aug, -1.0, 5)
    assert torch.equal(copy.p, aug.p)


def test_ada_at_p_zero_is_the_identity_and_at_p_one_transforms():
    x = _images(n=4, h=16, w=16)
    (out,) = AdaptiveAugment()(x)
    assert out is x
    torch.manual_seed(0)
    (out,) = AdaptiveAugment(p_init=1.0)(x)
    assert out.shape == x.shape and not torch.allclose(out, x)


def test_ada_applies_each_op_with_probability_p():
    torch.manual_seed(0)
    x = _images(n=1, h=16, w=16).expand(2000, -1, -1, -1)
    (out,) = AdaptiveAugment(p_init=0.3, ops="xflip")(x)
    flipped = (out - x).flatten(1).abs().amax(1) > 0
    assert 0.25 < flipped.float().mean() < 0.35


def test_realness_scores_of_the_discriminator_outputs():
    t = torch.zeros(2, 1)
    assert realness_scores(t)[0] is t
    assert realness_scores([t, t]) == [t, t]
    features = [[torch.ones(1), t], [torch.ones(1), t]]  # pix2pixHD: features, score last
    assert realness_scores(features) == [t, t]
    with pytest.raises(TypeError, match="scores="):
        realness_scores(([t], t))


# -------------------------------------------------------------------------------------- none
def test_none_returns_the_very_same_tensors():
    a, b = _images(), _images(seed=1)
    out = Augment()(a, b, maps=(1,))
    assert out[0] is a and out[1] is b
    assert Augment().step(4) == {} and not list(Augment().state_dict())
