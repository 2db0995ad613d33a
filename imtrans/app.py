"""``imtrans app``: a local web app to translate with a trained model, interactively.

Usage (``key=value`` arguments, as the other tools)::

    imtrans app ckpt=outputs/munit_quickstart/<date>            # then open http://127.0.0.1:7860
    imtrans app ckpt=zoo/pix2pixhd_label2city_1024p port=8080

Keys
    ``ckpt``        the model shown first: a run folder, an imported or zoo model folder, a ``.ckpt``
                    file or the ``.safetensors`` file of ``imtrans export``; required. The page loads
                    others (its checkpoint box) without a restart
    ``port``        the local port (default 7860)
    ``host``        the address served (default 127.0.0.1: this machine only)
    ``share``       a public link through Gradio's relay (default false: nothing leaves the machine)
    ``device``      ``auto`` (default: CUDA when available), ``cpu``, ``cuda``, ``cuda:1``
    ``max_pixels``  the largest image (or label map) taken, in pixels (default 4194304 = 2048 x 2048):
                    a larger one is refused with a message in the page, before it fills the memory
    ``trust``       read a checkpoint holding Python objects other than tensors (runs code in it;
                    default false), as every tool's ``trust``

The page is built from the model's declaration, ``module.inference_spec()``
(:mod:`imtrans.methods.spec`), and names no method:

- image methods: an image to upload or drop (any size: the ``fit`` rule pads or resizes it, as
  ``imtrans translate`` does), the direction or target domain by name, and what the model
  declares: N sampled styles at once with a seed, a reference image, a slider walking between two
  styles (sampled, or encoded from two images), the attention maps over the image, the EMA
  generator weights or the raw ones. The outputs fill a labelled gallery (download button).
- label-map methods: a canvas showing the label map in the data set's colours (Cityscapes' 35
  classes by name); paint with a chosen class and brush size, or upload a label map (and an
  instance map). The instances are listed (id, class); with per-instance feature clusters
  (``Style(clusters=True)``) each instance gets the cluster chosen for it or a random one. The
  photo is translated again after each edit.

Each translation shows its time (request to images, and the model's share). Errors (a file that is
not an image, an image too large, a checkpoint that cannot load, a bug) are one-line messages in
the page; the server keeps running.

Offline: no analytics (``GRADIO_ANALYTICS_ENABLED=False`` before Gradio is imported), system fonts
only, no share link unless ``share=true``; the page's scripts and styles come from the local
server. Needs the ``app`` extra: ``pip install 'imtrans[app]'``.

The functions below the command line (:func:`load`, :func:`controls`, :func:`translate_image`,
:func:`translate_labels`, :func:`paint`, ...) are what the page calls; they work without Gradio
(notebooks, tests).
"""

from __future__ import annotations

import html
import logging
import os
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from imtrans import inference as inf
from imtrans.callbacks.images import to_uint8
from imtrans.data.errors import DataError
from imtrans.data.io import ids_to_tensor, load_id_map, open_image
from imtrans.data.label_sets import LabelSet
from imtrans.methods.base import TranslationModule
from imtrans.methods.spec import InferenceSpec
from imtrans.translate import Translator

log = logging.getLogger("imtrans.app")

SPEC = {
    "ckpt": (str, ...),
    "port": (int, 7860),
    "host": (str, "127.0.0.1"),
    "share": (bool, False),
    "device": (str, "auto"),
    "max_pixels": (int, 2048 * 2048),
    "trust": (bool, False),
}

#: how images of any size meet the generator (``imtrans translate``'s ``fit``)
FIT_CHOICES = ("pad", "resize")
#: the most samples one request draws
MAX_SAMPLES = 8
#: edits of a label map that ``undo`` can take back
UNDO_DEPTH = 20


# ---------------------------------------------------------------------- the model
@dataclass
class Loaded:
    """A model ready for the page: the module, its declaration and what the page offers."""

    model: TranslationModule
    spec: InferenceSpec
    path: str
    #: the checkpoint holds both EMA and raw generator weights (the page offers the choice)
    ema_choice: bool
    #: the weights used when there is no choice: "EMA" or "raw"
    weights: str
    #: ``{class: k x dim centres}`` of a per-instance clustered style (empty otherwise)
    clusters: dict[int, torch.Tensor] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return type(self.model).__name__

    @property
    def label_set(self) -> LabelSet | None:
        return self.spec.label_set


def load(path: str | Path, device: str | torch.device = "cpu", trust: bool = False) -> Loaded:
    """Rebuild the model of a checkpoint (run folder, ``.ckpt``, ``.safetensors``) for the page.

    EMA weights stay beside the raw ones (``model.ema``), so that each request picks
    (``Options.ema``); a ``.safetensors`` file holds one set. Raises the checkpoint's one-line
    error (:class:`~imtrans.errors.CheckpointError`, FileNotFoundError) when it cannot load."""
    from imtrans.load import load_model, safetensors_ema

    given = Path(path).expanduser()
    file = given / "checkpoints" / "last.ckpt" if given.is_dir() else given
    model = load_model(given, "cpu", trust=trust).to(device)  # a CheckpointError says what is wrong
    spec = model.inference_spec()
    if file.suffix == ".safetensors":
        ema_choice, weights = False, "EMA" if safetensors_ema(file) else "raw"
    else:
        ema_choice, weights = model.ema is not None, "raw"
    clusters = {}
    if spec.style is not None and spec.style.clusters:
        clusters = {int(c): v.float().cpu() for c, v in model.style_clusters(spec.tasks[0]).items()}
    return Loaded(model, spec, str(path), ema_choice, weights, clusters)


def controls(loaded: Loaded) -> dict[str, Any]:
    """What the page shows for this model, read from its declaration only.

    ``input`` (``image`` or ``labels``), ``task_label`` and ``tasks`` (directions or target
    domains by name), and per option whether it is offered: ``samples`` (N styles with a seed),
    ``reference``, ``interpolate`` (a slider between two style codes) and ``style_images`` (its
    ends encoded from images), ``attention`` (the map names), ``ema``, ``instance_maps``,
    ``clusters`` (a feature cluster per instance); ``fixed_size``."""
    spec = loaded.spec
    vector = spec.style is not None and not spec.style.per_pixel
    return {
        "input": spec.input_kind,
        "task_label": "target domain" if spec.domains is not None else "direction",
        "tasks": list(spec.task_names),
        "samples": bool(spec.samples),
        "reference": bool(spec.reference),
        "interpolate": bool(vector and spec.samples),
        "style_images": bool(vector and spec.samples and spec.style.encodable),
        "attention": list(spec.attention),
        "ema": loaded.ema_choice,
        "instance_maps": bool(spec.instance_maps),
        "clusters": bool(loaded.clusters),
        "fixed_size": spec.fixed_size,
    }


def describe(loaded: Loaded) -> str:
    """One paragraph (Markdown) on what the model takes and what the page offers for it."""
    c, spec = controls(loaded), loaded.spec
    what = "label maps" if c["input"] == "labels" else "images"
    parts = [f"**{loaded.name}** translates {what}: {c['task_label']} {', '.join(c['tasks'])}"]
    if c["input"] == "labels":
        ls = loaded.label_set
        parts.append(f"{len(ls)} classes ({ls.source or 'generic names'})")
        if c["instance_maps"]:
            parts.append("instance maps")
    offered = [name for name in ("samples", "reference", "interpolate", "attention") if c[name]]
    if c["clusters"]:
        offered.append(f"feature clusters per instance ({len(loaded.clusters)} classes)")
    parts.append("offers " + ", ".join(offered) if offered else "deterministic")
    parts.append("EMA or raw weights" if c["ema"] else f"{loaded.weights} weights")
    if spec.fixed_size:
        parts.append(f"takes {spec.fixed_size}x{spec.fixed_size} only (inputs are resized)")
    elif spec.size_multiple > 1:
        parts.append(f"sides padded to multiples of {spec.size_multiple}")
    return "; ".join(parts) + f" — `{loaded.path}`"


# ---------------------------------------------------------------------- requests
@dataclass
class Options:
    """One request's choices; those the model does not declare must stay at their defaults."""

    task: str | None = None  # a direction or target domain's name (None: the first)
    num_samples: int = 1
    seed: int = 0
    reference: str | Path | None = None  # an image of the target domain
    interpolate: bool = False  # walk between two style codes, to ``t``
    t: float = 0.5
    style_from: str | Path | None = None  # images giving the two codes (None: sampled)
    style_to: str | Path | None = None
    attention: bool = False
    ema: bool = True
    fit: str = "pad"


@dataclass
class Outcome:
    """What a request gives the page: captioned images (uint8 H x W x 3, or H x W) and times."""

    images: list[tuple[np.ndarray, str]]
    total_ms: float
    model_ms: float
    notices: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = (
            f"{len(self.images)} image(s) in {self.total_ms:.0f} ms "
            f"(the model {self.model_ms:.0f} ms, the app {self.total_ms - self.model_ms:.0f} ms)"
        )
        return " ".join([text, *self.notices])


def check_image(path: str | Path | None, max_pixels: int, what: str = "image") -> Path:
    """``path`` as a Path once its header says it is an image of at most ``max_pixels``; a
    DataError naming the file's name otherwise (nothing is decoded yet)."""
    if path is None or str(path) == "":
        raise DataError(what, "none given; upload or drop one first")
    path = Path(path)
    try:
        img = open_image(path, decode=False)
    except DataError as err:
        raise DataError(path.name, err.problem or str(err)) from None
    w, h = img.size
    if w * h > max_pixels:
        raise DataError(
            path.name,
            f"{what} is {w}x{h} ({w * h / 1e6:.1f} megapixels), more than this app takes "
            f"({max_pixels / 1e6:.1f}, max_pixels={max_pixels}); resize it, or start the app with a larger max_pixels",
        )
    return path


def _array(image: torch.Tensor) -> np.ndarray:
    """C x H x W in [-1, 1] -> uint8 H x W x 3 (or H x W for one channel)."""
    array = to_uint8(image.detach().cpu()).permute(1, 2, 0).numpy()
    return array[:, :, 0] if array.shape[2] == 1 else array


def _translator(loaded: Loaded, options: Options, max_pixels: int) -> Translator:
    """The ``imtrans translate`` machinery for one request (its checks, sizes and style codes)."""
    loaded.model.use_ema = bool(options.ema)
    paths = {}
    for key in ("reference", "style_from", "style_to"):
        value = getattr(options, key)
        paths[key] = None if value in (None, "") else check_image(value, max_pixels, key.replace("_", " "))
    if not options.interpolate:
        paths["style_from"] = paths["style_to"] = None
    return Translator(
        loaded.model,
        task=options.task,
        num_samples=max(1, min(int(options.num_samples), MAX_SAMPLES)),
        seed=int(options.seed),
        interpolate=2 if options.interpolate else 0,
        fit=options.fit,
        batch_size=1,
        progress=False,
        **paths,
    )


def _at(translator: Translator, t: float) -> None:
    """Make the translator's one style code the point ``t`` of the way between its two ends."""
    start, end = translator.style_ends
    translator.codes = [torch.lerp(start, end, float(min(max(t, 0.0), 1.0)))]


def translate_image(
    loaded: Loaded, image: str | Path | None, options: Options | None = None, max_pixels: int = 2048 * 2048
) -> Outcome:
    """Translate one image file with ``options``: the outputs of ``imtrans translate`` with the
    same keys (``num_samples``, ``seed``, ``reference``, ``fit``; ``interpolate`` gives the one
    code at ``t``), plus the attention maps over the image when asked."""
    start = time.perf_counter()
    options = options or Options()
    if loaded.spec.input_kind != "image":
        raise inf.UsageError(f"{loaded.name} translates label maps: paint or upload one")
    path = check_image(image, max_pixels)
    tr = _translator(loaded, options, max_pixels)
    if options.interpolate:
        _at(tr, options.t)
    shown, raw = tr.read(path)
    x, how = tr.prepare(raw, path)
    model_start = time.perf_counter()
    y = tr.translate_batch(x[None])[0].cpu()
    overlays = []
    if options.attention:
        if not loaded.spec.attention:
            raise inf.UsageError(f"{loaded.name} has no attention maps")
        maps = loaded.model.attention_maps(x[None], **tr.task.call)
    model_ms = (time.perf_counter() - model_start) * 1000
    y = tr.restore(y, how)
    if options.attention:
        overlays = tr.attention_overlays(shown, y[0], x.shape[-2:], maps, 0, how)
    titles = [f"{tr.task.name} t={options.t:.2f}"] if options.interpolate else tr.output_titles(len(y))
    images = [(_array(out), title) for out, title in zip(y, titles)]
    images += [(_array(cell), title) for title, cell in overlays]
    return Outcome(images, (time.perf_counter() - start) * 1000, model_ms, list(tr.notices))


# ---------------------------------------------------------------------- label maps
@dataclass
class LabelMap:
    """A label map being edited: class ids, instance ids (None: the classes are the instances)
    and the feature cluster chosen for some instances (``{instance id: centre index}``)."""

    label: np.ndarray  # int32 H x W
    inst: np.ndarray | None = None  # int32 H x W
    choices: dict[int, int] = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return int(self.label.shape[1]), int(self.label.shape[0])

    def instance_ids(self) -> np.ndarray:
        return self.label if self.inst is None else self.inst


@dataclass(frozen=True)
class Instance:
    """One instance of a label map: its id, its class (the most frequent id under it), its area."""

    id: int
    cls: int
    pixels: int


def colourise(label: np.ndarray, label_set: LabelSet) -> np.ndarray:
    """Class ids H x W -> uint8 H x W x 3 in the label set's colours."""
    palette = np.asarray(label_set.colours, dtype=np.uint8)
    return palette[np.clip(label, 0, len(palette) - 1)]


def _check_ids(label: np.ndarray, n: int, name: str) -> None:
    low, high = int(label.min()), int(label.max())
    if low < 0 or high >= n:
        raise DataError(name, f"label map holds ids {low}..{high}; this model takes class ids 0..{n - 1}")


def blank_label_map(
    loaded: Loaded, width: int, height: int, cls: int = 0, max_pixels: int = 2048 * 2048
) -> LabelMap:
    """A ``width`` x ``height`` label map of one class, to paint on."""
    width, height = int(width), int(height)
    if width < 1 or height < 1 or width * height > max_pixels:
        raise DataError(
            "new label map",
            f"{width}x{height}: give sides of at least 1 and at most {max_pixels} pixels in all",
        )
    _check_ids(np.array([cls]), int(loaded.spec.label_nc), "class")
    return LabelMap(np.full((height, width), int(cls), dtype=np.int32))


def read_label_map(
    loaded: Loaded, label: str | Path | None, inst: str | Path | None = None, max_pixels: int = 2048 * 2048
) -> LabelMap:
    """A label map file (PNG of class ids, as the data sets store them) and, optionally, its
    instance map (``class * 1000 + k`` for objects, 16-bit PNG), checked against the model."""
    path = check_image(label, max_pixels, "label map")
    try:
        ids = ids_to_tensor(load_id_map(path)).numpy().astype(np.int32)
    except DataError as err:
        raise DataError(path.name, err.problem or str(err)) from None
    _check_ids(ids, int(loaded.spec.label_nc), path.name)
    inst_ids = None
    if inst not in (None, ""):
        ipath = check_image(inst, max_pixels, "instance map")
        try:
            inst_ids = ids_to_tensor(load_id_map(ipath)).numpy().astype(np.int32)
        except DataError as err:
            raise DataError(ipath.name, err.problem or str(err)) from None
        if inst_ids.shape != ids.shape:
            raise DataError(
                ipath.name, f"instance map is {inst_ids.shape[::-1]}, its label map {ids.shape[::-1]}"
            )
    return LabelMap(ids, inst_ids)


def instances(labels: LabelMap) -> list[Instance]:
    """The instances of a label map, by id: each one's class is the most frequent class id under
    it (without an instance map, each class is one instance)."""
    ids, inverse, counts = np.unique(labels.instance_ids(), return_inverse=True, return_counts=True)
    n = int(labels.label.max()) + 1
    votes = np.bincount(inverse.ravel() * n + labels.label.ravel(), minlength=len(ids) * n).reshape(
        len(ids), n
    )
    return [Instance(int(i), int(c), int(p)) for i, c, p in zip(ids, votes.argmax(1), counts)]


def stroke_mask(layers: list[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """Where the canvas's paint layers (RGBA H x W x 4, as Gradio's editor gives them) were
    painted: opaque pixels (alpha >= 128, so that a brush's soft rim does not spread the class),
    as a boolean H x W at the label map's ``size`` (W, H)."""
    mask = np.zeros(size[::-1], dtype=bool)
    for layer in layers or []:
        if layer is None:
            continue
        layer = np.asarray(layer)
        alpha = (
            layer[..., 3]
            if layer.ndim == 3 and layer.shape[2] == 4
            else (layer.reshape(*layer.shape[:2], -1).max(-1))
        )
        painted = alpha >= 128
        if painted.shape != mask.shape:  # a canvas of another size: nearest neighbour
            painted = np.asarray(Image.fromarray(painted).resize(size, Image.NEAREST))
        mask |= painted
    return mask


def paint(labels: LabelMap, mask: np.ndarray, cls: int, label_set: LabelSet) -> LabelMap:
    """``labels`` with the pixels of ``mask`` set to class ``cls``. A stroke of a countable class
    (``label_set.things``) is a new instance, ``cls * 1000 + k`` (the Cityscapes convention);
    other classes' instance id is the class id."""
    cls = int(cls)
    _check_ids(np.array([cls]), len(label_set), "class")
    label = labels.label.copy()
    label[mask] = cls
    inst = None if labels.inst is None else labels.inst.copy()
    if cls in label_set.things:
        inst = labels.label.copy() if inst is None else inst
        taken = inst[(inst >= cls * 1000) & (inst < (cls + 1) * 1000)]
        inst[mask] = cls * 1000 + (int(taken.max()) - cls * 1000 + 1 if taken.size else 0)
    elif inst is not None:
        inst[mask] = cls
    kept = set(np.unique(label if inst is None else inst).tolist())
    return LabelMap(label, inst, {i: k for i, k in labels.choices.items() if i in kept})


def choose_cluster(loaded: Loaded, labels: LabelMap, instance: int, choice: int | None) -> LabelMap:
    """``labels`` with instance ``instance`` given its class's cluster centre ``choice`` (0-based;
    None: a random one), checked against the model's ``style_clusters``."""
    found = {i.id: i for i in instances(labels)}.get(int(instance))
    if found is None:
        raise DataError(f"instance {instance}", "not in this label map")
    k = len(loaded.clusters.get(found.cls, ()))
    name = loaded.label_set.names[found.cls]
    if choice is not None and not 0 <= int(choice) < k:
        raise DataError(
            f"instance {instance}", f"its class {name} has {k} feature cluster(s); choose 1..{k} or random"
        )
    choices = dict(labels.choices)
    if choice is None:
        choices.pop(int(instance), None)
    else:
        choices[int(instance)] = int(choice)
    return replace(labels, choices=choices)


def random_cluster(seed: int, instance: int, k: int) -> int:
    """The centre a "random" instance gets: drawn from (seed, instance id), so that an edit
    elsewhere in the map does not change it."""
    return int(np.random.default_rng([int(seed) & 0xFFFFFFFF, int(instance) & 0xFFFFFFFF]).integers(k))


def cluster_style(
    loaded: Loaded, label: torch.Tensor, inst: torch.Tensor, choices: dict, seed: int
) -> torch.Tensor:
    """The per-pixel style (1 x dim x H x W) of a label map: every instance's pixels hold the
    centre chosen for it (``choices``, else :func:`random_cluster`) among its class's
    ``style_clusters``; zeros for classes without centres."""
    ids, inverse = torch.unique(inst, return_inverse=True)
    n = int(label.max()) + 1
    votes = torch.bincount((inverse * n + label).flatten(), minlength=len(ids) * n).view(len(ids), n)
    dim = loaded.spec.style.dim
    codes = torch.zeros(len(ids), dim)
    for row, (i, c) in enumerate(zip(ids.tolist(), votes.argmax(1).tolist())):
        centres = loaded.clusters.get(c)
        if centres is None or not len(centres):
            continue
        pick = choices.get(i)
        if pick is None or not 0 <= pick < len(centres):
            pick = random_cluster(seed, i, len(centres))
        codes[row] = centres[pick]
    return codes[inverse].permute(2, 0, 1)[None]


def translate_labels(
    loaded: Loaded, labels: LabelMap, options: Options | None = None, max_pixels: int = 2048 * 2048
) -> Outcome:
    """Translate a label map. With per-instance clusters (and no reference), sample j fills each
    instance with its chosen centre, or a random one drawn with seed + j; otherwise as
    ``imtrans translate`` (samples, reference, style codes)."""
    start = time.perf_counter()
    options = options or Options()
    if loaded.spec.input_kind != "labels":
        raise inf.UsageError(f"{loaded.name} translates images, not label maps")
    w, h = labels.size
    if w * h > max_pixels:
        raise DataError("label map", f"{w}x{h} is more than this app takes (max_pixels={max_pixels})")
    _check_ids(labels.label, int(loaded.spec.label_nc), "label map")
    tr = _translator(loaded, options, max_pixels)
    if options.interpolate:
        _at(tr, options.t)
    maps = [torch.from_numpy(labels.label.astype(np.int64))]
    if loaded.spec.instance_maps:
        maps.append(torch.from_numpy(labels.instance_ids().astype(np.int64)))
    x, how = tr.prepare(torch.stack(maps).float(), Path("label map"))
    model_start = time.perf_counter()
    if loaded.clusters and tr.reference is None:
        ids = x.round().long()
        label, inst = ids[0], ids[-1]
        given = {"label": label[None], "inst": inst[None] if len(ids) > 1 else None}
        outs = [
            loaded.model.translate(
                given,
                **tr.task.call,
                style=cluster_style(loaded, label, inst, labels.choices, options.seed + j),
            )
            for j in range(tr.num_samples)
        ]
        y = torch.cat(outs).cpu()
    else:
        y = tr.translate_batch(x[None])[0].cpu()
    model_ms = (time.perf_counter() - model_start) * 1000
    y = tr.restore(y, how)
    titles = [f"{tr.task.name} t={options.t:.2f}"] if options.interpolate else tr.output_titles(len(y))
    images = [(_array(out), title) for out, title in zip(y, titles)]
    return Outcome(images, (time.perf_counter() - start) * 1000, model_ms, list(tr.notices))


def translate_request(
    loaded: Loaded, image, labels: LabelMap | None, options: Options, max_pixels: int
) -> Outcome:
    """The page's Translate: the image, or the label map being edited, as the model takes."""
    if loaded.spec.input_kind == "labels":
        if labels is None:
            raise DataError("label map", "none yet; paint, upload one or start a new one")
        return translate_labels(loaded, labels, options, max_pixels)
    return translate_image(loaded, image, options, max_pixels)


def default_canvas(loaded: Loaded) -> tuple[int, int]:
    """(width, height) of the first blank label map: the training width (at most 512) and, for
    data scaled by width (street scenes), half of it, else a square."""
    data = inf.run_config(loaded.model).get("data") or {}
    width = int(data.get("crop_size") or data.get("load_size") or data.get("size") or 256)
    width = max(32, min(width, 512))
    return width, (width // 2 if data.get("preprocess") == "scale_width" else width)


# ---------------------------------------------------------------------- errors in the page
def user_message(err: BaseException) -> str:
    """The one line a user reads in the page for ``err``: the command-line tools' ``<label>:
    <message>`` for the user's own mistakes, a plain word on memory, and for anything else the
    error's type and text with a pointer to the server's log (which has the traceback)."""
    from imtrans.run import _user_error

    found = _user_error(err)
    if found is not None:
        label, cause = found
        return f"{label}: {cause}"
    if isinstance(err, inf.UsageError):
        return f"not possible with this model: {err}"
    if isinstance(err, (FileNotFoundError, ValueError)):
        return str(err)
    text = str(err)
    if isinstance(err, MemoryError) or "out of memory" in text.lower() or "can't allocate" in text.lower():
        return "not enough memory for this request; try a smaller image, fewer samples or fit=resize"
    return f"internal error ({type(err).__name__}: {' '.join(text.split())[:200]}); the server's log has the details"


# ---------------------------------------------------------------------- the server
class AppServer:
    """The models the page has loaded (the most recent few, by checkpoint) and its limits."""

    KEEP = 2

    def __init__(self, ckpt: str, device: str = "cpu", max_pixels: int = 2048 * 2048, trust: bool = False):
        self.device = inf.pick_device(device)
        self.max_pixels = int(max_pixels)
        self.trust = trust
        self._models: OrderedDict[str, Loaded] = OrderedDict()
        self.first = self.get(ckpt)

    def get(self, ckpt: str) -> Loaded:
        """The model of ``ckpt``, loaded once and kept while it is among the last ``KEEP``."""
        key = str(ckpt).strip()
        if key not in self._models:
            self._models[key] = load(key, self.device, self.trust)
            while len(self._models) > self.KEEP:
                self._models.popitem(last=False)
        self._models.move_to_end(key)
        return self._models[key]


CSS = """
#status p { margin: 0; }
.imtrans-legend { display: flex; flex-wrap: wrap; gap: 2px 10px; font-size: 12px; }
.imtrans-legend span { display: inline-flex; align-items: center; gap: 4px; }
.imtrans-legend i { width: 12px; height: 12px; border: 1px solid #8886; display: inline-block; }
"""


def legend_html(label_set: LabelSet | None) -> str:
    """The classes and their colours, as chips."""
    if label_set is None:
        return ""
    chips = "".join(
        f'<span><i style="background: rgb{tuple(c)}"></i>{i} {html.escape(n)}</span>'
        for i, (n, c) in enumerate(zip(label_set.names, label_set.colours))
    )
    return f'<div class="imtrans-legend">{chips}</div>'


def import_gradio():
    """Gradio, imported with its usage analytics off (the variable must be set before the import)."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    try:
        import gradio
    except ImportError:
        raise inf.UsageError(
            "the app needs Gradio; install the app extra: pip install 'imtrans[app]'"
        ) from None
    return gradio


def build(server: AppServer):
    """The page (a ``gradio.Blocks``) for ``server``, every control and its visibility read from
    the loaded model's declaration (:func:`controls`)."""
    gr = import_gradio()

    def image_input(**kwargs):
        """A ``gr.Image`` whose upload reaches the app as the uploaded file's path, unread: the app
        reads it with imtrans's rules and says in the page what is wrong with a file that is not
        an image (Gradio's own reading would fail before the app sees it). Set on the instance:
        a subclass of a Gradio component makes Gradio write a stub file beside this module."""
        component = gr.Image(**kwargs)
        component.preprocess = lambda payload: None if payload is None else payload.path
        return component

    first = server.first
    c0 = controls(first)

    def brush(cls: int, size: int, label_set: LabelSet | None):
        colour = "#" + "".join(f"{v:02x}" for v in label_set.colours[int(cls)]) if label_set else "#ff0000"
        return gr.Brush(colors=[colour], default_color=colour, color_mode="fixed", default_size=int(size))

    def class_choices(label_set: LabelSet | None):
        return [] if label_set is None else [(f"{i} {n}", i) for i, n in enumerate(label_set.names)]

    def first_class(label_set: LabelSet | None) -> int:
        return min(label_set.things) if label_set and label_set.things else 0

    def initial_labels(loaded: Loaded) -> LabelMap | None:
        if loaded.spec.input_kind != "labels":
            return None
        w, h = default_canvas(loaded)
        return blank_label_map(loaded, w, h, 0, server.max_pixels)

    def canvas_value(labels: LabelMap | None, loaded: Loaded):
        if labels is None:
            return None
        return {"background": colourise(labels.label, loaded.label_set), "layers": [], "composite": None}

    def instance_rows(labels: LabelMap | None, loaded: Loaded):
        if labels is None:
            return []
        ls = loaded.label_set
        rows = []
        for inst in instances(labels):
            k = len(loaded.clusters.get(inst.cls, ()))
            chosen = labels.choices.get(inst.id)
            cluster = "" if not k else (f"{chosen + 1} of {k}" if chosen is not None else f"random of {k}")
            rows.append([inst.id, f"{inst.cls} {ls.names[inst.cls]}", inst.pixels, cluster])
        return rows

    def instance_choices(labels: LabelMap | None, loaded: Loaded):
        if labels is None or not loaded.clusters:
            return []
        ls = loaded.label_set
        return [
            (f"{i.id} ({ls.names[i.cls]})", i.id)
            for i in instances(labels)
            if len(loaded.clusters.get(i.cls, ()))
        ]

    labels0 = initial_labels(first)
    ls0 = first.label_set
    cls0 = first_class(ls0) if ls0 is not None else None

    # the images sent to the page are files in Gradio's cache: those older than an hour go
    with gr.Blocks(title="imtrans", analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        state = gr.State({"ckpt": first.path, "labels": labels0, "history": []})
        gr.Markdown("## imtrans: translate with a trained model")
        with gr.Row():
            ckpt = gr.Textbox(
                first.path,
                label="checkpoint (run folder, imported or zoo model folder, .ckpt or .safetensors file)",
                scale=5,
                elem_id="ckpt",
            )
            load_button = gr.Button("Load", scale=1, elem_id="load")
        about = gr.Markdown(describe(first), elem_id="about")
        status = gr.Markdown("", elem_id="status")
        with gr.Row():
            with gr.Column(scale=1):
                with gr.Group(visible=c0["input"] == "image") as image_panel:
                    image = image_input(
                        type="filepath", label="image (upload or drop; any size)", sources=["upload", "clipboard"],
                        height=300, elem_id="image",
                    )  # fmt: skip
                with gr.Group(visible=c0["input"] == "labels") as labels_panel:
                    with gr.Row():
                        cls = gr.Dropdown(class_choices(ls0), value=cls0, label="paint class", elem_id="cls")
                        size = gr.Slider(1, 64, value=8, step=1, label="brush size", elem_id="brush")
                    canvas = gr.ImageEditor(
                        canvas_value(labels0, first), type="numpy", image_mode="RGBA", format="png",
                        sources=(), transforms=(), layers=False, eraser=False, brush=brush(cls0 or 0, 8, ls0),
                        label="label map: paint on it", elem_id="canvas",
                    )  # fmt: skip
                    legend = gr.HTML(legend_html(ls0))
                    with gr.Row(equal_height=True):
                        undo = gr.Button("Undo last edit", size="sm", elem_id="undo")
                        new_map = gr.Button("New map of the paint class", size="sm", elem_id="new_map")
                        w0, h0 = default_canvas(first) if labels0 is not None else (256, 256)
                        width = gr.Number(w0, precision=0, label="width", min_width=80)
                        height = gr.Number(h0, precision=0, label="height", min_width=80)
                    with gr.Accordion("label map files", open=False):
                        with gr.Row():
                            label_file = gr.File(label="label map (PNG of class ids)", type="filepath",
                                                 height=120, elem_id="label_file")  # fmt: skip
                            inst_file = gr.File(label="instance map (optional)", type="filepath",
                                                height=120, elem_id="inst_file")  # fmt: skip
                        use_files = gr.Button("Use these files", size="sm", elem_id="use_files")
                    table = gr.Dataframe(
                        instance_rows(labels0, first), headers=["instance", "class", "pixels", "feature cluster"],
                        interactive=False, label="instances", max_height=220, elem_id="instances",
                    )  # fmt: skip
                    with gr.Row(visible=c0["clusters"], equal_height=True) as cluster_row:
                        pick = gr.Dropdown(instance_choices(labels0, first), label="instance", allow_custom_value=True,
                                           elem_id="pick")  # fmt: skip
                        # any value may come (the choices follow the instance): on_centre checks it
                        centre = gr.Dropdown(["random"], value="random", label="its feature cluster",
                                             allow_custom_value=True, elem_id="centre")  # fmt: skip
                        set_centre = gr.Button("Set", size="sm", elem_id="set_centre")
                task = gr.Dropdown(c0["tasks"], value=c0["tasks"][0], label=c0["task_label"], elem_id="task")
                with gr.Row():
                    samples = gr.Slider(1, MAX_SAMPLES, value=1, step=1, label="samples (styles drawn at once)",
                                        visible=c0["samples"], elem_id="samples")  # fmt: skip
                    seed = gr.Number(0, precision=0, label="seed", visible=c0["samples"] or c0["clusters"],
                                     elem_id="seed")  # fmt: skip
                reference = image_input(type="filepath", label="reference image (its style)", visible=c0["reference"],
                                      sources=["upload", "clipboard"], height=180, elem_id="reference")  # fmt: skip
                with gr.Group(visible=c0["interpolate"]) as interp_group:
                    interpolate = gr.Checkbox(False, label="walk between two styles (A: drawn with the seed, B: the next draw)",
                                              elem_id="interpolate")  # fmt: skip
                    t = gr.Slider(0, 1, value=0.5, step=0.05, label="from style A to style B", elem_id="t")
                    with gr.Row(visible=c0["style_images"]) as style_row:
                        style_from = image_input(type="filepath", label="style A from an image (optional)",
                                               sources=["upload"], height=140, elem_id="style_from")  # fmt: skip
                        style_to = image_input(type="filepath", label="style B from an image (optional)",
                                             sources=["upload"], height=140, elem_id="style_to")  # fmt: skip
                with gr.Row():
                    attention = gr.Checkbox(False, label="attention maps", visible=bool(c0["attention"]),
                                            elem_id="attention")  # fmt: skip
                    ema = gr.Checkbox(True, label="EMA generator weights", visible=c0["ema"], elem_id="ema")
                    fit = gr.Radio(list(FIT_CHOICES), value="pad", label="fit: pad to what the generator takes, or resize",
                                   visible=c0["input"] == "image", elem_id="fit")  # fmt: skip
                go = gr.Button("Translate", variant="primary", elem_id="translate")
            with gr.Column(scale=1):
                gallery = gr.Gallery(label="outputs", format="png", columns=2, elem_id="outputs",
                                     buttons=["download", "fullscreen"], object_fit="contain")  # fmt: skip

        option_inputs = [
            task,
            samples,
            seed,
            reference,
            interpolate,
            t,
            style_from,
            style_to,
            attention,
            ema,
            fit,
        ]

        def options_of(values) -> Options:
            (task_v, samples_v, seed_v, ref_v, interp_v, t_v, from_v, to_v, att_v, ema_v, fit_v) = values
            return Options(
                task=task_v, num_samples=int(samples_v or 1), seed=int(seed_v or 0), reference=ref_v or None,
                interpolate=bool(interp_v), t=float(t_v if t_v is not None else 0.5), style_from=from_v or None,
                style_to=to_v or None, attention=bool(att_v), ema=True if ema_v is None else bool(ema_v),
                fit=fit_v or "pad",
            )  # fmt: skip

        def guarded(fn):
            """Run a handler; any error becomes the one-line message in the page's status."""

            def run(*args):
                try:
                    return fn(*args)
                except Exception as err:  # the page says what went wrong, and the server goes on
                    message = user_message(err)
                    if message.startswith("internal error"):
                        log.exception("imtrans app: a request failed")
                    return {status: f"**Error:** {html.escape(message, quote=False)}"}

            return run

        def translated(outcome: Outcome) -> dict:
            return {gallery: [(img, cap) for img, cap in outcome.images], status: outcome.summary()}

        def label_outputs(st: dict, loaded: Loaded, outcome: Outcome | None, canvas_too: bool = True) -> dict:
            labels = st["labels"]
            out = {
                state: st,
                table: instance_rows(labels, loaded),
                pick: gr.update(choices=instance_choices(labels, loaded), value=None),
            }
            if canvas_too:
                out[canvas] = canvas_value(labels, loaded)
            if outcome is not None:
                out.update(translated(outcome))
            return out

        def with_labels(st: dict, labels: LabelMap, values) -> tuple[dict, Outcome]:
            loaded = server.get(st["ckpt"])
            history = ([st["labels"]] + st["history"])[:UNDO_DEPTH] if st.get("labels") is not None else []
            st = {**st, "labels": labels, "history": history}
            return st, translate_labels(loaded, labels, options_of(values), server.max_pixels)

        # -------------------------------------------------------------- handlers
        def on_load(path, st):
            loaded = server.get(path)
            c, ls = controls(loaded), loaded.label_set
            labels = initial_labels(loaded)
            st = {"ckpt": loaded.path, "labels": labels, "history": []}
            first_cls = first_class(ls)
            w, h = default_canvas(loaded) if labels is not None else (256, 256)
            out = {
                state: st,
                about: describe(loaded),
                status: f"loaded `{html.escape(loaded.path)}`",
                image_panel: gr.update(visible=c["input"] == "image"),
                labels_panel: gr.update(visible=c["input"] == "labels"),
                task: gr.update(choices=c["tasks"], value=c["tasks"][0], label=c["task_label"]),
                samples: gr.update(visible=c["samples"], value=1),
                seed: gr.update(visible=c["samples"] or c["clusters"]),
                reference: gr.update(visible=c["reference"], value=None),
                interp_group: gr.update(visible=c["interpolate"]),
                interpolate: gr.update(value=False),
                style_row: gr.update(visible=c["style_images"]),
                attention: gr.update(visible=bool(c["attention"]), value=False),
                ema: gr.update(visible=c["ema"], value=True),
                fit: gr.update(visible=c["input"] == "image"),
                gallery: None,
                cls: gr.update(choices=class_choices(ls), value=first_cls if ls is not None else None),
                canvas: gr.update(value=canvas_value(labels, loaded), brush=brush(first_cls, 8, ls)),
                size: gr.update(value=8),
                legend: legend_html(ls),
                width: w,
                height: h,
                table: instance_rows(labels, loaded),
                cluster_row: gr.update(visible=c["clusters"]),
                pick: gr.update(choices=instance_choices(labels, loaded), value=None),
            }
            return out

        def on_translate(st, image_v, *values):
            loaded = server.get(st["ckpt"])
            return translated(
                translate_request(loaded, image_v, st.get("labels"), options_of(values), server.max_pixels)
            )

        def on_slider(st, image_v, *values):
            if not values[4]:  # interpolate off: the slider does nothing
                return {status: gr.skip()}  # nothing to do (an empty dict would be one value)
            return on_translate(st, image_v, *values)

        def on_paint(st, editor, cls_v, *values):
            loaded = server.get(st["ckpt"])
            labels = st.get("labels")
            if labels is None or editor is None:
                return {status: gr.skip()}  # nothing to do (an empty dict would be one value)
            mask = stroke_mask(editor.get("layers") or [], labels.size)
            if not mask.any():
                return {status: gr.skip()}  # nothing to do (an empty dict would be one value)
            new, outcome = with_labels(st, paint(labels, mask, int(cls_v), loaded.label_set), values)
            return label_outputs(new, loaded, outcome)

        def on_files(st, label_v, inst_v, *values):
            loaded = server.get(st["ckpt"])
            labels = read_label_map(loaded, label_v, inst_v, server.max_pixels)
            new, outcome = with_labels(st, labels, values)
            w, h = labels.size
            return {**label_outputs(new, loaded, outcome), width: w, height: h}

        def on_new(st, w, h, cls_v, *values):
            loaded = server.get(st["ckpt"])
            labels = blank_label_map(loaded, int(w or 0), int(h or 0), int(cls_v), server.max_pixels)
            new, outcome = with_labels(st, labels, values)
            return {**label_outputs(new, loaded, outcome), width: labels.size[0], height: labels.size[1]}

        def on_undo(st, *values):
            loaded = server.get(st["ckpt"])
            if not st.get("history"):
                return {status: "nothing to undo"}
            labels, rest = st["history"][0], st["history"][1:]
            new = {**st, "labels": labels, "history": rest}
            outcome = translate_labels(loaded, labels, options_of(values), server.max_pixels)
            return label_outputs(new, loaded, outcome)

        def on_pick(st, inst_id):
            loaded = server.get(st["ckpt"])
            labels = st.get("labels")
            if labels is None or inst_id is None:
                return {centre: gr.update(choices=["random"], value="random")}
            found = {i.id: i for i in instances(labels)}.get(int(inst_id))
            k = 0 if found is None else len(loaded.clusters.get(found.cls, ()))
            chosen = labels.choices.get(int(inst_id))
            choices = ["random"] + [f"cluster {j + 1}" for j in range(k)]
            return {
                centre: gr.update(
                    choices=choices, value="random" if chosen is None else f"cluster {chosen + 1}"
                )
            }

        def on_centre(st, inst_id, centre_v, *values):
            loaded = server.get(st["ckpt"])
            labels = st.get("labels")
            if labels is None or inst_id is None:
                return {status: "choose an instance first"}
            text = str(centre_v or "random").strip()
            if text != "random" and not text.split()[-1].isdigit():
                raise DataError("feature cluster", f"{text!r}: give 'random' or 'cluster <n>'")
            choice = None if text == "random" else int(text.split()[-1]) - 1
            new, outcome = with_labels(st, choose_cluster(loaded, labels, int(inst_id), choice), values)
            return label_outputs(new, loaded, outcome, canvas_too=False)

        def on_brush(st, cls_v, size_v):
            loaded = server.get(st["ckpt"])
            if loaded.label_set is None or cls_v is None:
                return {status: gr.skip()}  # nothing to do (an empty dict would be one value)
            return {canvas: gr.update(brush=brush(int(cls_v), int(size_v or 8), loaded.label_set))}

        # -------------------------------------------------------------- events
        load_outputs = [
            state, about, status, image_panel, labels_panel, task, samples, seed, reference, interp_group,
            interpolate, style_row, attention, ema, fit, gallery, cls, canvas, size, legend, width, height,
            table, cluster_row, pick,
        ]  # fmt: skip
        label_outs = [state, canvas, table, pick, gallery, status, width, height]
        # one request at a time on the model; label edits show their progress in the gallery only
        model = {"concurrency_id": "model", "concurrency_limit": 1}
        edit = {**model, "show_progress_on": [gallery]}
        images = [state, image, *option_inputs]
        load_button.click(guarded(on_load), [ckpt, state], load_outputs, api_name="load", **model)
        go.click(guarded(on_translate), images, [gallery, status], api_name="translate", **model)
        t.release(guarded(on_slider), images, [gallery, status], api_name="interpolate", **model)
        canvas.input(
            guarded(on_paint), [state, canvas, cls, *option_inputs], label_outs, api_name="paint", **edit
        )
        use_files.click(guarded(on_files), [state, label_file, inst_file, *option_inputs], label_outs,
                        api_name="label_map", **edit)  # fmt: skip
        new_map.click(guarded(on_new), [state, width, height, cls, *option_inputs], label_outs,
                      api_name="new_map", **edit)  # fmt: skip
        undo.click(guarded(on_undo), [state, *option_inputs], label_outs, api_name="undo", **edit)
        set_centre.click(guarded(on_centre), [state, pick, centre, *option_inputs], label_outs,
                         api_name="cluster", **edit)  # fmt: skip
        pick.change(guarded(on_pick), [state, pick], [centre, status], api_name=False, show_progress="hidden")
        cls.change(
            guarded(on_brush), [state, cls, size], [canvas, status], api_name=False, show_progress="hidden"
        )
        size.release(
            guarded(on_brush), [state, cls, size], [canvas, status], api_name=False, show_progress="hidden"
        )
    return demo


def theme():
    """Gradio's base theme in the system's fonts: nothing is fetched from a font service."""
    gr = import_gradio()
    sans = ("system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica", "Arial", "sans-serif")
    mono = ("ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace")
    return gr.themes.Base(font=sans, font_mono=mono)


def launch(
    server: AppServer, port: int = 7860, host: str = "127.0.0.1", share: bool = False, block: bool = True
):
    """Serve the page; returns the ``gradio.Blocks`` (``block=False``: at once, the server running
    in a thread until ``.close()``)."""
    demo = build(server)
    demo.queue(default_concurrency_limit=1)
    demo.launch(
        server_name=host,
        server_port=int(port),
        share=bool(share),
        prevent_thread_lock=not block,
        show_error=False,
        quiet=not block,
        ssr_mode=False,
        theme=theme(),
        css=CSS,
        max_file_size="256mb",
    )
    return demo


# ---------------------------------------------------------------------- command line
def main() -> None:
    if any(a in ("-h", "--help", "help") for a in sys.argv[1:]):
        print(__doc__)
        return
    try:
        args = inf.parse_key_values(sys.argv[1:], SPEC)
        import_gradio()
        server = AppServer(args["ckpt"], args["device"], args["max_pixels"], args["trust"])
    except (ValueError, FileNotFoundError) as err:  # UsageError, a checkpoint that cannot load
        print(
            f"imtrans app: {err if isinstance(err, inf.UsageError) else user_message(err)}", file=sys.stderr
        )
        sys.exit(2)
    print(f"imtrans app: {describe(server.first)}", file=sys.stderr)
    launch(server, args["port"], args["host"], args["share"], block=True)


if __name__ == "__main__":
    main()
