"""Sample grids of fixed inputs: PNG files under ``samples/`` and images in the loggers."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from PIL import Image, ImageDraw, ImageFont


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float (any shape) -> uint8 [0, 255]. Loggers need uint8: W&B turns floats
    in [0, 1] into an all-black image without a warning."""
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def _rgb(x: torch.Tensor) -> torch.Tensor:
    """N x C x H x W with C in {1, 3} -> N x 3 x H x W (grayscale repeated)."""
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def make_grid(
    rows: list[list[torch.Tensor]],
    pad: int = 2,
    col_titles: list[str] | None = None,
    row_titles: list[str] | None = None,
) -> torch.Tensor:
    """Tile images into a grid: ``rows[i][j]`` is C x H x W (C 1 or 3) in [-1, 1]; returns uint8
    3 x H' x W'.

    Rows may hold different numbers of images; missing cells stay white. ``col_titles`` (one per
    column) are written in a band above the grid and ``row_titles`` in a band on its left, in
    black, so that a grid reads without its documentation.
    """
    h, w = rows[0][0].shape[-2:]
    ncols = max(len(r) for r in rows)
    top = title_band_height(h) if col_titles else 0
    left = title_band_width(row_titles, h) if row_titles else 0
    grid = torch.full(
        (3, top + len(rows) * (h + pad) + pad, left + ncols * (w + pad) + pad), 255, dtype=torch.uint8
    )
    for i, row in enumerate(rows):
        for j, im in enumerate(row):
            y, x = top + pad + i * (h + pad), left + pad + j * (w + pad)
            grid[:, y : y + h, x : x + w] = to_uint8(_rgb(im[None].cpu()))[0]
    if not (col_titles or row_titles):
        return grid
    canvas = Image.fromarray(grid.permute(1, 2, 0).numpy())
    draw = ImageDraw.Draw(canvas)
    for j, title in enumerate(col_titles or []):
        _text(draw, str(title), left + pad + j * (w + pad), 0, w, top)
    for i, title in enumerate(row_titles or []):
        _text(draw, str(title), 0, top + pad + i * (h + pad), left, h)
    return torch.from_numpy(np.asarray(canvas).copy()).permute(2, 0, 1)


def _font(size: int):
    """Pillow's embedded font at ``size`` px (no font file needed); its fixed bitmap font
    where Pillow was built without FreeType."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):
        return ImageFont.load_default()


def _font_size(cell: int) -> int:
    """Title font size for cells ``cell`` px high: readable on 32 px cells, not tiny on 512 px ones."""
    return int(min(24, max(9, cell // 9)))


def title_band_height(cell_h: int) -> int:
    """Height in pixels of the column-title band above a grid of cells ``cell_h`` high."""
    return _font_size(cell_h) + 6


def title_band_width(titles: list[str], cell_h: int) -> int:
    """Width in pixels of the row-title band left of a grid holding ``titles``."""
    font = _font(_font_size(cell_h))
    return max(int(font.getlength(str(t))) for t in titles) + 8


def _text(draw, text: str, x: int, y: int, width: int, height: int) -> None:
    """``text`` centred in the box (x, y, width, height), in a smaller font or cut with an
    ellipsis when it does not fit."""
    size = _font_size(height if height < 40 else width)
    font = _font(size)
    while size > 7 and font.getlength(text) > width:
        size -= 1
        font = _font(size)
    while len(text) > 1 and font.getlength(text) > width:
        text = text[:-2] + "…" if len(text) > 2 else text[:-1]
    length = font.getlength(text)
    draw.text(
        (x + max(0, (width - length) / 2), y + max(0, (height - size) / 2) - 1),
        text,
        fill=(0, 0, 0),
        font=font,
    )


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
    """The sample grid of ``batch`` (a fixed batch of the datamodule), titled from
    ``module.inference_spec()``; returns uint8 3 x H' x W'.

    Two-domain methods: one row per fixed input; per task (``a2b``, ``b2a``) side by side: the
    input (``input``, or ``input A`` when there are several tasks), its outputs (``a2b``, or
    ``a2b 1`` .. ``a2b S`` for multimodal methods), the spec's attention maps over the input or
    output (``a2b G``, ``a2b D_global``...) and, for paired data, the target (``target``).

    Multi-domain methods (the spec names ``domains``; batches ``{"image", "domain"}``): rows titled
    with each input's domain; the input, then the outputs into every target domain
    (``<domain> <k>``) and, when the method takes references, a reference-guided block: a first
    row ``reference`` holding one fixed image of each domain the batch holds (white above the
    other columns), and under it, per input, its translation guided by that reference into the
    reference's domain (columns ``ref <domain>``).

    Multimodal methods with a style code get the same ``num_samples`` codes (seeded) for every
    input and every grid, so column ``k`` is one style and successive grids show training
    progress; others draw ``num_samples`` outputs. Deterministic methods show one output.
    """
    spec = module.inference_spec()
    samples = max(1, int(num_samples)) if spec.samples else 1
    codes = None
    if spec.samples and spec.style is not None and not spec.style.per_pixel:
        codes = torch.randn(samples, spec.style.dim, generator=torch.Generator().manual_seed(0))
    if spec.domains is not None:
        columns, row_titles, top = _domain_columns(module, spec, batch, samples, codes)
    else:
        columns, row_titles, top = _task_columns(module, spec, batch, samples, codes), None, None
    n = max(len(cells) for _, cells in columns)
    white = torch.ones_like(columns[0][1][0])
    # a column shorter than the others (a task whose source the batch holds fewer of) is
    # padded with white cells rather than shifting the next task's columns left
    rows = [[cells[i] if i < len(cells) else white for _, cells in columns] for i in range(n)]
    if top is not None:
        rows.insert(0, top)
    return make_grid(rows, col_titles=[title for title, _ in columns], row_titles=row_titles)


def _translations(module, x, task, samples: int, codes: torch.Tensor | None, n: int) -> list[torch.Tensor]:
    """The ``samples`` outputs of ``task`` for ``x`` (what ``translate`` takes, ``n`` images):
    a list of N x C x H x W, one per fixed code of ``codes`` (S x style dim) when given."""
    if codes is not None:
        return [
            module.translate(x, style=code[None].expand(n, -1).to(module.device), **task.call)
            for code in codes
        ]
    out = module.translate(x, num_samples=samples, **task.call)
    return [out] if samples == 1 else list(out.unbind(1))


def _sample_titles(task, outputs: list) -> list[str]:
    return [task.name] if len(outputs) == 1 else [f"{task.name} {k + 1}" for k in range(len(outputs))]


def _attention_columns(module, spec, x, shown, output, task) -> list[tuple[str, list[torch.Tensor]]]:
    """One column per map the spec names (``<task> <map>``), each over the input (``shown``) or
    the first output (``output``), both N x C x H x W in [-1, 1], as ``attention_maps`` says."""
    if not spec.attention:
        return []
    maps = module.attention_maps(x, **task.call) or {}
    under = {"input": shown, "output": output}
    columns = []
    for name in spec.attention:
        if name not in maps:
            continue
        m, over = maps[name]
        columns.append(
            (f"{task.name} {name}", [attention_overlay(under[over][i], m[i]) for i in range(len(m))])
        )
    return columns


def _task_columns(module, spec, batch, samples, codes) -> list[tuple[str, list[torch.Tensor]]]:
    """(title, N cells) of a two-domain method's grid; see :func:`translation_grid`."""
    trainer = module._trainer
    paired = getattr(getattr(trainer, "datamodule", None), "paired", False) if trainer else False
    several = len(spec.tasks) > 1
    columns: list[tuple[str, list[torch.Tensor]]] = []
    for task in spec.tasks:
        found = module.grid_inputs(batch, **task.call)
        if found is None:  # the batch lacks this task's source (e.g. one-sided data)
            continue
        x, shown = found
        outs = _translations(module, x, task, samples, codes, shown.shape[0])
        columns.append((f"input {task.source}" if several else "input", list(shown)))
        columns += zip(_sample_titles(task, outs), [list(o) for o in outs])
        columns += _attention_columns(module, spec, x, shown, outs[0], task)
        if paired and task.target in batch:
            columns.append((f"target {task.target}" if several else "target", list(batch[task.target])))
    if not columns:
        raise ValueError(
            f"the fixed batch ({', '.join(batch)}) holds the source of none of {spec.task_names}"
        )
    return columns


def _domain_columns(module, spec, batch, samples, codes):
    """(columns, row titles, the reference row or None) of a multi-domain method's grid; see
    :func:`translation_grid`. ``batch``: ``image`` N x C x H x W in [-1, 1], ``domain`` N
    domain indices (or one for all)."""
    x = batch["image"]
    n = x.shape[0]
    y = torch.as_tensor(batch["domain"]).long().reshape(-1).expand(n).tolist()
    columns: list[tuple[str, list[torch.Tensor]]] = [("input", list(x))]
    for task in spec.tasks:
        outs = _translations(module, x, task, samples, codes, n)
        columns += zip(_sample_titles(task, outs), [list(o) for o in outs])
        columns += _attention_columns(module, spec, x, x, outs[0], task)
    row_titles = [spec.domains[d] for d in y]
    if not spec.reference:
        return columns, row_titles, None
    # One reference per target domain present in the batch: its last image, so that the
    # batch's first image of that domain gets a reference other than itself.
    last = {spec.domains[d]: i for i, d in enumerate(y)}
    refs = [(task, last[task.target]) for task in spec.tasks if task.target in last]
    white = torch.ones_like(x[0])
    top = [white] * len(columns) + [x[j] for _, j in refs]
    for task, j in refs:
        out = module.translate(x, reference=x[j : j + 1], **task.call)
        columns.append((f"ref {task.target}", list(out)))
    return columns, ["reference", *row_titles], top


def log_image(trainer: L.Trainer, key: str, image: torch.Tensor, step: int) -> None:
    """Send a uint8 3 x H x W image to every logger that shows images."""
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[image.permute(1, 2, 0).numpy()], step=step)
        elif isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(key, image, global_step=step)


class SampleGrid(L.Callback):
    """Writes ``<dirpath>/iter_<k>.png`` every ``every_n_iters`` iterations, after each
    validation during fit and at the end of training, and ``<dirpath>/test.png`` after testing,
    from the datamodule's fixed inputs (``datamodule.fixed_batch()``: the first images of the
    validation split; for folder-per-domain data, images of every domain in turn). The grids
    (:func:`translation_grid`) carry their column and row titles. Multimodal methods show
    ``num_styles`` outputs per input and task.
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
            grid = translation_grid(module, batch, self.num_styles)
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
