"""Map-style datasets over lists of files found by :mod:`imtrans.data.layouts`.

Every item is a dict. Images are float32 tensors C x H x W in [-1, 1] (C = the side's ``nc``,
3 or 1); label and instance maps are int64 tensors H x W; paths are strings.

- :class:`UnpairedDataset`, :class:`PairedDataset`, :class:`SideBySideDataset`:
  ``{"A", "B", "A_path", "B_path"}``.
- :class:`LabelDataset`: ``{"label", "inst" (with instance maps), "B" (with images),
  "label_path", "inst_path", "B_path"}``; with a dontcare class the maps' unlabelled value
  (:data:`UNLABELLED`) arrives as the id ``label_nc``.
- :class:`DomainsDataset`: ``{"image", "domain" (int64 scalar), "path"}``.

Randomness (crop, flip, the B partner of unpaired training items) comes from torch's global
generator, which PyTorch seeds per DataLoader worker, and only when the transform augments.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .errors import DataError
from .io import ids_to_tensor, load_id_map, load_photo, photo_to_tensor, to_photo
from .transforms import SpatialTransform

#: The value label maps store for "unlabelled" pixels (COCO-Stuff's 255). With a dontcare class
#: (``contain_dontcare_label``) it is read as the dontcare id ``label_nc``, as SPADE's loader does.
UNLABELLED = 255


def bad_label_ids(ids: np.ndarray, label_nc: int, dontcare: bool = False) -> list[int]:
    """The distinct ids of a label map that are not valid, sorted: valid are 0 .. label_nc - 1,
    and with ``dontcare`` also the dontcare id ``label_nc`` and :data:`UNLABELLED`."""
    bad = (ids < 0) | (ids >= label_nc)
    if dontcare:
        bad &= (ids != label_nc) & (ids != UNLABELLED)
    return sorted(int(v) for v in np.unique(ids[bad])) if bad.any() else []


def label_ids_problem(bad: list[int], label_nc: int, dontcare: bool = False, every: bool = False) -> str:
    """The message for the invalid ids ``bad`` (from :func:`bad_label_ids`) of one label map:
    the highest of them, or with ``every`` the first eight (the checker's report)."""
    if bad[0] < 0:
        return f"negative label id {bad[0]}"
    if every:
        shown = "label id(s) " + ", ".join(map(str, bad[:8])) + (" ..." if len(bad) > 8 else "")
    else:
        shown = f"label id {bad[-1]}"
    if dontcare:
        return (
            f"{shown} >= label_nc {label_nc} and not the dontcare id ({label_nc}, or {UNLABELLED} "
            "in the file); fix the map, or raise data.label_nc (the classes besides dontcare)"
        )
    return f"{shown} >= label_nc {label_nc}; set data.label_nc to at least {bad[-1] + 1}"


def check_label_ids(path: Path, ids: np.ndarray, label_nc: int, dontcare: bool = False) -> None:
    """Raise DataError naming ``path`` if a label id is not valid (see :func:`bad_label_ids`)."""
    bad = bad_label_ids(ids, label_nc, dontcare)
    if bad:
        raise DataError(path, label_ids_problem(bad, label_nc, dontcare))


def check_same_size(path: Path, size: tuple[int, int], partner: Path, partner_size: tuple[int, int]) -> None:
    """Raise DataError naming ``path`` if its (width, height) differs from its partner's."""
    if size != partner_size:
        raise DataError(
            path,
            f"size {size[0]}x{size[1]} differs from {partner} ({partner_size[0]}x{partner_size[1]}); "
            "the images and maps of one item must be pixel-aligned",
        )


def split_side_by_side(img: Image.Image, path: Path) -> tuple[Image.Image, Image.Image]:
    """Left and right halves of a side-by-side AB image; odd widths raise DataError."""
    width, height = img.size
    if width % 2:
        raise DataError(
            path, f"side-by-side AB image has odd width {width}; expected two halves of equal width"
        )
    half = width // 2
    return img.crop((0, 0, half, height)), img.crop((half, 0, width, height))


class UnpairedDataset(Dataset):
    """Two unaligned image lists, as CycleGAN's unaligned loader.

    Length is max(len A, len B). Item i takes A[i % len A]; its B is drawn at random when the
    transform augments (training) and is B[i % len B] otherwise. A and B get independent crops
    and flips. ``nc_a`` / ``nc_b``: channels of each side (3 = RGB, 1 = L).
    """

    def __init__(
        self,
        paths_a: Sequence[Path],
        paths_b: Sequence[Path],
        transform: SpatialTransform,
        nc_a: int = 3,
        nc_b: int = 3,
    ) -> None:
        self.paths_a, self.paths_b = list(paths_a), list(paths_b)
        self.transform = transform
        self.nc_a, self.nc_b = nc_a, nc_b

    def __len__(self) -> int:
        return max(len(self.paths_a), len(self.paths_b))

    def _load(self, path: Path, nc: int) -> torch.Tensor:
        img = load_photo(path, nc)
        return photo_to_tensor(self.transform.apply(img, self.transform.sample(img.size, path)))

    def __getitem__(self, index: int) -> dict:
        path_a = self.paths_a[index % len(self.paths_a)]
        if self.transform.augment:
            path_b = self.paths_b[int(torch.randint(len(self.paths_b), (1,)))]
        else:
            path_b = self.paths_b[index % len(self.paths_b)]
        return {
            "A": self._load(path_a, self.nc_a),
            "B": self._load(path_b, self.nc_b),
            "A_path": str(path_a),
            "B_path": str(path_b),
        }


def _aligned_item(
    img_a: Image.Image, img_b: Image.Image, transform: SpatialTransform, path_a: Path, path_b: Path
) -> dict:
    """One geometry for both images, so A and B stay pixel-aligned."""
    check_same_size(path_b, img_b.size, path_a, img_a.size)
    geometry = transform.sample(img_a.size, path_a)
    return {
        "A": photo_to_tensor(transform.apply(img_a, geometry)),
        "B": photo_to_tensor(transform.apply(img_b, geometry)),
        "A_path": str(path_a),
        "B_path": str(path_b),
    }


class PairedDataset(Dataset):
    """Aligned pairs from two folders: ``pairs`` of (A path, B path) with the same file stem.

    A and B must have the same size; they get the same crop and flip.
    """

    def __init__(
        self, pairs: Sequence[tuple[Path, Path]], transform: SpatialTransform, nc_a: int = 3, nc_b: int = 3
    ) -> None:
        self.pairs = list(pairs)
        self.transform = transform
        self.nc_a, self.nc_b = nc_a, nc_b

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        path_a, path_b = self.pairs[index]
        img_a, img_b = load_photo(path_a, self.nc_a), load_photo(path_b, self.nc_b)
        return _aligned_item(img_a, img_b, self.transform, path_a, path_b)


class SideBySideDataset(Dataset):
    """Aligned pairs stored as one image, A on the left half and B on the right (pix2pix).

    ``swap=True`` (direction BtoA) returns the right half as "A". ``nc_a`` / ``nc_b`` apply to
    the returned "A" / "B". Both paths of an item name the same file.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        transform: SpatialTransform,
        nc_a: int = 3,
        nc_b: int = 3,
        swap: bool = False,
    ) -> None:
        self.paths = list(paths)
        self.transform = transform
        self.nc_a, self.nc_b = nc_a, nc_b
        self.swap = swap

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        path = self.paths[index]
        left, right = split_side_by_side(load_photo(path, 3), path)
        if self.swap:
            left, right = right, left
        img_a, img_b = to_photo(left, self.nc_a, path), to_photo(right, self.nc_b, path)
        return _aligned_item(img_a, img_b, self.transform, path, path)


class LabelDataset(Dataset):
    """pix2pixHD items: a label map, optionally an instance map, and optionally the photo.

    ``labels``, ``insts``, ``images``: matched lists of equal length (``insts`` / ``images`` may be
    None). Label ids must lie in 0 .. label_nc - 1 (checked on every item; a wrong id would
    otherwise surface as an obscure one-hot or CUDA error). ``dontcare``: one more class, id
    ``label_nc`` (SPADE's ``contain_dontcare_label``); the maps may hold it or :data:`UNLABELLED`,
    which is returned as ``label_nc``. All three must have the same size; they share one
    geometry, maps resized with nearest neighbour.
    """

    def __init__(
        self,
        labels: Sequence[Path],
        insts: Sequence[Path] | None,
        images: Sequence[Path] | None,
        transform: SpatialTransform,
        label_nc: int,
        nc: int = 3,
        dontcare: bool = False,
    ) -> None:
        self.labels = list(labels)
        self.insts = None if insts is None else list(insts)
        self.images = None if images is None else list(images)
        self.transform = transform
        self.label_nc = label_nc
        self.nc = nc
        self.dontcare = dontcare

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        label_path = self.labels[index]
        label = load_id_map(label_path)
        geometry = self.transform.sample(label.size, label_path)
        label_ids = ids_to_tensor(self.transform.apply(label, geometry, nearest=True))
        check_label_ids(label_path, label_ids.numpy(), self.label_nc, self.dontcare)
        if self.dontcare:
            label_ids[label_ids == UNLABELLED] = self.label_nc
        item = {"label": label_ids, "label_path": str(label_path)}
        if self.insts is not None:
            inst_path = self.insts[index]
            inst = load_id_map(inst_path)
            check_same_size(inst_path, inst.size, label_path, label.size)
            item["inst"] = ids_to_tensor(self.transform.apply(inst, geometry, nearest=True))
            item["inst_path"] = str(inst_path)
        if self.images is not None:
            image_path = self.images[index]
            image = load_photo(image_path, self.nc)
            check_same_size(image_path, image.size, label_path, label.size)
            item["B"] = photo_to_tensor(self.transform.apply(image, geometry))
            item["B_path"] = str(image_path)
        return item


class DomainsDataset(Dataset):
    """Images of several domains: ``items`` of (path, domain index).

    ``references`` (training, when the transform augments): every item also holds a reference
    pair, ``ref`` and ``ref2`` (C x H x W) of domain ``ref_domain``, drawn independently of the
    item: the domain uniformly, then an image of it uniformly, and as ``ref2`` that image's
    partner under a random permutation of its domain fixed by ``seed`` (StarGAN v2's
    ``ReferenceDataset`` pairs, read through its class-balanced sampler). Each image gets its
    own crop and flip.
    """

    def __init__(
        self,
        items: Sequence[tuple[Path, int]],
        transform: SpatialTransform,
        nc: int = 3,
        references: bool = False,
        seed: int = 0,
    ) -> None:
        self.items = list(items)
        self.transform = transform
        self.nc = nc
        self.references = references
        by_domain: dict[int, list[Path]] = {}
        for path, domain in self.items:
            by_domain.setdefault(domain, []).append(path)
        self.by_domain = [by_domain[d] for d in sorted(by_domain)]
        self.domain_ids = sorted(by_domain)
        g = torch.Generator().manual_seed(seed)
        self.partners = [torch.randperm(len(paths), generator=g).tolist() for paths in self.by_domain]

    def __len__(self) -> int:
        return len(self.items)

    def _load(self, path: Path) -> torch.Tensor:
        img = load_photo(path, self.nc)
        return photo_to_tensor(self.transform.apply(img, self.transform.sample(img.size, path)))

    def __getitem__(self, index: int) -> dict:
        path, domain = self.items[index]
        item = {
            "image": self._load(path),
            "domain": torch.tensor(domain, dtype=torch.int64),
            "path": str(path),
        }
        if self.references and self.transform.augment:
            k = int(torch.randint(len(self.by_domain), (1,)))
            paths = self.by_domain[k]
            i = int(torch.randint(len(paths), (1,)))
            item["ref"] = self._load(paths[i])
            item["ref2"] = self._load(paths[self.partners[k][i]])
            item["ref_domain"] = torch.tensor(self.domain_ids[k], dtype=torch.int64)
            item["ref_path"], item["ref2_path"] = str(paths[i]), str(paths[self.partners[k][i]])
        return item
