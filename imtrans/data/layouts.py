"""Finding the files of one split in each folder layout, and checking them up front.

Each ``find_*`` function returns the matched file lists of one split and raises DataError (path
first, one line) for missing folders, empty folders, unmatched partners and, through
``verify``, unreadable files:

- unpaired: ``<root>/{trainA,trainB,testA,testB}/`` or list files ``<root>/list_trainA.txt`` ...
- paired: side-by-side AB images in ``<root>/{train,val,test}/``, or ``<root>/{trainA,trainB,...}``
  with matching file stems
- labels (pix2pixHD): ``<root>/{train_label,train_inst,train_img,test_label,test_inst,test_img}/``,
  or other folder names given by :class:`LabelFolders` (ADE20K's
  ``<root>/{annotations,images}/{training,validation}/``)
- domains: ``<root>/{train,test}/<domain>/``

Split names: the official data sets have no validation split, so "val" reads the val folders
when they exist and the test folders otherwise; "test" reads test, or val when only that
exists (edges2shoes and AFHQ ship train + val only).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imtrans.errors import ConfigError

from .datasets import check_label_ids, check_same_size
from .errors import DataError
from .io import check_id_map_mode, list_images, read_list_file, scan_images

SPLITS = ("train", "val", "test")
UNPAIRED_EXPECTED = "expected <root>/{trainA,trainB,testA,testB} (unpaired layout)"
PAIRED_EXPECTED = (
    "expected <root>/{train,val,test}/ with side-by-side AB images, "
    "or <root>/{trainA,trainB,testA,testB}/ with matching file names (paired layout)"
)
LABELS_EXPECTED = "expected <root>/{train_label,train_inst,train_img,test_label,test_inst,test_img} (pix2pixHD label layout)"
DOMAINS_EXPECTED = "expected <root>/{train,test}/<domain>/ with one folder per domain (domains layout)"

# Cityscapes file names end in these tags after the shared city_seq_frame prefix.
_CITYSCAPES_TAG = re.compile(r"_(gtFine_labelIds|gtFine_instanceIds|gtFine_color|leftImg8bit)$")


def resolve_split(split: str, exists: Callable[[str], bool]) -> str:
    """The folder-name split for ``split``: train; val or else test; test or else val."""
    if split == "train":
        return "train"
    other = "test" if split == "val" else "val"
    if exists(split):
        return split
    return other if exists(other) else "test"


def split_present(root: Path, layout: str) -> Callable[[str], bool]:
    """Whether ``layout``'s folders of a split name exist under ``root`` (what
    :func:`resolve_split` asks); ``layout``: unpaired, folders (paired A/B folders), ab
    (side-by-side), labels or domains."""
    present = {
        "unpaired": lambda s: (root / f"{s}A").is_dir() or (root / f"list_{s}A.txt").is_file(),
        "folders": lambda s: (root / f"{s}A").is_dir(),
        "ab": lambda s: (root / s).is_dir(),
        "labels": lambda s: (root / f"{s}_label").is_dir(),
        "domains": lambda s: (root / s).is_dir(),
    }
    return present[layout]


@dataclass(frozen=True)
class LabelFolders:
    """Where the label layout keeps each split's label maps, instance maps and images.

    ``label``, ``inst``, ``img``: folder paths under the root in which ``{split}`` stands for the
    split's folder name; ``split_names`` maps a split (train, val, test) to that name where it is
    not the split's own. The default is pix2pixHD's ``<split>_label/``, ``<split>_inst/``,
    ``<split>_img/``; ADE20K's is ``annotations/{split}``, ``images/{split}`` with
    ``{train: training, val: validation}``. A split's folder name is found as in the other
    layouts (:func:`resolve_split`: val reads test when it has no folder, and the reverse).
    """

    label: str = "{split}_label"
    inst: str = "{split}_inst"
    img: str = "{split}_img"
    split_names: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for role in ("label", "inst", "img"):
            template = getattr(self, role)
            if not isinstance(template, str) or "{split}" not in template:
                raise ConfigError(
                    f"data.{_FOLDER_KEYS[role]}={template!r}: needs {{split}} where the split's folder name goes"
                )
        unknown = set(self.split_names) - set(SPLITS)
        if unknown:
            raise ConfigError(
                f"data.split_folders: {sorted(unknown)} are not splits; use {', '.join(SPLITS)}"
            )

    @property
    def is_default(self) -> bool:
        return self == LabelFolders()

    def folder(self, root: Path, role: str, split: str) -> Path:
        """The folder of ``role`` (label, inst or img) for split ``split`` (train, val or test)."""
        return root / getattr(self, role).replace("{split}", self.split_names.get(split, split))

    def present(self, root: Path) -> Callable[[str], bool]:
        """Whether a split's label folder exists (what :func:`resolve_split` asks)."""
        return lambda split: self.folder(root, "label", split).is_dir()

    def expected(self, use_instance: bool = True) -> str:
        """The layout sentence of error messages (naming the instance folder with ``use_instance``)."""
        if self.is_default:
            return LABELS_EXPECTED
        names = ",".join(dict.fromkeys(self.split_names.get(s, s) for s in ("train", "val")))
        tree = lambda role: getattr(self, role).replace("{split}", f"{{{names}}}")  # noqa: E731
        inst = f", instance maps in <root>/{tree('inst')}" if use_instance else ""
        return f"expected label maps in <root>/{tree('label')}, images in <root>/{tree('img')}{inst} (label layout)"


#: the config keys of :class:`LabelFolders`' fields (named in its errors)
_FOLDER_KEYS = {"label": "label_folder", "inst": "inst_folder", "img": "image_folder"}


def _require_folder(folder: Path, expected: str) -> list[Path]:
    if not folder.is_dir():
        raise DataError(folder, f"folder not found; {expected}")
    return list_images(folder)


def match_key(path: Path) -> str:
    """The name that pairs files across folders: the stem without a Cityscapes tag."""
    return _CITYSCAPES_TAG.sub("", path.stem)


def _by_key(paths: Sequence[Path]) -> dict[str, Path]:
    keyed: dict[str, Path] = {}
    for path in paths:
        key = match_key(path)
        if key in keyed:
            raise DataError(path, f"has the same name as {keyed[key]}; names must be unique to match files")
        keyed[key] = path
    return keyed


def match_by_name(
    primary: Sequence[Path], others: Sequence[Path], other_folder: Path, primary_folder: Path
) -> list[Path]:
    """For each primary file, its partner in ``others`` with the same :func:`match_key`.

    A primary file without partner, or an extra file in ``others``, raises DataError naming it.
    """
    keyed = _by_key(others)
    primary_keys = _by_key(primary)
    for key, path in primary_keys.items():
        if key not in keyed:
            raise DataError(path, f"no file with the matching name {key!r} in {other_folder}")
    for key, path in keyed.items():
        if key not in primary_keys:
            raise DataError(path, f"no file with the matching name {key!r} in {primary_folder}")
    return [keyed[match_key(path)] for path in primary]


def _use_lists(option: bool | str, root: Path, name: str) -> bool:
    """``use_lists`` (auto, true or false) resolved for split folder name ``name``."""
    if option == "auto":
        return any((root / f"list_{name}{side}.txt").is_file() for side in "AB")
    return option in (True, "true")


def find_unpaired(
    root: Path, split: str, use_lists: bool | str, verify: str
) -> tuple[list[Path], list[Path]]:
    """Image paths (A, B) of one split: folders ``<name>A/``, ``<name>B/`` or their list files."""
    name = resolve_split(split, split_present(root, "unpaired"))
    lists = _use_lists(use_lists, root, name)
    sides = []
    for side in "AB":
        folder = root / f"{name}{side}"
        if lists:
            list_file = root / f"list_{name}{side}.txt"
            if not list_file.is_file():
                raise DataError(
                    list_file,
                    "list file not found; expected <root>/list_{trainA,trainB,testA,testB}.txt, "
                    "one path a line relative to <root>/trainA etc. (data.use_lists)",
                )
            sides.append(read_list_file(list_file, folder))
        else:
            sides.append(_require_folder(folder, UNPAIRED_EXPECTED))
    scan_images(sides[0] + sides[1], verify, what=f"{root} {name}")
    return sides[0], sides[1]


def paired_layout(root: Path, layout: str) -> str:
    """``"ab"`` or ``"folders"``; ``"auto"`` picks ab when ``<root>/{train,val,test}/`` exists."""
    if layout in ("ab", "folders"):
        return layout
    if layout != "auto":
        raise ConfigError(f"data.layout: {layout!r} is not one of auto, ab, folders")
    if any((root / s).is_dir() for s in SPLITS):
        return "ab"
    if any((root / f"{s}A").is_dir() for s in SPLITS):
        return "folders"
    raise DataError(root, f"no paired data found; {PAIRED_EXPECTED}")


def find_side_by_side(root: Path, split: str, verify: str) -> list[Path]:
    """Side-by-side AB images of one split; odd widths raise DataError (with verify)."""
    name = resolve_split(split, split_present(root, "ab"))
    paths = _require_folder(root / name, PAIRED_EXPECTED)
    for path, header in scan_images(paths, verify, what=f"{root / name}").items():
        width = header.size[0]
        if width % 2:
            raise DataError(
                path, f"side-by-side AB image has odd width {width}; expected two halves of equal width"
            )
    return paths


def find_paired_folders(root: Path, split: str, verify: str) -> list[tuple[Path, Path]]:
    """(A, B) pairs of one split from ``<name>A/`` and ``<name>B/``, matched by file stem."""
    name = resolve_split(split, split_present(root, "folders"))
    folder_a, folder_b = root / f"{name}A", root / f"{name}B"
    paths_a = _require_folder(folder_a, PAIRED_EXPECTED)
    paths_b = match_by_name(paths_a, _require_folder(folder_b, PAIRED_EXPECTED), folder_b, folder_a)
    headers = scan_images(paths_a + paths_b, verify, what=f"{root} {name}")
    if headers:
        for path_a, path_b in zip(paths_a, paths_b):
            check_same_size(path_b, headers[path_b].size, path_a, headers[path_a].size)
    return list(zip(paths_a, paths_b))


def find_labels(
    root: Path,
    split: str,
    use_instance: bool,
    label_nc: int,
    verify: str,
    dontcare: bool = False,
    folders: LabelFolders | None = None,
) -> tuple[list[Path], list[Path] | None, list[Path] | None]:
    """Matched (labels, instance maps or None, images or None) of one split.

    ``folders``: where the files lie (default: pix2pixHD's folders). Cityscapes names
    (``*_gtFine_labelIds.png``, ``*_gtFine_instanceIds.png``, ``*_leftImg8bit.png``) are matched
    by their city_seq_frame prefix, other names by stem. Images are required for training; a
    val/test split without an image folder has none. With ``verify="full"`` every label id is
    checked against ``label_nc`` (and the dontcare ids with ``dontcare``).
    """
    folders = folders or LabelFolders()
    expected = folders.expected(use_instance)
    name = resolve_split(split, folders.present(root))
    label_folder = folders.folder(root, "label", name)
    labels = _require_folder(label_folder, expected)
    insts = images = None
    if use_instance:
        inst_folder = folders.folder(root, "inst", name)
        needs = f"{expected}; data.use_instance=true needs instance maps"
        insts = match_by_name(labels, _require_folder(inst_folder, needs), inst_folder, label_folder)
    image_folder = folders.folder(root, "img", name)
    if split == "train" or image_folder.is_dir():
        images = match_by_name(labels, _require_folder(image_folder, expected), image_folder, label_folder)

    def check_ids(path: Path, img) -> None:
        check_id_map_mode(path, img.mode)
        check_label_ids(path, np.asarray(img), label_nc, dontcare)

    headers = scan_images(labels, verify, inspect=check_ids, what=f"{label_folder}")
    for label, header in headers.items():  # with verify="header" only the mode can be checked
        check_id_map_mode(label, header.mode)
    for partners in (insts, images):
        if partners is None or not headers:
            continue
        partner_headers = scan_images(partners, verify, what=f"{partners[0].parent}")
        for label, partner in zip(labels, partners):
            if partners is insts:
                check_id_map_mode(partner, partner_headers[partner].mode)
            check_same_size(partner, partner_headers[partner].size, label, headers[label].size)
    return labels, insts, images


def domain_names(root: Path) -> list[str]:
    """Sorted names of the domain folders in ``<root>/train`` (or the first split present)."""
    present = [root / s for s in SPLITS if (root / s).is_dir()]
    if not present:
        raise DataError(root / "train", f"folder not found; {DOMAINS_EXPECTED}")
    names = sorted(p.name for p in present[0].iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names:
        raise DataError(present[0], f"no domain folders; {DOMAINS_EXPECTED}")
    return names


def find_domains(root: Path, split: str, domains: Sequence[str], verify: str) -> list[tuple[Path, int]]:
    """(path, domain index) of every image of one split, domains in the order given."""
    name = resolve_split(split, split_present(root, "domains"))
    items = []
    for index, domain in enumerate(domains):
        items.extend((path, index) for path in _require_folder(root / name / domain, DOMAINS_EXPECTED))
    scan_images([path for path, _ in items], verify, what=f"{root / name}")
    return items


def find_domain_pair(
    root: Path, split: str, domains: Sequence[str], verify: str
) -> tuple[list[Path], list[Path]]:
    """Image paths (A, B) of one split read from two domain folders of a folder-per-domain tree,
    ``<root>/<split>/<domains[0]>/`` and ``<root>/<split>/<domains[1]>/`` (AFHQ's cat and dog as
    an unpaired pair)."""
    name = resolve_split(split, split_present(root, "domains"))
    sides = [_require_folder(root / name / domain, DOMAINS_EXPECTED) for domain in domains]
    scan_images(sides[0] + sides[1], verify, what=f"{root / name}")
    return sides[0], sides[1]
