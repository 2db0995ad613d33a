"""Translate your own images with a trained checkpoint.

Usage (``key=value`` arguments, like ``imtrans.run`` but without a config tree)::

    python -m imtrans.translate ckpt=outputs/cyclegan_shapes/<date> input=photos/ output=out/
    imtrans translate ckpt=run/checkpoints/last.ckpt input='photos/*.jpg' direction=b2a
    imtrans translate ckpt=run input=edges/ num_samples=6 grid=true seed=1        # multimodal
    imtrans translate ckpt=run input=edge.png reference=shoe.jpg                   # example-guided
    imtrans translate ckpt=run input=edge.png interpolate=8 style_from=a.jpg style_to=b.jpg

Keys
    ``ckpt``         a checkpoint or a run directory (``<run>/checkpoints/last.ckpt``), or the
                     ``.safetensors`` file of ``imtrans export formats=safetensors``; required
    ``input``        an image file, a folder (searched recursively) or a glob pattern; required.
                     Files are picked and read as in training (:mod:`imtrans.data.io`): RGB, L, P,
                     RGBA (composited on white), 16-bit, ... converted to the source domain's channels.
    ``output``       output folder (default ``translations``); sub-folders of ``input`` are mirrored
    ``direction``    one task of the model: ``a2b`` or ``b2a``; for multi-domain models a target domain's
                     name or index, or ``<source>2<target>`` (``cat2dog``). Default: every task the
                     model declares (both directions; every target domain, inputs lying in a folder
                     named as a domain going into every other domain only)
    ``target_domain`` the same for multi-domain models: a domain name (as the training data's folders)
                     or index
    ``num_samples``  outputs per input, S (default 1); multimodal methods draw S style codes once
                     (seeded) and use code j for sample j of every input
    ``reference``    an image of the target domain whose style is used (methods that declare
                     references): the output equals ``module.translate(x, direction, reference=r)``.
                     Without ``direction``/``target_domain``, the target is the domain named by the
                     reference's folder (multi-domain), else the first direction
    ``seed``         seeds the style codes (and any sampling noise); default 0
    ``grid``         also write one PNG grid per input: input | S outputs (default false)
    ``attention``    methods with attention maps (U-GAT-IT's CAM): also write one PNG per input:
                     input | output | each map coloured over the image it belongs to (default false)
    ``interpolate``  k > 1: instead of plain outputs, write k frames walking linearly from one style
                     code to another (end points included) as a grid PNG and an animated GIF
    ``style_from``, ``style_to``  reference images giving the two codes of ``interpolate``
                     (each one not given is sampled from N(0, I) with ``seed``)
    ``frame_ms``     GIF frame duration in milliseconds (default 150)
    ``fit``          how images of any size meet the model: ``pad`` (default) pads symmetrically
                     (reflection) to the next multiple of what the generator needs and crops the
                     output back; ``resize`` resizes to the training crop size (bicubic) and resizes
                     the output back; ``none`` refuses sizes the generator cannot take. A model that
                     declares a fixed size (full U-GAT-IT) always gets that size (resized, one
                     notice), and ``none`` refuses other sizes
    ``batch_size``   images per forward pass (default 8); images are batched by model input size
    ``device``       ``auto`` (default: CUDA when available), ``cpu``, ``cuda``, ``cuda:1``
    ``ema``          ``auto`` (default): the generator EMA weights when the checkpoint has them
                     (``ema.<generator>.*`` keys, see :mod:`imtrans.inference`); ``true`` / ``false``
    ``progress``     show a progress bar on stderr (default true)
    ``trust``        read a checkpoint that holds Python objects other than tensors and plain
                     containers, with full unpickling, which runs any code in it (default false:
                     such a file is refused, see :mod:`imtrans.load`); only for your own older files
    ``inst``         label-map methods (pix2pixHD): instance maps, a file or folder or glob paired
                     in sorted order with ``input``'s label maps (default: none; boundaries then
                     come from the label map). ``input`` names label maps (integer ids, PNG),
                     resized nearest-neighbour under ``fit=resize``; grids show them coloured.

What a model takes (directions or target domains, styles, references, attention maps, label
maps, sizes) is read from its declaration, ``module.inference_spec()`` (:mod:`imtrans.methods.spec`).

Output names (all PNG, lossless; ``<stem>`` is the input's file name without extension, ``<task>``
the direction or the target domain's name)
    ``<stem>_<task>.png`` (S = 1) or ``<stem>_<task>_<j>.png`` for j = 0 .. S-1;
    ``<stem>_<task>_grid.png`` with ``grid=true`` (titled columns: input, the reference, each
    sample); ``<stem>_<task>_attention.png`` with ``attention=true`` (input, output, each map
    named); ``<stem>_<task>_interp.png`` and ``<stem>_<task>_interp.gif`` with ``interpolate=k``.
Every output has the input's width and height.

Exit status: 0 on success, 2 for a wrong command line or an unreadable input (one line naming it).
"""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from imtrans import inference as inf
from imtrans.callbacks.images import attention_overlay, make_grid, to_uint8
from imtrans.data.errors import DataError
from imtrans.data.io import (
    ids_to_tensor,
    is_image_file,
    list_images,
    load_id_map,
    load_photo,
    photo_to_tensor,
)
from imtrans.methods.base import TranslationModule
from imtrans.methods.spec import Task

FIT_MODES = ("pad", "resize", "none")

SPEC = {
    "ckpt": (str, ...),
    "input": (str, ...),
    "output": (str, "translations"),
    "direction": (str, None),
    "target_domain": (str, None),
    "num_samples": (int, 1),
    "reference": (str, None),
    "seed": (int, 0),
    "grid": (bool, False),
    "attention": (bool, False),
    "interpolate": (int, 0),
    "style_from": (str, None),
    "style_to": (str, None),
    "frame_ms": (int, 150),
    "fit": (str, "pad"),
    "batch_size": (int, 8),
    "device": (str, "auto"),
    "ema": (str, "auto"),
    "progress": (bool, True),
    "inst": (str, None),
    "trust": (bool, False),
}


# ---------------------------------------------------------------------- inputs
def find_inputs(spec: str | Path) -> list[tuple[Path, Path]]:
    """``(path, relative name)`` of every image an ``input=`` names: a file, a folder or a glob.

    The relative name (used for outputs) keeps sub-folders of a folder, or of the glob's common
    parent folder. Raises DataError when nothing is found.
    """
    path = Path(spec).expanduser()
    if path.is_file():
        return [(path, Path(path.name))]
    if path.is_dir():
        return [(p, p.relative_to(path)) for p in list_images(path)]
    matches = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if is_image_file(p))
    matches = [p for p in matches if p.is_file()]
    if not matches:
        raise DataError(spec, "no image file matches (give an image, a folder or a glob pattern)")
    base = Path(os.path.commonpath([str(p.parent) for p in matches]))
    return [(p, p.relative_to(base)) for p in matches]


def load_image(path: Path, nc: int) -> torch.Tensor:
    """An image file as C x H x W in [-1, 1] with ``nc`` channels (reading rules of imtrans.data.io)."""
    return photo_to_tensor(load_photo(path, nc))


def save_image(image: torch.Tensor, path: Path) -> None:
    """C x H x W in [-1, 1] (C = 1 or 3) -> PNG (L or RGB)."""
    array = to_uint8(image.cpu()).permute(1, 2, 0).numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array).save(path)


def save_gif(frames: Sequence[torch.Tensor], path: Path, frame_ms: int) -> None:
    """Frames C x H x W in [-1, 1] -> looping animated GIF (Pillow only, no system codec).

    GIF holds 256 colours per frame, and Pillow merges identical consecutive frames.
    """
    images = [Image.fromarray(to_uint8(f.cpu().expand(3, -1, -1)).permute(1, 2, 0).numpy()) for f in frames]
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=frame_ms, loop=0)


# ---------------------------------------------------------------------- the translator
@dataclass
class _Item:
    path: Path
    rel: Path
    image: torch.Tensor  # C x H x W as shown in grids
    model_input: torch.Tensor  # C x H' x W' as the model takes it (label maps: ids as floats)
    restore: tuple  # ("pad" | "resize", (H, W), (l, r, t, b))


@dataclass
class Result:
    """What :meth:`Translator.run` wrote; ``outputs[i]`` are the S (or k) outputs of input i."""

    written: list[Path] = field(default_factory=list)
    inputs: list[Path] = field(default_factory=list)
    outputs: list[torch.Tensor] = field(default_factory=list)  # S x C x H x W each, on CPU
    skipped: int = 0  # inputs of the task's own target domain (``skip_own_domain``)

    def extend(self, other: Result) -> None:
        self.written += other.written
        self.inputs += other.inputs
        self.outputs += other.outputs
        self.skipped += other.skipped


class Translator:
    """Translates images with a loaded module for one task of its declaration
    (``module.inference_spec()``, :mod:`imtrans.methods.spec`); see the module docstring for
    the options.

    ``task``: a :class:`~imtrans.methods.spec.Task` or its name (``a2b``, a target domain's name
    or index, ``cat2dog``); ``direction`` is the same key under its older name; None: the first
    task. ``skip_own_domain``: inputs in a folder named as the task's target domain are left out
    (translating every domain into every other). ``keep_outputs=True`` in :meth:`run` keeps every
    output tensor in the returned :class:`Result` (tests, notebooks). ``notices``: one-line
    remarks for the user (e.g. inputs resized to a fixed size).
    """

    def __init__(
        self,
        model: TranslationModule,
        *,
        task: Task | str | int | None = None,
        direction: str | None = None,
        num_samples: int = 1,
        reference: Path | None = None,
        seed: int = 0,
        grid: bool = False,
        attention: bool = False,
        interpolate: int = 0,
        style_from: Path | None = None,
        style_to: Path | None = None,
        frame_ms: int = 150,
        fit: str = "pad",
        batch_size: int = 8,
        progress: bool = True,
        skip_own_domain: bool = False,
    ) -> None:
        self.model = model
        self.spec = spec = model.inference_spec()
        name = type(model).__name__
        self.task = resolve_task(model, spec, task if task is not None else direction)
        if fit not in FIT_MODES:
            raise inf.UsageError(f"fit={fit}: expected one of {', '.join(FIT_MODES)}")
        if num_samples < 1 or batch_size < 1:
            raise inf.UsageError("num_samples and batch_size must be at least 1")
        if interpolate == 1 or interpolate < 0:
            raise inf.UsageError(f"interpolate={interpolate}: give k >= 2 frames (0 = off)")
        if (reference or style_from or style_to or interpolate) and not spec.samples:
            raise inf.UsageError(
                f"{name} is deterministic: reference, interpolate and style_from/style_to "
                "need a multimodal method"
            )
        if reference is not None and not spec.reference:
            raise inf.UsageError(f"reference=: {name} takes no reference image")
        vector = spec.style is not None and not spec.style.per_pixel
        if interpolate and not vector:
            raise inf.UsageError(f"interpolate={interpolate}: {name} has no style code to walk along")
        if (style_from or style_to) and not (vector and spec.style.encodable):
            raise inf.UsageError(
                f"style_from/style_to: {name} does not encode images into its style codes; "
                "leave them out to interpolate between sampled codes"
            )
        if interpolate and reference is not None:
            raise inf.UsageError("interpolate takes its two styles from style_from / style_to, not reference")
        if attention and not spec.attention:
            raise inf.UsageError(f"attention=true: {name} has no attention maps")
        self.labels = spec.input_kind == "labels"
        self.src_nc, self.tgt_nc = self.task.in_channels, self.task.out_channels
        self.multiple = int(spec.size_multiple)
        self.fixed_size = spec.fixed_size
        self.train_size = inf.train_size(model)
        self.num_samples = num_samples
        self.grid = grid
        self.attention = attention
        self.interpolate = interpolate
        self.frame_ms = frame_ms
        self.fit = fit
        self.batch_size = batch_size
        self.progress = progress
        self.seed = seed
        self.skip_own_domain = skip_own_domain
        self.notices: list[str] = []
        if self.fixed_size is not None:
            side = self.fixed_size
            self.notices.append(
                f"this {name} takes {side}x{side} inputs only (its declared fixed size): every image is "
                f"resized to {side}x{side} and its output back to the image's size"
            )

        torch.manual_seed(seed)
        self.reference = None if reference is None else self.load_reference(reference)
        self.codes: list[torch.Tensor] | None = None
        if interpolate:
            ends = []
            for ref in (style_from, style_to):
                if ref is not None:
                    with model.inference_mode():
                        ends.append(
                            model.encode_reference(self.load_reference(ref).to(model.device), self.task)[:1]
                        )
                else:
                    ends.append(model.sample_style(1, self.task))
            self.codes = [torch.lerp(ends[0], ends[1], t) for t in torch.linspace(0, 1, interpolate).tolist()]
            self.style_ends = ends
        elif vector and spec.samples and self.reference is None:
            self.codes = [model.sample_style(1, self.task) for _ in range(num_samples)]

    # ------------------------------------------------------------------ sizes
    def load_reference(self, path: Path) -> torch.Tensor:
        """A reference image of the target domain, 1 x C x h x w at the training size (the style
        encoders were trained on that size; some only take that size)."""
        ref = load_image(Path(path), self.tgt_nc)
        side = self.fixed_size or self.train_size
        if side is not None:
            ref = inf.resize(ref, (side, side))
        return ref[None]

    def read(self, path: Path, inst: Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(what a grid shows, the model's input before fitting) of one input file.

        Images: both are C x H x W in [-1, 1]. Label maps: the ids (and instance ids) as a
        1 (2) x H x W float tensor, exact up to 2**24, so padding and nearest resizing keep
        them; shown in the method's colours (``grid_inputs``)."""
        if not self.labels:
            image = load_image(path, self.src_nc)
            return image, image
        maps = [ids_to_tensor(load_id_map(path))]
        if inst is not None:
            maps.append(ids_to_tensor(load_id_map(inst)))
            if maps[1].shape != maps[0].shape:
                raise DataError(
                    inst, f"instance map is {tuple(maps[1].shape)}, its label map {tuple(maps[0].shape)}"
                )
        shown = self.model.grid_inputs({"label": maps[0][None]}, self.task.name)[1][0]
        return shown.cpu().float(), torch.stack(maps).float()

    def _resize_input(self, image: torch.Tensor, side: int) -> torch.Tensor:
        if self.labels:  # ids: nearest neighbour
            return F.interpolate(image[None], size=(side, side), mode="nearest")[0]
        return inf.resize(image, (side, side))

    def prepare(self, image: torch.Tensor, path: Path) -> tuple[torch.Tensor, tuple]:
        """The model's input for an image of any size, and how to restore the output's size."""
        h, w = image.shape[-2:]
        if self.fixed_size is not None:
            side = self.fixed_size
            if self.fit == "none" and (h, w) != (side, side):
                raise DataError(
                    path,
                    f"image is {w}x{h}; the generator takes {side}x{side} only (use fit=pad or fit=resize)",
                )
            return self._resize_input(image, side), ("resize", (h, w), (0, 0, 0, 0))
        if self.fit == "resize" and self.train_size is not None:
            padded, pad = inf.pad_to_multiple(self._resize_input(image, self.train_size)[None], self.multiple)
            return padded[0], ("resize", (h, w), pad)
        if self.fit == "none" and (h % self.multiple or w % self.multiple):
            raise DataError(
                path,
                f"image is {w}x{h}; the generator needs sides divisible by {self.multiple} "
                "(use fit=pad or fit=resize)",
            )
        padded, pad = inf.pad_to_multiple(image[None], self.multiple)
        return padded[0], ("pad", (h, w), pad)

    @staticmethod
    def restore(y: torch.Tensor, how: tuple) -> torch.Tensor:
        """Model output (... x C x H' x W') back to the input's size."""
        kind, size, pad = how
        y = inf.unpad(y, pad)
        return inf.resize(y, size) if kind == "resize" else y

    # ------------------------------------------------------------------ translation
    def translate_batch(self, x: torch.Tensor) -> torch.Tensor:
        """N x C x H' x W' -> N x S x C' x H' x W' (S = num_samples, or k frames)."""
        m, call = self.model, self.task.call
        n = x.shape[0]
        if self.labels:
            ids = x.round().long()
            x = {"label": ids[:, 0], "inst": ids[:, 1] if ids.shape[1] > 1 else None}
        if self.codes is not None:
            outs = [m.translate(x, **call, style=code.expand(n, -1)) for code in self.codes]
            return torch.stack(outs, 1)
        if self.reference is not None:
            ref = self.reference.expand(n, -1, -1, -1)
            out = m.translate(x, **call, reference=ref, num_samples=self.num_samples)
        else:
            out = m.translate(x, **call, num_samples=self.num_samples)
        return out[:, None] if self.num_samples == 1 else out

    def _batches(self, items: Iterator[_Item]) -> Iterator[list[_Item]]:
        """Batches of up to ``batch_size`` items of equal model input size, in input order per size."""
        pending: dict[tuple, list[_Item]] = {}
        for item in items:
            group = pending.setdefault(tuple(item.model_input.shape), [])
            group.append(item)
            if len(group) == self.batch_size:
                yield pending.pop(tuple(item.model_input.shape))
        yield from pending.values()

    def own_domain(self, path: Path) -> bool:
        """``path`` lies in a folder named as the task's target domain (``skip_own_domain``)."""
        return self.skip_own_domain and self.spec.domains is not None and path.parent.name == self.task.target

    def run(
        self,
        inputs: Sequence[tuple[Path, Path]],
        output: Path,
        keep_outputs: bool = False,
        insts: Sequence[Path] | None = None,
    ) -> Result:
        """Translate ``inputs`` (from :func:`find_inputs`) and write the files under ``output``.
        ``insts``: instance maps paired with ``inputs`` (label-map methods)."""
        if insts is not None and (not self.labels or len(insts) != len(inputs)):
            raise inf.UsageError(
                f"inst= gives {len(insts)} instance map(s) for {len(inputs)} input(s)"
                if self.labels
                else f"inst=: {type(self.model).__name__} translates images, not label maps"
            )
        output = Path(output)
        result = Result()
        chosen = [i for i, (path, _) in enumerate(inputs) if not self.own_domain(path)]
        result.skipped = len(inputs) - len(chosen)
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(chosen), unit="img", desc=f"translate {self.task.name}", file=sys.stderr)

        def items() -> Iterator[_Item]:
            for i in chosen:
                path, rel = inputs[i]
                shown, raw = self.read(path, None if insts is None else insts[i])
                model_input, how = self.prepare(raw, path)
                yield _Item(path, rel, shown, model_input, how)

        torch.manual_seed(self.seed)  # sampling noise of methods without explicit codes
        for batch in self._batches(items()):
            x = torch.stack([item.model_input for item in batch])
            out = self.translate_batch(x).cpu()
            maps = self.model.attention_maps(x, **self.task.call) if self.attention else None
            for i, (item, y) in enumerate(zip(batch, out)):
                y = self.restore(y, item.restore)
                result.written += self._write(item, y, output)
                if maps:
                    result.written.append(self._write_attention(item, y, x.shape[-2:], maps, i, output))
                result.inputs.append(item.path)
                if keep_outputs:
                    result.outputs.append(y)
            if bar is not None:
                bar.update(len(batch))
        if bar is not None:
            bar.close()
        return result

    # ------------------------------------------------------------------ files
    def output_titles(self, count: int) -> list[str]:
        """Titles of the output columns of a grid: the task, with the sample number or the
        interpolation position."""
        name = self.task.name
        if self.interpolate:
            return [f"{name} t={t:.2f}" for t in torch.linspace(0, 1, count).tolist()]
        if self.reference is not None:
            return [f"{name} (reference)"] * count
        return [name] if count == 1 else [f"{name} {j + 1}" for j in range(count)]

    def _grid_cells(self, item: _Item, y: torch.Tensor) -> tuple[list[torch.Tensor], list[str]]:
        cells, titles = [item.image], ["input"]
        if self.reference is not None:
            cells.append(self.restore(self.reference[0], ("resize", item.image.shape[-2:], (0, 0, 0, 0))))
            titles.append(f"reference ({self.task.target})")
        return cells + list(y), titles + self.output_titles(len(y))

    def _write(self, item: _Item, y: torch.Tensor, output: Path) -> list[Path]:
        base = output / item.rel.parent / f"{item.rel.stem}_{self.task.name}"
        written = []
        if self.interpolate:
            grid_path, gif_path = Path(f"{base}_interp.png"), Path(f"{base}_interp.gif")
            self._save_grid(*self._grid_cells(item, y), grid_path)
            save_gif(list(y), gif_path, self.frame_ms)
            return [grid_path, gif_path]
        names = [Path(f"{base}.png")] if len(y) == 1 else [Path(f"{base}_{j}.png") for j in range(len(y))]
        for image, path in zip(y, names):
            save_image(image, path)
            written.append(path)
        if self.grid:
            grid_path = Path(f"{base}_grid.png")
            self._save_grid(*self._grid_cells(item, y), grid_path)
            written.append(grid_path)
        return written

    def attention_overlays(
        self, image: torch.Tensor, output: torch.Tensor, size, maps: dict, i: int, how: tuple
    ) -> list[tuple[str, torch.Tensor]]:
        """``(title, overlay)`` of each of ``maps`` (``attention_maps`` of a batch whose model
        input was ``size`` = (H', W')) for its item ``i``: the map scaled to [0, 1], brought back
        to the input's size as the output is (``how``) and coloured over the image it belongs to
        (``image`` the input, ``output`` its translation, both C x H x W)."""
        under = {"input": image, "output": output}
        overlays = []
        for name, (attention, over) in maps.items():
            a = attention[i : i + 1].float().cpu()
            a = (a - a.min()) / (a.max() - a.min()).clamp_min(1e-8)  # [0, 1]: restore clamps to [-1, 1]
            full = F.interpolate(a, size=tuple(size), mode="bilinear", align_corners=False)
            overlays.append((f"{name} on {over}", attention_overlay(under[over], self.restore(full, how)[0])))
        return overlays

    def _write_attention(self, item: _Item, y: torch.Tensor, size, maps: dict, i: int, output: Path) -> Path:
        """input | output | each attention map over its image, at the input's size."""
        overlays = self.attention_overlays(item.image, y[0], size, maps, i, item.restore)
        cells = [item.image, y[0], *(cell for _, cell in overlays)]
        titles = ["input", self.task.name, *(title for title, _ in overlays)]
        path = output / item.rel.parent / f"{item.rel.stem}_{self.task.name}_attention.png"
        self._save_grid(cells, titles, path)
        return path

    @staticmethod
    def _save_grid(cells: list[torch.Tensor], titles: list[str], path: Path) -> None:
        grid = make_grid([list(cells)], col_titles=titles)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(grid.permute(1, 2, 0).numpy()).save(path)


def resolve_task(
    model: TranslationModule, spec, name: Task | str | int | None, key: str = "direction"
) -> Task:
    """The :class:`Task` that ``name`` picks in ``spec`` (None: the first); a UsageError listing
    the choices otherwise."""
    if isinstance(name, Task):
        return name
    if not spec.tasks:
        raise inf.UsageError(f"{type(model).__name__} declares nothing to translate (no tasks)")
    if name is None:
        return spec.tasks[0]
    try:
        return spec.task(name)
    except ValueError:
        raise inf.UsageError(
            f"{key}={name}: {type(model).__name__} translates {', '.join(spec.task_names)}"
        ) from None


def choose_tasks(model: TranslationModule, args: dict) -> tuple[list[Task], bool, list[str]]:
    """(tasks, skip inputs of the target's own domain, notices) for a command line.

    No ``direction``/``target_domain``: every task (both directions; every target domain,
    each input going into every domain other than the folder it lies in). A reference image
    (``reference``, ``style_from``, ``style_to``) belongs to one target domain: then the task is
    the one whose target is the folder the reference lies in, else the first."""
    spec = model.inference_spec()
    if args.get("direction") is not None and args.get("target_domain") is not None:
        raise inf.UsageError("give direction= or target_domain=, not both")
    for key in ("target_domain", "direction"):
        if args.get(key) is not None:
            return [resolve_task(model, spec, args[key], key)], False, []
    refs = [Path(args[k]) for k in ("reference", "style_from", "style_to") if args.get(k)]
    if not refs:
        return list(spec.tasks), spec.domains is not None, []
    folder = refs[0].resolve().parent.name
    for t in spec.tasks:
        if t.target == folder and spec.domains is not None:
            return [t], False, []
    if spec.domains is not None:
        raise inf.UsageError(
            f"reference=: name the reference's domain with target_domain= (one of {', '.join(spec.domains)})"
        )
    first = spec.tasks[0]
    notices = []
    if len(spec.tasks) > 1:
        notices.append(
            f"a reference image is of one domain: translating {first.name} only (the reference taken as "
            f"a {first.target} image); give direction= for another"
        )
    return [first], False, notices


# ---------------------------------------------------------------------- command line
def translate(argv: list[str] | None = None) -> Result:
    """Run the command line ``argv`` (``key=value`` strings); returns what was written."""
    args = inf.parse_key_values(list(sys.argv[1:] if argv is None else argv), SPEC)
    device = inf.pick_device(args["device"])
    model, used_ema = inf.load_for_inference(args["ckpt"], ema=args["ema"], trust=args["trust"])
    model.to(device)
    tasks, skip_own, notices = choose_tasks(model, args)
    paths = {k: None if args[k] is None else Path(args[k]) for k in ("reference", "style_from", "style_to")}
    translators = [
        Translator(
            model,
            task=task,
            num_samples=args["num_samples"],
            seed=args["seed"],
            grid=args["grid"],
            attention=args["attention"],
            interpolate=args["interpolate"],
            frame_ms=args["frame_ms"],
            fit=args["fit"],
            batch_size=args["batch_size"],
            progress=args["progress"],
            skip_own_domain=skip_own,
            **paths,
        )
        for task in tasks
    ]
    for notice in dict.fromkeys(notices + [n for t in translators for n in t.notices]):
        print(f"imtrans translate: {notice}", file=sys.stderr)
    inputs = find_inputs(args["input"])
    insts = None if args["inst"] is None else [p for p, _ in find_inputs(args["inst"])]
    result = Result()
    for translator in translators:
        result.extend(translator.run(inputs, Path(args["output"]), insts=insts))
    first = translators[0]
    what = f"{args['interpolate']} frames" if args["interpolate"] else f"{first.num_samples} output(s)"
    skipped = f", {result.skipped} left out (already in the target domain)" if result.skipped else ""
    print(
        f"imtrans: translated {len(inputs)} image(s) {', '.join(t.task.name for t in translators)}, "
        f"{what} each{skipped}, {type(model).__name__} on {device} "
        f"({'EMA' if used_ema else 'raw'} generator weights, fit={first.fit}, sides multiple of "
        f"{first.multiple}); {len(result.written)} file(s) in {args['output']}"
    )
    return result


def main() -> None:
    if any(a in ("-h", "--help", "help") for a in sys.argv[1:]):
        print(__doc__)
        return
    try:
        translate()
    except (ValueError, FileNotFoundError) as err:  # UsageError, DataError, a wrong checkpoint
        print(f"imtrans translate: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
