"""What a method's inference takes and gives: :class:`InferenceSpec`, the one declaration every
tool reads.

``TranslationModule.inference_spec()`` returns it. ``imtrans translate``, ``imtrans export``,
``imtrans evaluate``, the sample grids (and the web app) read it instead of knowing methods by
name or trying signatures until one fits:

- **tasks** (:class:`Task`): what can be asked of the model, each with the keyword arguments that
  run it through ``translate`` (``{"direction": "a2b"}``; ``{"target_domain": 2}`` for
  multi-domain methods), its source and target domain names and channel counts;
- **conditioning**: ``samples`` (``num_samples`` gives different outputs), ``style`` (a code the
  tools may draw and pass as ``style=``, :class:`Style`), ``reference`` (example-guided: images
  of the target domain passed as ``reference=``), ``attention`` (the names of
  ``attention_maps``), ``input_kind`` and ``instance_maps`` (label-map methods);
- **label maps**: ``label_nc`` and ``dataset``, which name the classes and their colours
  (``label_set``, :mod:`imtrans.data.label_sets`); a per-pixel ``Style(clusters=True)`` is
  chosen per instance among the per-class centres of ``style_clusters()``;
- **input constraints**: ``size_multiple`` (H and W must be multiples of it), ``fixed_size``
  (the only side the generator takes, e.g. full U-GAT-IT's MLP over the flattened feature map),
  and the channels of each task.

A method overrides ``inference_spec`` by replacing fields of the base declaration
(``dataclasses.replace(super().inference_spec(), style=Style(8), reference=True)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from torch import nn

if TYPE_CHECKING:
    from imtrans.data.label_sets import LabelSet

#: the two-domain directions, as (source, target) domain names
DIRECTIONS = {"a2b": ("A", "B"), "b2a": ("B", "A")}


@dataclass(frozen=True)
class Task:
    """One thing a model translates.

    Attributes:
        name: how users and files name it: ``a2b`` / ``b2a``, or the target domain's name
            (``dog``) for multi-domain methods.
        call: the keyword arguments of ``translate`` (and ``attention_maps``) that run it:
            ``{"direction": "a2b"}`` or ``{"target_domain": 1}``.
        source: the source domain's name, or None when any domain is taken (multi-domain).
        target: the target domain's name.
        in_channels, out_channels: channels of the input and of the output.
    """

    name: str
    call: dict[str, Any]
    source: str | None
    target: str
    in_channels: int = 3
    out_channels: int = 3


@dataclass(frozen=True)
class Style:
    """A style code that the tools may draw and pass to ``translate(style=...)``.

    Attributes:
        dim: N x ``dim`` codes (``per_pixel``: N x ``dim`` x H x W feature maps).
        per_pixel: a spatial feature map (pix2pixHD's instance features) rather than a vector;
            the tools then leave drawing to the method (``num_samples``) and only export takes it.
        encodable: ``encode_reference(images, task)`` gives codes in the same space as
            ``style=`` (so two reference images give the ends of an interpolation).
        clusters: (``per_pixel``) the map is piecewise constant over the input's instances, each
            instance's code one of the centres that ``style_clusters(task)`` gives for its class
            (pix2pixHD's k-means of the training set's instance features): a tool may choose the
            centre of each instance itself and pass the filled map as ``style=``.
    """

    dim: int
    per_pixel: bool = False
    encodable: bool = False
    clusters: bool = False


@dataclass(frozen=True)
class InferenceSpec:
    """The declaration; see the module docstring. Build the base one with
    ``TranslationModule.inference_spec()`` and replace fields."""

    tasks: tuple[Task, ...]
    #: ``image`` (N x C x H x W in [-1, 1]) or ``labels`` (int64 N x H x W class ids, or
    #: ``{"label", "inst"}``)
    input_kind: str = "image"
    #: label maps: instance maps change the output (``inst=``)
    instance_maps: bool = False
    #: label maps: the number of classes (ids 0 .. label_nc - 1)
    label_nc: int | None = None
    #: ``num_samples`` gives different outputs (multimodal)
    samples: bool = False
    style: Style | None = None
    #: ``translate(reference=images of the target domain)`` guides the output
    reference: bool = False
    #: names of the maps ``attention_maps`` returns (empty: none)
    attention: tuple[str, ...] = ()
    #: H and W must be multiples of it
    size_multiple: int = 1
    #: the generator takes only ``fixed_size`` x ``fixed_size`` inputs (None: any size)
    fixed_size: int | None = None
    #: the multi-domain methods' domain names, in index order (None: two domains A and B)
    domains: tuple[str, ...] | None = None
    #: the training data set's name (the stored ``data.name``, e.g. ``cityscapes``): label maps'
    #: class names and colours (``label_set``)
    dataset: str | None = None

    @property
    def label_set(self) -> LabelSet | None:
        """Label maps: the :class:`~imtrans.data.label_sets.LabelSet` of ids 0 .. label_nc - 1
        (names, colours, which classes are countable objects) of ``dataset``, generic names for
        a data set imtrans does not know; None for image inputs."""
        if self.input_kind != "labels" or not self.label_nc:
            return None
        from imtrans.data.label_sets import label_set

        return label_set(self.dataset, int(self.label_nc))

    # ------------------------------------------------------------------ lookups
    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def task(self, name: str | int) -> Task:
        """The task called ``name``. Multi-domain methods also take a domain index, and
        ``<source>2<target>`` domain names (``cat2dog``). A ValueError lists the choices."""
        key = str(name).strip()
        for t in self.tasks:
            if t.name == key:
                return t
        if self.domains is not None:
            if key.isdigit() and int(key) < len(self.domains):
                return self.task(self.domains[int(key)])
            src, sep, tgt = key.partition("2")
            if sep and src in self.domains and tgt in self.domains:
                return self.task(tgt)
        raise ValueError(f"{name!r} is not one of {', '.join(self.task_names)}")


def directional_tasks(directions, channels: dict[str, int] | None = None) -> tuple[Task, ...]:
    """The tasks of a two-domain method translating ``directions`` (``a2b``, ``b2a``);
    ``channels``: ``{"A": nc, "B": nc}`` (default 3 each)."""
    nc = {"A": 3, "B": 3, **(channels or {})}
    return tuple(
        Task(
            d,
            {"direction": d},
            DIRECTIONS[d][0],
            DIRECTIONS[d][1],
            nc[DIRECTIONS[d][0]],
            nc[DIRECTIONS[d][1]],
        )
        for d in directions
    )


def domain_tasks(names, channels: int = 3) -> tuple[Task, ...]:
    """The tasks of a multi-domain method: one per target domain, in index order."""
    return tuple(
        Task(str(n), {"target_domain": i}, None, str(n), channels, channels) for i, n in enumerate(names)
    )


# ---------------------------------------------------------------------- sizes
def stride2_convs(module: nn.Module) -> int:
    """The number of layers of ``module`` that halve H and W: those with a ``stride`` of 2
    (convolutions, pools, blur down-sampling that states its stride), transposed convolutions
    excepted (they double)."""
    count = 0
    for m in module.modules():
        stride = getattr(m, "stride", None)
        stride = tuple(stride) if isinstance(stride, (tuple, list)) else (stride, stride)
        if stride == (2, 2) and not isinstance(m, nn.modules.conv._ConvTransposeNd):
            count += 1
    return count


def generator_size_multiple(modules: dict[str, nn.Module]) -> int:
    """What H and W must be divisible by for fully convolutional generators:
    2**(stride-2 down-sampling convolutions), 2**num_downs for U-Nets; for generators with a
    content encoder (MUNIT/UNIT-style, whose style encoder pools globally) only the content path
    counts."""
    result = 1
    for module in modules.values():
        if getattr(module, "num_downs", None):
            downs = int(module.num_downs)
        elif isinstance(getattr(module, "enc_content", None), nn.Module):
            downs = stride2_convs(module.enc_content)
        else:
            downs = stride2_convs(module)
        result = max(result, 2**downs)
    return result
