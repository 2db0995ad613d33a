"""Sample grids of fixed inputs: PNG files under ``samples/`` and images in the loggers."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from PIL import Image

from imtrans.methods.base import DIRECTIONS


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float (any shape) -> uint8 [0, 255]. Loggers need uint8: W&B turns floats
    in [0, 1] into an all-black image without a warning (ENVIRONMENT.md §4)."""
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def _rgb(x: torch.Tensor) -> torch.Tensor:
    """N x C x H x W with C in {1, 3} -> N x 3 x H x W (grayscale repeated)."""
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def make_grid(rows: list[list[torch.Tensor]], pad: int = 2) -> torch.Tensor:
    """Tile images into a grid: ``rows[i][j]`` is 3 x H x W in [-1, 1]; returns uint8 3 x H' x W'.

    Rows may hold different numbers of images; missing cells stay white.
    """
    h, w = rows[0][0].shape[-2:]
    ncols = max(len(r) for r in rows)
    grid = torch.full((3, len(rows) * (h + pad) + pad, ncols * (w + pad) + pad), 255, dtype=torch.uint8)
    for i, row in enumerate(rows):
        for j, im in enumerate(row):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            grid[:, y : y + h, x : x + w] = to_uint8(_rgb(im[None].cpu()))[0]
    return grid


def attention_overlay(image: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
    """``attention`` (1 x h x w, any range) scaled to [0, 1], upsampled to ``image`` (C x H x W
    in [-1, 1]) and coloured (blue = low, red = high) over it, half and half; 3 x H x W in [-1, 1]."""
    a = attention.detach().float()
    a = (a - a.min()) / (a.max() - a.min()).clamp_min(1e-8)
    a = torch.nn.functional.interpolate(a[None], size=image.shape[-2:], mode="bilinear", align_corners=False)[
        0
    ]
    # a "jet"-like ramp: blue -> cyan -> yellow -> red
    colour = torch.cat(
        [(1.5 - (4 * a - 3).abs()), (1.5 - (4 * a - 2).abs()), (1.5 - (4 * a - 1).abs())]
    ).clamp(0, 1)
    return 0.5 * _rgb(image[None].float().cpu())[0] + 0.5 * (colour.cpu() * 2 - 1)


def translation_grid(module, batch: dict, num_samples: int = 1) -> torch.Tensor:
    """One row per fixed input: for each direction the module supports, the input, its
    ``num_samples`` outputs, the method's attention maps over the input (``attention_maps``:
    U-GAT-IT's CAM) and, for paired data, the target. Directions sit side by side.
    Returns uint8 3 x H x W. A module with a ``sample_grid(batch, num_samples)`` method (e.g.
    multi-domain DRIT++, whose batches are ``{"image", "domain"}``) draws its own grid."""
    if hasattr(module, "sample_grid"):
        return module.sample_grid(batch, num_samples)
    rows: list[list[torch.Tensor]] = []
    paired = (
        getattr(getattr(module.trainer, "datamodule", None), "paired", False) if module._trainer else False
    )
    for direction in module.directions:
        _, tgt = DIRECTIONS[direction]
        found = module.grid_inputs(batch, direction)
        if found is None:
            continue
        x, shown = found
        out = module.translate(x, direction, num_samples=num_samples)
        out = out[:, None] if num_samples == 1 else out
        maps = module.attention_maps(x, direction) or {}
        for i in range(shown.shape[0]):
            under = {"input": shown[i], "output": out[i][0]}
            overlays = [attention_overlay(under[over], m[i]) for m, over in maps.values()]
            cells = [shown[i], *out[i], *overlays]
            if paired and tgt in batch:
                cells.append(batch[tgt][i])
            if len(rows) <= i:
                rows.append([])
            rows[i] += cells
    return make_grid(rows)


def log_image(trainer: L.Trainer, key: str, image: torch.Tensor, step: int) -> None:
    """Send a uint8 3 x H x W image to every logger that shows images."""
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[image.permute(1, 2, 0).numpy()], step=step)
        elif isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(key, image, global_step=step)


class SampleGrid(L.Callback):
    """Writes ``<dirpath>/iter_<k>.png`` every ``every_n_iters`` iterations, after each
    validation during fit and at the end of training, and ``<dirpath>/test.png`` after testing, from the datamodule's fixed inputs
    (``datamodule.fixed_batch()``, the first images of the validation split). Multimodal
    methods show ``num_styles`` outputs per input.
    """

    def __init__(self, dirpath: str, every_n_iters: int = 500, num_styles: int = 6):
        self.dirpath = Path(dirpath)
        self.every_n_iters = every_n_iters
        self.num_styles = num_styles
        self._batch: dict | None = None
        self._last_written = -1

    def _fixed(self, trainer) -> dict | None:
        if self._batch is None:
            dm = trainer.datamodule
            self._batch = dm.fixed_batch() if dm is not None and hasattr(dm, "fixed_batch") else None
        return self._batch

    @rank_zero_only
    def write(self, trainer, module, name: str) -> Path | None:
        batch = self._fixed(trainer)
        if batch is None:
            return None
        # A forked random stream: drawing sample styles never shifts the training's.
        with torch.random.fork_rng(
            devices=[module.device.index or 0] if module.device.type == "cuda" else []
        ):
            grid = translation_grid(module, batch, self.num_styles if module.is_multimodal else 1)
        self.dirpath.mkdir(parents=True, exist_ok=True)
        path = self.dirpath / f"{name}.png"
        Image.fromarray(grid.permute(1, 2, 0).numpy()).save(path)
        log_image(trainer, f"samples/{name.split('_')[0]}", grid, step=module.iteration)
        return path

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        it = module.iteration
        if self.every_n_iters and it % self.every_n_iters == 0:
            self.write(trainer, module, f"iter_{it:07d}")
            self._last_written = it

    def on_validation_end(self, trainer, module):
        # each validation during fit shows the fixed inputs too
        if (
            trainer.state.fn == "fit"
            and not trainer.sanity_checking
            and module.iteration != self._last_written
        ):
            self.write(trainer, module, f"iter_{module.iteration:07d}")
            self._last_written = module.iteration

    def on_train_end(self, trainer, module):
        if module.iteration != self._last_written:
            self.write(trainer, module, f"iter_{module.iteration:07d}")

    def on_test_end(self, trainer, module):
        self.write(trainer, module, "test")
