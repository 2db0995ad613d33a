"""Differentiable augmentation of everything a discriminator sees (the ``augment`` config group).

Small training sets let a discriminator memorise its reals; augmenting every D input, real and
fake, in the D step and in the G step, with transforms the gradient flows through keeps its
feedback useful without the augmentation leaking into the generator's outputs:

- ``none`` (:class:`Augment`): the identity, every paper preset's default;
- ``diffaugment`` (:class:`DiffAugment`): Zhao et al., "Differentiable Augmentation for
  Data-Efficient GAN Training" (NeurIPS 2020): ``color``, ``translation``, ``cutout``;
- ``ada`` (:class:`AdaptiveAugment`): Karras et al., "Training Generative Adversarial Networks
  with Limited Data" (NeurIPS 2020): kornia ops each applied with a probability ``p`` that is
  raised or lowered so that the overfitting heuristic r_t = E[sign(D(real))] stays near 0.6.

The interface (:meth:`Augment.forward`): ``aug(*parts, maps=())`` takes the parts of ONE
discriminator input (e.g. pix2pix's condition A and image B, each N x C_i x H x W) and returns
them transformed by one random transform: fresh parameters per call, per-sample parameters
inside the batch, the same parameters for every part (so a conditional D sees A and B with the
same geometry). Images are in [-1, 1], as everywhere in imtrans; the outputs may leave that range slightly,
as the papers' do, and are not clamped (clamping would cut the gradient). ``maps`` lists the
indices of parts that are label maps (one-hot classes, boundary maps, instance features):
they get the geometry only, resampled with nearest neighbours, never colour. Everything runs
on the inputs' device and is differentiable w.r.t. the inputs (also twice, as an R1 penalty
through the augmentation needs). Callers do not call these modules directly:
``TranslationModule.discriminate`` does, for every method.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
from torch import nn

Tensors = tuple[torch.Tensor, ...]


def _check_parts(parts: Sequence[torch.Tensor]) -> None:
    if not parts:
        raise ValueError("augment: no input given")
    n, h, w = parts[0].shape[0], parts[0].shape[-2], parts[0].shape[-1]
    for part in parts:
        if part.dim() != 4 or (part.shape[0], part.shape[-2], part.shape[-1]) != (n, h, w):
            raise ValueError(
                f"augment: every part must be N x C x {h} x {w} with N={n}, got {tuple(part.shape)}"
            )


class Augment(nn.Module):
    """The identity (``augment=none``), and the interface of the others.

    ``forward(*parts, maps=())`` returns the very tensors it was given (no copy, no op), so a
    run with ``augment=none`` computes exactly what it computed before augmentation existed.
    """

    #: whether ``observe`` uses the scores (the base class skips collecting them otherwise)
    observes_reals: bool = False

    def forward(self, *parts: torch.Tensor, maps: Iterable[int] = ()) -> Tensors:
        return tuple(parts)

    def observe(self, scores: torch.Tensor | Sequence[torch.Tensor], boundary: float = 0.0) -> None:
        """D's raw outputs on real images (one tensor, or one per scale); unused here."""

    def step(self, images: int) -> dict[str, float]:
        """End of an iteration in which the discriminators saw ``images`` real images (all
        processes together); returns the values to log. Nothing here."""
        return {}


# ---------------------------------------------------------------------------------- DiffAugment
# The three policies as pure functions of their random parameters, so that tests can check
# them against the paper's definition with fixed parameters.
def brightness(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """x + shift: ``shift`` N x 1 x 1 x 1 (DiffAugment draws U(-0.5, 0.5))."""
    return x + shift


def saturation(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """(x - m) * factor + m with m the per-pixel mean over channels (N x 1 x H x W);
    ``factor`` N x 1 x 1 x 1 (DiffAugment draws U(0, 2))."""
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * factor + mean


def contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """(x - m) * factor + m with m the per-image mean over channels and pixels (N x 1 x 1 x 1);
    ``factor`` N x 1 x 1 x 1 (DiffAugment draws U(0.5, 1.5))."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * factor + mean


def translate(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, padding: str = "zeros") -> torch.Tensor:
    """Shift each image by whole pixels: out[n, :, i, j] = x[n, :, i - dy[n], j - dx[n]].

    ``dy``, ``dx``: int64 N, any sign. Pixels shifted in from outside are 0 (``padding="zeros"``,
    DiffAugment's) or mirrored (``"reflection"``, ADA's). Indexing, not resampling: exact, and
    differentiable any number of times (the gradient is the inverse shift).
    """
    n, _, h, w = x.shape
    rows = torch.arange(h, device=x.device)[None, :] - dy.to(x.device)[:, None]  # N x H
    cols = torch.arange(w, device=x.device)[None, :] - dx.to(x.device)[:, None]  # N x W
    if padding == "reflection":
        rows, cols = _reflect(rows, h), _reflect(cols, w)
        inside = None
    elif padding == "zeros":
        inside = ((rows >= 0) & (rows < h))[:, None, :, None] & ((cols >= 0) & (cols < w))[:, None, None, :]
        rows, cols = rows.clamp(0, h - 1), cols.clamp(0, w - 1)
    else:
        raise ValueError(f"padding must be 'zeros' or 'reflection', got {padding!r}")
    batch = torch.arange(n, device=x.device)[:, None, None]
    out = x.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    return out if inside is None else out * inside.to(out.dtype)


def _reflect(index: torch.Tensor, size: int) -> torch.Tensor:
    """Mirror indices into [0, size) without repeating the edge pixel (as ``F.pad(reflect)``)."""
    if size == 1:
        return torch.zeros_like(index)
    period = 2 * (size - 1)
    index = index.remainder(period)
    return torch.where(index >= size, period - index, index)


def cutout(x: torch.Tensor, cy: torch.Tensor, cx: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Zero a ``size`` = (h, w) rectangle per image, rows [cy - h//2, cy - h//2 + h) and columns
    [cx - w//2, cx - w//2 + w), clipped to the image. ``cy``, ``cx``: int64 N (DiffAugment
    draws the centre uniformly so that the square may hang over any edge by up to half)."""
    _, _, height, width = x.shape
    rows = torch.arange(height, device=x.device)[None, :] - (cy.to(x.device)[:, None] - size[0] // 2)
    cols = torch.arange(width, device=x.device)[None, :] - (cx.to(x.device)[:, None] - size[1] // 2)
    in_rows = (rows >= 0) & (rows < size[0])
    in_cols = (cols >= 0) & (cols < size[1])
    keep = ~(in_rows[:, None, :, None] & in_cols[:, None, None, :])  # N x 1 x H x W
    return x * keep.to(x.dtype)


POLICIES = ("color", "translation", "cutout")


class DiffAugment(Augment):
    """DiffAugment (Zhao et al. 2020) for the parts of one discriminator input.

    Args:
        policy: a comma-separated subset of ``color,translation,cutout`` (or a list), applied
            in that order, each every call:
            - ``color``: brightness x + U(-0.5, 0.5), then saturation x U(0, 2) around the
              per-pixel channel mean, then contrast x U(0.5, 1.5) around the per-image mean,
              each with one parameter per sample;
            - ``translation``: a whole-pixel shift by up to ``translation_ratio`` (1/8) of the
              height and width each, independently per sample, zero padding;
            - ``cutout``: one rectangle of ``cutout_ratio`` (1/2) of the height and width set to
              zero, at a uniformly random centre per sample.
        translation_ratio, cutout_ratio: the paper's 0.125 and 0.5.

    The same parameters go to every part of a call; colour acts on each image part on its own
    (its own channel mean) and not on ``maps``; translation and cutout act on every part, maps
    included (a shifted-in or cut-out region of a one-hot map holds no class, as in the image).
    The transforms are written here from the paper's definitions: kornia's ``RandomTranslate``
    resamples (bilinear, fractional), its ``RandomErasing`` draws the size, and its colour ops
    use other definitions (HSV saturation, grey-level contrast mean), none the paper's.
    """

    def __init__(
        self,
        policy: str | Sequence[str] = "color,translation,cutout",
        translation_ratio: float = 0.125,
        cutout_ratio: float = 0.5,
    ):
        super().__init__()
        names = [p.strip() for p in policy.split(",")] if isinstance(policy, str) else [*policy]
        names = [p for p in names if p]
        unknown = [p for p in names if p not in POLICIES]
        if unknown:
            raise ValueError(f"augment.policy: unknown {unknown}; choose from {','.join(POLICIES)}")
        self.policy = tuple(p for p in POLICIES if p in names)  # the paper's order
        self.translation_ratio = float(translation_ratio)
        self.cutout_ratio = float(cutout_ratio)

    def extra_repr(self) -> str:
        return f"policy={','.join(self.policy)}"

    def forward(self, *parts: torch.Tensor, maps: Iterable[int] = ()) -> Tensors:
        _check_parts(parts)
        maps = set(maps)
        ref = parts[0]
        n, h, w = ref.shape[0], ref.shape[-2], ref.shape[-1]
        out = list(parts)

        def uniform(low: float, high: float) -> torch.Tensor:
            return torch.rand(n, 1, 1, 1, device=ref.device, dtype=ref.dtype) * (high - low) + low

        if "color" in self.policy:
            shift, sat, con = uniform(-0.5, 0.5), uniform(0.0, 2.0), uniform(0.5, 1.5)
            for i, x in enumerate(out):
                if i not in maps:
                    out[i] = contrast(saturation(brightness(x, shift), sat), con)
        if "translation" in self.policy:
            sy, sx = int(h * self.translation_ratio + 0.5), int(w * self.translation_ratio + 0.5)
            dy = torch.randint(-sy, sy + 1, (n,), device=ref.device)
            dx = torch.randint(-sx, sx + 1, (n,), device=ref.device)
            out = [translate(x, dy, dx) for x in out]
        if "cutout" in self.policy:
            size = (int(h * self.cutout_ratio + 0.5), int(w * self.cutout_ratio + 0.5))
            # centres 0..H-1 for odd sizes, 0..H for even ones: the square's reach beyond each
            # edge is then symmetric (at most half its size).
            cy = torch.randint(0, h + 1 - size[0] % 2, (n,), device=ref.device)
            cx = torch.randint(0, w + 1 - size[1] % 2, (n,), device=ref.device)
            out = [cutout(x, cy, cx, size) for x in out]
        return tuple(out)


# ------------------------------------------------------------------------------------------ ADA
def _scores_list(scores: torch.Tensor | Sequence[torch.Tensor]) -> list[torch.Tensor]:
    if torch.is_tensor(scores):
        return [scores]
    flat = list(scores)
    if not flat or not all(torch.is_tensor(s) for s in flat):
        raise TypeError("augment.observe: scores must be a tensor or a list of tensors (one per scale)")
    return flat


class AdaptiveAugment(Augment):
    """ADA (Karras et al. 2020): kornia ops, each applied to a sample with probability ``p``.

    The pipeline, in this order (ADA's ``bgc`` groups; kornia where kornia has the op):

    ============================  =========================================================
    x-flip                        ``kornia.augmentation.RandomHorizontalFlip``
    90-degree rotation            ``RandomRotation90`` (1-3 quarter turns)
    integer translation           :func:`translate`, up to 1/8 of the size, mirrored padding
                                  (kornia's ``RandomTranslate`` resamples fractionally)
    isotropic scaling             ``RandomAffine(scale=(0.75, 1.33))`` (ADA: 2^N(0, 0.2))
    rotation                      ``RandomAffine(degrees=180)`` (ADA: uniform, full circle)
    anisotropic scaling           ``RandomAffine(scale=(0.75, 1.33, 0.75, 1.33))``: x and y
                                  independently (kornia has no area-preserving form)
    brightness                    ``RandomBrightness((0.8, 1.2))`` = +-0.2 on [0, 1]
    contrast                      ``RandomContrast((0.5, 2.0))`` (ADA: 2^N(0, 0.5))
    hue rotation                  ``RandomHue((-0.5, 0.5))``: the full circle, 3-channel parts
    saturation                    ``RandomSaturation((0.5, 2.0))`` (ADA: 2^N(0, 1)), 3-channel
    ============================  =========================================================

    Geometric ops resample with mirrored padding (ADA's); ``maps`` get the same geometry with
    nearest-neighbour resampling and no colour. Colour ops see [0, 1] (kornia's range), mapped
    back to [-1, 1], unclipped so the gradient is not cut; every image part gets the same
    parameters. ``ops`` picks a subset by the names in :attr:`OPS`.

    The schedule: :meth:`observe` accumulates sign(D(real) - boundary) over every score of every
    discriminator call on reals; every ``interval`` iterations (4, as the paper) r_t is their
    mean and ``p <- clamp(p + sign(r_t - target) * images * interval / speed, 0, 1)`` with
    ``images`` the real images of an iteration (all processes): p can go from 0 to 1 in
    ``speed`` (500k) images. ``p``, the last ``rt``, the accumulators and the iteration count
    since the last adjustment are buffers: saved in every checkpoint, restored bit-exactly.
    ``p`` may be fixed (``adjust=false``) at ``p_init``.
    """

    OPS = (
        "xflip",
        "rotate90",
        "xint",
        "scale",
        "rotate",
        "aniso",
        "brightness",
        "contrast",
        "hue",
        "saturation",
    )

    observes_reals = True

    def __init__(
        self,
        target: float = 0.6,
        interval: int = 4,
        speed: float = 500_000,
        p_init: float = 0.0,
        adjust: bool = True,
        ops: Sequence[str] | str | None = None,
        translation_ratio: float = 0.125,
    ):
        super().__init__()
        import kornia.augmentation as K

        names = (
            self.OPS if ops is None else [o.strip() for o in ops.split(",")] if isinstance(ops, str) else ops
        )
        unknown = [o for o in names if o not in self.OPS]
        if unknown:
            raise ValueError(f"augment.ops: unknown {unknown}; choose from {','.join(self.OPS)}")
        if interval < 1 or speed <= 0 or not 0 <= p_init <= 1:
            raise ValueError("augment: interval >= 1, speed > 0 and 0 <= p_init <= 1")
        self.target, self.interval, self.speed = float(target), int(interval), float(speed)
        self.adjust = bool(adjust)
        self.translation_ratio = float(translation_ratio)
        pad = "reflection"
        build = {
            "xflip": lambda: K.RandomHorizontalFlip(),
            "rotate90": lambda: K.RandomRotation90(times=(1, 3)),
            "xint": lambda: None,  # ours: translate()
            "scale": lambda: K.RandomAffine(degrees=0.0, scale=(0.75, 1.33), padding_mode=pad),
            "rotate": lambda: K.RandomAffine(degrees=180.0, padding_mode=pad),
            "aniso": lambda: K.RandomAffine(degrees=0.0, scale=(0.75, 1.33, 0.75, 1.33), padding_mode=pad),
            "brightness": lambda: K.RandomBrightness((0.8, 1.2), clip_output=False),
            "contrast": lambda: K.RandomContrast((0.5, 2.0), clip_output=False),
            "hue": lambda: K.RandomHue((-0.5, 0.5)),
            "saturation": lambda: K.RandomSaturation((0.5, 2.0)),
        }
        self.ops = tuple(o for o in self.OPS if o in names)
        # A plain dict, not submodules: their range constants stay out of the state dict (a
        # checkpoint holds the schedule only); they draw on the CPU, from the global stream.
        self.kornia_ops: dict[str, nn.Module] = {o: build[o]() for o in self.ops if o != "xint"}
        self.register_buffer("p", torch.tensor(float(p_init), dtype=torch.float64))
        self.register_buffer("rt", torch.zeros((), dtype=torch.float64))
        self.register_buffer("sign_sum", torch.zeros((), dtype=torch.float64))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("since", torch.zeros((), dtype=torch.long))
        # the accumulators as all processes last agreed them (None: take the buffers as agreed)
        self._synced: torch.Tensor | None = torch.zeros(2, dtype=torch.float64)

    def extra_repr(self) -> str:
        return (
            f"ops={','.join(self.ops)}, target={self.target}, interval={self.interval}, speed={self.speed:g}"
        )

    # ------------------------------------------------------------------ the transform
    def forward(self, *parts: torch.Tensor, maps: Iterable[int] = ()) -> Tensors:
        _check_parts(parts)
        p = float(self.p)
        if p == 0.0:  # nothing would be applied: the inputs themselves, no copies
            return tuple(parts)
        maps = set(maps)
        images = [i for i in range(len(parts)) if i not in maps]
        out = list(parts)
        # Geometry once on the channel-concatenated parts (one parameter draw for all), maps
        # apart with the same parameters and nearest-neighbour resampling.
        groups = [g for g in ([*images], sorted(maps)) if g]
        stacked = [torch.cat([out[i] for i in g], 1) for g in groups]
        nearest = [False, True] if images else [True]
        n, h, w = parts[0].shape[0], parts[0].shape[-2], parts[0].shape[-1]
        for name in self.ops:
            if name in ("brightness", "contrast", "hue", "saturation"):
                continue
            if name == "xint":
                apply = torch.rand(n, device=parts[0].device) < p
                sy, sx = int(h * self.translation_ratio + 0.5), int(w * self.translation_ratio + 0.5)
                dy = torch.randint(-sy, sy + 1, (n,), device=parts[0].device) * apply
                dx = torch.randint(-sx, sx + 1, (n,), device=parts[0].device) * apply
                stacked = [translate(x, dy, dx, padding="reflection") for x in stacked]
                continue
            op = self.kornia_ops[name]
            op.p = p
            params = op.forward_parameters(stacked[0].shape)
            stacked = [self._geometric(op, x, params, nn_) for x, nn_ in zip(stacked, nearest)]
        for g, x in zip(groups, stacked):
            for i, piece in zip(g, x.split([parts[i].shape[1] for i in g], 1)):
                out[i] = piece
        for name in ("brightness", "contrast", "hue", "saturation"):
            if name not in self.ops or not images:
                continue
            op = self.kornia_ops[name]
            op.p = p
            targets = [i for i in images if name in ("brightness", "contrast") or out[i].shape[1] == 3]
            if not targets:
                continue
            params = op.forward_parameters(out[targets[0]].shape)
            for i in targets:
                out[i] = op((out[i] + 1) / 2, params=params) * 2 - 1
        return tuple(out)

    @staticmethod
    def _geometric(op: nn.Module, x: torch.Tensor, params: dict, nearest: bool) -> torch.Tensor:
        if not nearest:
            return op(x, params=params)
        from kornia.constants import Resample

        flags = op.flags
        op.flags = {**flags, "resample": Resample.NEAREST}
        try:
            return op(x, params=params)
        finally:
            op.flags = flags

    # ------------------------------------------------------------------ the schedule
    def observe(self, scores: torch.Tensor | Sequence[torch.Tensor], boundary: float = 0.0) -> None:
        """Add sign(score - boundary) of every element of ``scores`` (D's raw outputs on real
        images; a tensor or one per scale) to the accumulators. ``boundary`` is the score
        between real and fake: 0 for logits (BCE, hinge), 0.5 for an LSGAN with targets 0/1.
        Stays on the device (no sync)."""
        with torch.no_grad():
            for s in _scores_list(scores):
                s = s.detach()
                self.sign_sum += torch.sign(s.double() - boundary).sum()
                self.count += s.numel()

    def step(self, images: int) -> dict[str, float]:
        """One iteration done, its discriminators having seen ``images`` real images (all
        processes together). Every ``interval``-th call: r_t and the adjustment of p. Returns
        ``{"augment/p", "augment/rt"}`` (rt: the last measured value, 0 before the first)."""
        self._sync()
        self.since += 1
        if int(self.since) >= self.interval:
            if float(self.count) > 0:
                self.rt.copy_(self.sign_sum / self.count)
                if self.adjust:
                    direction = (
                        math.copysign(1.0, float(self.rt) - self.target)
                        if float(self.rt) != self.target
                        else 0.0
                    )
                    delta = direction * images * self.interval / self.speed
                    self.p.copy_((self.p + delta).clamp(0.0, 1.0))
            self.sign_sum.zero_()
            self.count.zero_()
            self.since.zero_()
            self._synced = torch.zeros(2, dtype=torch.float64)
        return {"augment/p": float(self.p), "augment/rt": float(self.rt)}

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        # a resumed process takes the loaded accumulators (rank 0's) as agreed by all
        self._synced = None

    def _sync(self) -> None:
        """Sum this iteration's observations over the DDP processes, so that every process
        holds the same accumulators (and so the same p): each adds what it observed since the
        last agreement. DDP's buffer broadcast from rank 0 (at each forward) is then harmless."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return
        current = torch.stack([self.sign_sum, self.count])
        synced = current if self._synced is None else self._synced.to(current)
        delta = current - synced
        dist.all_reduce(delta)
        agreed = synced + delta
        self.sign_sum.copy_(agreed[0])
        self.count.copy_(agreed[1])
        self._synced = agreed.clone()


def realness_scores(output) -> list[torch.Tensor]:
    """The real-vs-fake scores in a discriminator's output, for ADA's r_t: a tensor, a list of
    tensors (one per scale), or a list of per-scale lists of features whose last entry is the
    score (pix2pixHD's ``getIntermFeat``). Other outputs need the caller's ``scores=``."""
    if torch.is_tensor(output):
        return [output]
    if isinstance(output, (list, tuple)) and output:
        if all(torch.is_tensor(o) for o in output):
            return list(output)
        if all(isinstance(o, (list, tuple)) and o and torch.is_tensor(o[-1]) for o in output):
            return [o[-1] for o in output]
    raise TypeError(
        "discriminate(real=True): cannot tell the scores in this discriminator output; pass scores=<fn>"
    )
