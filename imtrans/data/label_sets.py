"""The classes of label-map data sets: names, colours and which classes are countable objects.

A label-map method's declaration (``inference_spec().label_set``, :mod:`imtrans.methods.spec`)
names its classes through :func:`label_set`, from the data set it was trained on (the stored
``data.name``). Tools show label maps in these colours and let users pick classes by name (the
web app paints with them). Data sets imtrans does not know get the PASCAL VOC colour map and the
names ``class <id>``.

Cityscapes: the 34 ``labelIds`` of the official ``cityscapesScripts`` label table (id, name,
colour, ``hasInstances``); pix2pixHD and SPADE take 35 one-hot channels (ids 0 .. 34), of which
id 34 never occurs in the data. Its "thing" classes (person, rider and the vehicles) have one
instance id per object in ``*_instanceIds.png`` (``class * 1000 + k``); the other classes are
stored there as their class id.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Cityscapes ``labelIds``: (name, (R, G, B), has instances), in id order 0 .. 33
CITYSCAPES = (
    ("unlabeled", (0, 0, 0), False),
    ("ego vehicle", (0, 0, 0), False),
    ("rectification border", (0, 0, 0), False),
    ("out of roi", (0, 0, 0), False),
    ("static", (0, 0, 0), False),
    ("dynamic", (111, 74, 0), False),
    ("ground", (81, 0, 81), False),
    ("road", (128, 64, 128), False),
    ("sidewalk", (244, 35, 232), False),
    ("parking", (250, 170, 160), False),
    ("rail track", (230, 150, 140), False),
    ("building", (70, 70, 70), False),
    ("wall", (102, 102, 156), False),
    ("fence", (190, 153, 153), False),
    ("guard rail", (180, 165, 180), False),
    ("bridge", (150, 100, 100), False),
    ("tunnel", (150, 120, 90), False),
    ("pole", (153, 153, 153), False),
    ("polegroup", (153, 153, 153), False),
    ("traffic light", (250, 170, 30), False),
    ("traffic sign", (220, 220, 0), False),
    ("vegetation", (107, 142, 35), False),
    ("terrain", (152, 251, 152), False),
    ("sky", (70, 130, 180), False),
    ("person", (220, 20, 60), True),
    ("rider", (255, 0, 0), True),
    ("car", (0, 0, 142), True),
    ("truck", (0, 0, 70), True),
    ("bus", (0, 60, 100), True),
    ("caravan", (0, 0, 90), True),
    ("trailer", (0, 0, 110), True),
    ("train", (0, 80, 100), True),
    ("motorcycle", (0, 0, 230), True),
    ("bicycle", (119, 11, 32), True),
)

#: ``data.name`` -> its class table
KNOWN = {"cityscapes": CITYSCAPES}


@dataclass(frozen=True)
class LabelSet:
    """The classes of a label map, id by id.

    Attributes:
        names: one name per id 0 .. n - 1.
        colours: one (R, G, B) colour (0 .. 255) per id. Several classes may share a colour
            (Cityscapes' first five are black): tools map ids to colours, never colours back.
        things: the ids of countable objects, whose regions are separate instances
            (``class * 1000 + k`` in instance maps); the other classes' instance id is the class id.
        source: the data set the names come from, or None for the generic names.
    """

    names: tuple[str, ...]
    colours: tuple[tuple[int, int, int], ...]
    things: frozenset[int] = frozenset()
    source: str | None = None

    def __len__(self) -> int:
        return len(self.names)


def voc_colour(i: int) -> tuple[int, int, int]:
    """The PASCAL VOC colour map's colour of id ``i`` (bit-interleaved, as the sample grids use)."""
    r = g = b = 0
    c = i
    for j in range(8):
        r |= ((c >> 0) & 1) << (7 - j)
        g |= ((c >> 1) & 1) << (7 - j)
        b |= ((c >> 2) & 1) << (7 - j)
        c >>= 3
    return r, g, b


def label_set(name: str | None, n: int) -> LabelSet:
    """The :class:`LabelSet` of ``n`` ids of data set ``name`` (``data.name``): the data set's
    own table where imtrans knows it (:data:`KNOWN`), ids beyond it named ``unused <id>``;
    otherwise ``class <id>`` in the VOC colour map."""
    table = KNOWN.get(str(name).lower()) if name else None
    if table is None:
        return LabelSet(tuple(f"class {i}" for i in range(n)), tuple(voc_colour(i) for i in range(n)))
    rows = list(table[:n]) + [(f"unused {i}", voc_colour(i), False) for i in range(len(table), n)]
    return LabelSet(
        names=tuple(r[0] for r in rows),
        colours=tuple(r[1] for r in rows),
        things=frozenset(i for i, r in enumerate(rows) if r[2]),
        source=str(name).lower(),
    )
