"""LightningDataModules, one per folder layout, plus the procedural shapes data set.

All share :class:`TranslationDataModule`: ``setup`` finds and checks the files of the splits a
stage needs (every input error is raised there, before training), the loaders follow one
policy (training: shuffled, random crop/flip, ``drop_last`` when there is at least one full
batch; val/test: fixed order, resize + centre crop, no flip), and :meth:`fixed_batch` gives the
deterministic inputs of sample grids.

``val_from_train=N`` sets N training items of each domain aside as the val split (chosen by
``seed``, never trained on; see :meth:`TranslationDataModule.split_source`), so that the score a
run selects its best checkpoint by is not the test score it reports.

Batches are dicts; see :mod:`imtrans.data.datasets` and :mod:`imtrans.data.shapes` for the keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset, default_collate

from imtrans.errors import ConfigError

from . import layouts
from .datasets import (
    UNLABELLED,
    DomainsDataset,
    LabelDataset,
    PairedDataset,
    SideBySideDataset,
    UnpairedDataset,
)
from .errors import DataError
from .io import VERIFY_LEVELS
from .layouts import SPLITS
from .resumable import PositionSeeded, ResumableSampler, _mix
from .shapes import BASE_SIZE, ShapesDataset
from .sources import DATASETS
from .transforms import SpatialTransform

# Splits whose datasets each Lightning stage needs; any other stage (None) builds all three.
_STAGE_SPLITS = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}


#: the random stream of the held-out draw (apart from the shuffles' and the augmentation's)
_HOLD_OUT_STREAM = 0x0DA7A


def hold_out(count: int, n: int, seed: int, stream: int = 0) -> list[int]:
    """``n`` of ``count`` indices, sorted, drawn from (``seed``, ``stream``) alone: the same on
    every rank, in every run and on every resume with that seed, whatever the global random state."""
    rng = np.random.default_rng(_mix(_HOLD_OUT_STREAM, seed, stream))
    return sorted(rng.permutation(count)[:n].tolist())


def _check_channels(key: str, value: int) -> None:
    if value not in (1, 3):
        raise ConfigError(f"data.{key}: {value} channels; images are read as RGB (3) or grayscale (1)")


class TranslationDataModule(L.LightningDataModule):
    """Base of the imtrans data modules.

    Args:
        batch_size: training and evaluation batch size.
        num_workers: DataLoader worker processes (0 loads in the main process).
        seed: seeds the training shuffle (and through it the workers' augmentation).
        input_nc, output_nc: channels of the "A" (input) and "B" (output) images, 3 or 1.
        num_fixed: default number of items of :meth:`fixed_batch`.
        val_size: cap on the number of val/test items (the first ones); None keeps all.
        val_from_train: N > 0 holds out N training items of each domain (each of A and B, each
            domain folder; N pairs of paired data) as the val split: drawn by ``seed``, read with
            the evaluation transforms, never trained on. 0 reads the val split from its folders.
        verify: input check in ``setup``: ``"full"`` decodes every file once, ``"header"`` only
            opens headers, ``"none"`` skips (errors then surface when a file is used).

    Attributes: ``input_nc``, ``output_nc``, ``paired`` (A and B pixel-aligned), ``domains``.
    """

    paired: bool = False

    def __init__(
        self,
        batch_size: int = 1,
        num_workers: int = 0,
        seed: int = 0,
        input_nc: int = 3,
        output_nc: int = 3,
        num_fixed: int = 4,
        val_size: int | None = None,
        verify: str = "full",
        val_from_train: int | None = 0,
    ) -> None:
        super().__init__()
        if verify not in VERIFY_LEVELS:
            raise ConfigError(f"data.verify: {verify!r} is not one of {', '.join(VERIFY_LEVELS)}")
        val_from_train = 0 if val_from_train is None else val_from_train
        if not isinstance(val_from_train, int) or isinstance(val_from_train, bool) or val_from_train < 0:
            raise ConfigError(
                f"data.val_from_train={val_from_train!r}: the training items held out as the val split "
                "must be a whole number, 0 or more; set 0 to read the val split from its folders"
            )
        self.val_from_train = val_from_train
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.input_nc = input_nc
        self.output_nc = output_nc
        self.num_fixed = num_fixed
        self.val_size = val_size
        self.verify = verify
        self._datasets: dict[tuple[str, bool], Dataset] = {}
        self._resume: dict | None = None

    @property
    def domains(self) -> list[str]:
        """Domain names; the two-domain layouts call their sides A and B."""
        return ["A", "B"]

    def _build(self, split: str, augment: bool) -> Dataset:
        """The dataset of ``split``, with training augmentation or not (subclasses)."""
        raise NotImplementedError

    def _held_out(self, count: int, split: str, stream: int, what: str) -> list[int]:
        """With ``val_from_train``: the indices, among ``count`` training items of one domain
        (``stream`` tells the domains apart), that ``split`` reads: the held-out ones for val,
        the others for train. ``what`` names the items in the error of a too large N."""
        n = self.val_from_train
        if n >= count:
            raise ConfigError(
                f"data.val_from_train={n}: the training split has only {count} {what}, and at least "
                f"one must stay for training; set it below {count}"
            )
        held = hold_out(count, n, self.seed, stream)
        if split == "val":
            return held
        taken = set(held)
        return [i for i in range(count) if i not in taken]

    def _split_folder(self, split: str) -> str:
        """The split whose data ``split`` reads when no items are held out (subclasses with folder
        fallbacks, see :func:`imtrans.data.layouts.resolve_split`)."""
        return split

    def split_source(self, split: str) -> str:
        """What ``split`` reads, as the selection record of ``metrics.json`` names it:
        ``train_holdout`` (val with ``val_from_train``), ``test`` (the images the test scores are
        computed on: a data set without a val folder, or whose only evaluation folder serves both),
        else ``val`` or ``train``."""
        if split == "val" and self.val_from_train:
            return "train_holdout"
        if split == "train":
            return "train"
        return "test" if self._split_folder(split) == self._split_folder("test") else split

    def _limit(self, split: str, dataset: Dataset) -> Dataset:
        """Apply the ``val_size`` cap to val/test datasets."""
        if split == "train" or self.val_size is None or len(dataset) <= self.val_size:
            return dataset
        return Subset(dataset, range(self.val_size))

    def dataset(self, split: str, augment: bool = False) -> Dataset:
        """The (cached) dataset of ``split``; ``augment=True`` gives the training transforms."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        key = (split, augment)
        if key not in self._datasets:
            self._datasets[key] = self._limit(split, self._build(split, augment))
        return self._datasets[key]

    def setup(self, stage: str | None = None) -> None:
        """Find and check the files of the splits ``stage`` needs (all splits for None)."""
        for split in _STAGE_SPLITS.get(stage, SPLITS):
            self.dataset(split, augment=split == "train")

    def _loader(self, dataset: Dataset, train: bool) -> DataLoader:
        sampler = None
        drop_last = train and len(dataset) >= self.batch_size
        if train:
            # Order and augmentation depend on (seed, epoch, position) only: resumable exactly.
            sampler = ResumableSampler(dataset, seed=self.seed, weights=self._sampling_weights(dataset))
            if self._resume is not None:
                # A checkpoint from the epoch's last batch: the next epoch starts from its beginning.
                per_epoch = (
                    len(sampler) // self.batch_size if drop_last else -(-len(sampler) // self.batch_size)
                )
                if self._resume["batches"] < per_epoch:
                    sampler.start = self._resume["batches"] * self.batch_size
                self._resume = None
            dataset = PositionSeeded(dataset, self.seed, self._scheduled_datasets())
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            drop_last=drop_last,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
            # Each iterator draws its workers' base seed from this generator, not from the
            # global stream: opening the validation loader must not shift training's randomness.
            generator=torch.Generator().manual_seed(self.seed),
        )

    def _sampling_weights(self, dataset: Dataset) -> list[float] | None:
        """Per-item weights of the training draw (with replacement), or None: a shuffle."""
        return None

    def _scheduled_datasets(self) -> list[tuple[int, Dataset]]:
        """The training datasets of the model's ``train_data_schedule`` (a TranslationModule hook):
        ``[(first_epoch, dataset)]``, each stage's settings added to the earlier ones'."""
        module = getattr(self.trainer, "lightning_module", None) if self.trainer is not None else None
        schedule = module.train_data_schedule() if hasattr(module, "train_data_schedule") else []
        stages, settings = [], {}
        for first, change in sorted(schedule, key=lambda stage: stage[0]):
            settings = {**settings, **change}
            stages.append((int(first), self._train_dataset_with(settings)))
        return stages

    def _train_dataset_with(self, settings: dict) -> Dataset:
        """The training dataset with preprocessing ``settings`` replaced (SpatialTransform
        keywords). Data without those settings (shapes) keeps its one dataset."""
        return self.dataset("train", augment=True)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.dataset("train", augment=True), train=True)

    def state_dict(self) -> dict:
        """Saved in checkpoints: how far into its epoch training got (batches of this rank)."""
        trainer = self.trainer
        if trainer is None or not trainer.training:
            return {}
        return {
            "epoch": trainer.current_epoch,
            "batches": trainer.fit_loop.epoch_loop.batch_progress.current.processed,
        }

    def load_state_dict(self, state: dict) -> None:
        """On resume: the next training epoch starts where the checkpointed one stopped."""
        self._resume = state if state else None

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.dataset("val"), train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.dataset("test"), train=False)

    def fixed_batch(self, n: int | None = None, split: str = "val") -> dict:
        """The first ``n`` (default ``num_fixed``) items of ``split``, collated into one batch.

        Deterministic: no augmentation (the train split is read with the evaluation transforms)
        and no random pairing. Calls the checks of ``setup`` for that split when needed.
        """
        n = self.num_fixed if n is None else n
        if n < 1:
            raise ValueError(f"fixed_batch: n must be at least 1, got {n}")
        dataset = self.dataset(split, augment=False)
        return default_collate([dataset[i] for i in range(min(n, len(dataset)))])


class _FolderDataModule(TranslationDataModule):
    """Base of the layouts read from ``root``: root checks, transforms, file index per split.

    ``name``: the data set's preset name; when it has a download, a missing ``root`` suggests
    ``python -m imtrans.data.download <name>``. ``preprocess``, ``load_size``, ``crop_size``,
    ``flip``, ``resample`` (photos: ``bicubic`` or ``bilinear``): see :mod:`imtrans.data.transforms`.
    ``eval_load_size``: the ``load_size`` of the evaluation transforms (val, test, sample grids)
    where the official test options set another one (SPADE's ADE20K and COCO: 286 for training,
    256 at test, so the test images are resized to the crop and not cropped); None: ``load_size``.
    """

    expected_layout = ""  # the layout sentence of error messages (subclasses)

    def __init__(
        self,
        root: str | Path | None,
        name: str | None,
        preprocess: str,
        load_size: int | None,
        crop_size: int | None,
        flip: bool,
        resample: str = "bicubic",
        eval_load_size: int | None = None,
        **common,
    ) -> None:
        super().__init__(**common)
        self.root = root
        self.name = name
        self.preprocess = preprocess
        self.load_size = load_size
        self.crop_size = crop_size
        self.flip = flip
        self.resample = resample
        self.eval_load_size = eval_load_size
        # Validates the preprocess words now, at instantiation.
        SpatialTransform(preprocess, load_size, crop_size, flip, resample=resample)
        if eval_load_size is not None:
            try:
                SpatialTransform(preprocess, eval_load_size, crop_size, flip, resample=resample)
            except ConfigError as err:
                raise ConfigError(f"data.eval_load_size={eval_load_size}: {err}") from None
        self._files: dict[str, object] = {}

    def _root(self) -> Path:
        """``root`` as an absolute path; DataError when unset or missing."""
        if self.root is None:
            raise DataError("data.root", f"not set; {self._how_to_get_data(None)}")
        root = Path(self.root).expanduser().absolute()
        if not root.is_dir():
            raise DataError(root, f"data.root folder not found; {self._how_to_get_data(root)}")
        return root

    def _how_to_get_data(self, root: Path | None) -> str:
        if self.name in DATASETS:
            if root is not None and root.name == self.name:
                return f"run `python -m imtrans.data.download {self.name} --root {root.parent}`"
            return f"run `python -m imtrans.data.download {self.name}` and set data.root to the folder it creates"
        return f"set data.root to your data folder; {self.expected_layout}"

    def _find(self, root: Path, split: str) -> object:
        """Find and check the files of one split (subclasses)."""
        raise NotImplementedError

    def _make(self, files: object, transform: SpatialTransform) -> Dataset:
        """The dataset over ``files`` from :meth:`_find` (subclasses)."""
        raise NotImplementedError

    def _layout(self, root: Path) -> str:
        """The layout name of :func:`imtrans.data.layouts.split_present` (subclasses)."""
        raise NotImplementedError

    def _split_folder(self, split: str) -> str:
        root = self._root()
        return layouts.resolve_split(split, layouts.split_present(root, self._layout(root)))

    def _take(self, files: object, split: str) -> object:
        """The part of the training ``files`` (from :meth:`_find`) that ``split`` reads with
        ``val_from_train`` (subclasses, through :meth:`_held_out`)."""
        raise NotImplementedError

    def _build(self, split: str, augment: bool, **settings) -> Dataset:
        holding_out = bool(self.val_from_train) and split in ("train", "val")
        source = "train" if holding_out else split
        if source not in self._files:
            self._files[source] = self._find(self._root(), source)
        files = self._take(self._files[source], split) if holding_out else self._files[source]
        load_size = self.load_size if augment or self.eval_load_size is None else self.eval_load_size
        chosen = {"preprocess": self.preprocess, "load_size": load_size, "crop_size": self.crop_size}
        chosen = {**chosen, "flip": self.flip, **settings}
        return self._make(files, SpatialTransform(**chosen, augment=augment, resample=self.resample))

    def _train_dataset_with(self, settings: dict) -> Dataset:
        unknown = set(settings) - {"preprocess", "load_size", "crop_size", "flip"}
        if unknown:
            raise ConfigError(
                f"train_data_schedule: {sorted(unknown)} are not preprocessing settings "
                "(preprocess, load_size, crop_size, flip)"
            )
        return self._limit("train", self._build("train", True, **settings))


class UnpairedDataModule(_FolderDataModule):
    """Unaligned domains A and B: ``<root>/{trainA,trainB,testA,testB}/`` or list files.

    ``use_lists``: ``auto`` reads ``<root>/list_trainA.txt`` etc. when present (one path a line,
    relative to ``<root>/trainA/``), ``true`` requires them, ``false`` reads the folders.
    ``domains``: two folder names of a folder-per-domain tree, read as A and B instead
    (``<root>/{train,val}/<domain>/``: AFHQ's ``[cat, dog]``). ``direction: BtoA`` swaps the
    sides, so B's images are the input "A" (CUT's Cityscapes labels -> photo).
    Defaults follow CycleGAN: resize to 286, random crop 256, flip.
    """

    expected_layout = layouts.UNPAIRED_EXPECTED

    def __init__(
        self,
        root: str | Path | None = None,
        *,
        name: str | None = None,
        use_lists: bool | str = "auto",
        domains: Sequence[str] | None = None,
        direction: str = "AtoB",
        preprocess: str = "resize_and_crop",
        load_size: int | None = 286,
        crop_size: int | None = 256,
        flip: bool = True,
        **common,
    ) -> None:
        super().__init__(root, name, preprocess, load_size, crop_size, flip, **common)
        if use_lists not in (True, False, "auto", "true", "false"):
            raise ConfigError(f"data.use_lists: {use_lists!r} is not one of auto, true, false")
        if direction not in ("AtoB", "BtoA"):
            raise ConfigError(f"data.direction: {direction!r} is not one of AtoB, BtoA")
        if domains is not None and len(domains) != 2:
            raise ConfigError(
                f"data.domains: {list(domains)}; an unpaired pair reads exactly two domain folders"
            )
        self.use_lists = use_lists
        self.domain_folders = None if domains is None else [str(d) for d in domains]
        self.direction = direction
        _check_channels("input_nc", self.input_nc)
        _check_channels("output_nc", self.output_nc)

    def _find(self, root: Path, split: str) -> tuple[list[Path], list[Path]]:
        if self.domain_folders is not None:
            a, b = layouts.find_domain_pair(root, split, self.domain_folders, self.verify)
        else:
            a, b = layouts.find_unpaired(root, split, self.use_lists, self.verify)
        return (b, a) if self.direction == "BtoA" else (a, b)

    def _layout(self, root: Path) -> str:
        return "unpaired" if self.domain_folders is None else "domains"

    def _take(self, files: tuple[list[Path], list[Path]], split: str) -> tuple[list[Path], list[Path]]:
        """N images of A and N of B, drawn independently (unpaired: no partner to keep)."""
        a, b = (
            [side[i] for i in self._held_out(len(side), split, stream, f"images of {name}")]
            for stream, (name, side) in enumerate(zip("AB", files))
        )
        return a, b

    def _make(self, files: tuple[list[Path], list[Path]], transform: SpatialTransform) -> Dataset:
        return UnpairedDataset(files[0], files[1], transform, self.input_nc, self.output_nc)


class PairedDataModule(_FolderDataModule):
    """Aligned pairs: side-by-side AB images in ``<root>/{train,val,test}/`` (``layout: ab``), or
    ``<root>/{trainA,trainB,testA,testB}/`` with matching file names (``layout: folders``);
    ``auto`` picks by the folders present. ``direction: BtoA`` makes B the input ("A").
    Defaults follow pix2pix: resize to 286, random crop 256, flip (the same for A and B).
    """

    paired = True
    expected_layout = layouts.PAIRED_EXPECTED

    def __init__(
        self,
        root: str | Path | None = None,
        *,
        name: str | None = None,
        layout: str = "auto",
        direction: str = "AtoB",
        preprocess: str = "resize_and_crop",
        load_size: int | None = 286,
        crop_size: int | None = 256,
        flip: bool = True,
        **common,
    ) -> None:
        super().__init__(root, name, preprocess, load_size, crop_size, flip, **common)
        if layout not in ("auto", "ab", "folders"):
            raise ConfigError(f"data.layout: {layout!r} is not one of auto, ab, folders")
        if direction not in ("AtoB", "BtoA"):
            raise ConfigError(f"data.direction: {direction!r} is not one of AtoB, BtoA")
        self.layout = layout
        self.direction = direction
        _check_channels("input_nc", self.input_nc)
        _check_channels("output_nc", self.output_nc)

    def _find(self, root: Path, split: str) -> tuple[str, list]:
        layout = layouts.paired_layout(root, self.layout)
        if layout == "ab":
            return layout, layouts.find_side_by_side(root, split, self.verify)
        pairs = layouts.find_paired_folders(root, split, self.verify)
        if self.direction == "BtoA":
            pairs = [(b, a) for a, b in pairs]
        return layout, pairs

    def _layout(self, root: Path) -> str:
        return layouts.paired_layout(root, self.layout)

    def _take(self, files: tuple[str, list], split: str) -> tuple[str, list]:
        layout, entries = files
        return layout, [entries[i] for i in self._held_out(len(entries), split, 0, "pairs")]

    def _make(self, files: tuple[str, list], transform: SpatialTransform) -> Dataset:
        layout, entries = files
        if layout == "ab":
            swap = self.direction == "BtoA"
            return SideBySideDataset(entries, transform, self.input_nc, self.output_nc, swap=swap)
        return PairedDataset(entries, transform, self.input_nc, self.output_nc)


class LabelDataModule(_FolderDataModule):
    """Label maps (+ instance maps) and their photos, by default in pix2pixHD's folders
    ``<root>/{train_label,train_inst,train_img,test_label,test_inst,test_img}/``.

    ``label_nc``: number of classes; every id must be below it (checked in ``setup`` with
    ``verify="full"``, and on every item). ``contain_dontcare_label``: one more class, the
    "don't care" id ``label_nc``, which the maps store as itself or as 255 (COCO-Stuff's
    unlabelled pixels; read as ``label_nc``), as SPADE's option of that name; ``label_nc`` stays
    the number of the other classes. ``use_instance``: also read the instance maps (8- or
    16-bit ids kept exactly). A val/test split may lack its image folder; its items then have
    no "B". ``label_folder``, ``inst_folder``, ``image_folder``, ``split_folders``: where the
    files lie, see :class:`imtrans.data.layouts.LabelFolders` (ADE20K:
    ``annotations/{split}``, ``images/{split}``, ``{train: training, val: validation}``).
    ``input_nc`` defaults to the one-hot channels, ``label_nc`` (+ 1 with the dontcare class;
    the boundary map is the model's business). Defaults follow pix2pixHD: width scaled to
    1024, no crop, flip.
    """

    paired = True

    def __init__(
        self,
        root: str | Path | None = None,
        *,
        name: str | None = None,
        label_nc: int = 35,
        contain_dontcare_label: bool = False,
        use_instance: bool = False,
        label_folder: str = "{split}_label",
        inst_folder: str = "{split}_inst",
        image_folder: str = "{split}_img",
        split_folders: Mapping[str, str] | None = None,
        preprocess: str = "scale_width",
        load_size: int | None = 1024,
        crop_size: int | None = None,
        flip: bool = True,
        input_nc: int | None = None,
        **common,
    ) -> None:
        if label_nc < 1:
            raise ConfigError(f"data.label_nc: {label_nc}; label maps need at least one class")
        if contain_dontcare_label and label_nc > UNLABELLED:
            raise ConfigError(
                f"data.label_nc={label_nc}: data.contain_dontcare_label reads the maps' {UNLABELLED} as the "
                f"dontcare id, which leaves room for {UNLABELLED} classes; set data.contain_dontcare_label=false"
            )
        input_nc = label_nc + int(bool(contain_dontcare_label)) if input_nc is None else input_nc
        super().__init__(root, name, preprocess, load_size, crop_size, flip, input_nc=input_nc, **common)
        self.label_nc = label_nc
        self.contain_dontcare_label = bool(contain_dontcare_label)
        self.use_instance = use_instance
        self.folders = layouts.LabelFolders(
            label_folder, inst_folder, image_folder, dict(split_folders or {})
        )
        self.expected_layout = self.folders.expected(use_instance)
        _check_channels("output_nc", self.output_nc)

    def _find(self, root: Path, split: str) -> tuple:
        return layouts.find_labels(
            root,
            split,
            self.use_instance,
            self.label_nc,
            self.verify,
            dontcare=self.contain_dontcare_label,
            folders=self.folders,
        )

    def _layout(self, root: Path) -> str:
        return "labels"

    def _split_folder(self, split: str) -> str:
        """The label folder ``split`` reads (two splits read the same data when it is the same)."""
        root = self._root()
        name = layouts.resolve_split(split, self.folders.present(root))
        return str(self.folders.folder(root, "label", name))

    def _take(self, files: tuple, split: str) -> tuple:
        """The same items of the label maps, instance maps and images."""
        keep = self._held_out(len(files[0]), split, 0, "label maps")
        return tuple(None if part is None else [part[i] for i in keep] for part in files)

    def _make(self, files: tuple, transform: SpatialTransform) -> Dataset:
        labels, insts, images = files
        return LabelDataset(
            labels, insts, images, transform, self.label_nc, self.output_nc, self.contain_dontcare_label
        )


class DomainsDataModule(_FolderDataModule):
    """One folder per domain: ``<root>/{train,test}/<domain>/`` (AFHQ's layout).

    ``domains``: the domain folder names in index order; by default all folders of
    ``<root>/train``, sorted by name. Items are ``{"image", "domain", "path"}``.
    ``balanced``: training draws items with replacement, each domain equally often (StarGAN v2's
    sampler: weight 1 / the size of the item's domain). ``references``: each training item also
    carries a reference pair drawn independently of it, ``{"ref", "ref2", "ref_domain"}``: a
    domain drawn uniformly, an image of it and that image's fixed random partner in the same
    domain (StarGAN v2's reference loader).
    """

    expected_layout = layouts.DOMAINS_EXPECTED

    def __init__(
        self,
        root: str | Path | None = None,
        *,
        name: str | None = None,
        domains: Sequence[str] | None = None,
        balanced: bool = False,
        references: bool = False,
        preprocess: str = "resize_and_crop",
        load_size: int | None = 256,
        crop_size: int | None = 256,
        flip: bool = True,
        **common,
    ) -> None:
        super().__init__(root, name, preprocess, load_size, crop_size, flip, **common)
        _check_channels("input_nc", self.input_nc)
        if self.output_nc != self.input_nc:
            raise ConfigError("data.output_nc must equal data.input_nc: all domains are read alike")
        self._domains = None if domains is None else [str(d) for d in domains]
        self.balanced = balanced
        self.references = references

    @property
    def domains(self) -> list[str]:
        """Domain names in index order (read from ``<root>/train`` unless given)."""
        if self._domains is None:
            self._domains = layouts.domain_names(self._root())
        return self._domains

    def _find(self, root: Path, split: str) -> list[tuple[Path, int]]:
        return layouts.find_domains(root, split, self.domains, self.verify)

    def _layout(self, root: Path) -> str:
        return "domains"

    def _take(self, files: list[tuple[Path, int]], split: str) -> list[tuple[Path, int]]:
        """N images of each domain (every domain is then scored), in the split's order."""
        by_domain: dict[int, list[int]] = {}
        for index, (_, domain) in enumerate(files):
            by_domain.setdefault(domain, []).append(index)
        keep = [
            indices[i]
            for domain, indices in sorted(by_domain.items())
            for i in self._held_out(len(indices), split, domain, f"images of {self.domains[domain]}")
        ]
        return [files[i] for i in sorted(keep)]

    def _make(self, files: list[tuple[Path, int]], transform: SpatialTransform) -> Dataset:
        return DomainsDataset(files, transform, self.input_nc, references=self.references, seed=self.seed)

    def _sampling_weights(self, dataset: Dataset) -> list[float] | None:
        if not self.balanced:
            return None
        domains = [domain for _, domain in dataset.items]
        counts = {d: domains.count(d) for d in set(domains)}
        return [1.0 / counts[d] for d in domains]

    def fixed_batch(self, n: int | None = None, split: str = "val") -> dict:
        """``n`` (default ``num_fixed``) items of ``split`` taken round-robin over the domains
        (the first image of each domain in index order, then the second of each, ...), collated:
        ``{"image": N x C x H x W in [-1, 1], "domain": N int64, "path": N str}``.

        A split lists its items domain by domain, so its first items (what the other layouts
        return) would all be of the first domain, and a sample grid of them would show one
        source domain and have no references of the others. For the same reason the
        ``val_size`` cap (which keeps the first items) is not applied here. Deterministic:
        evaluation transforms, no reference pairs.
        """
        n = self.num_fixed if n is None else n
        if n < 1:
            raise ValueError(f"fixed_batch: n must be at least 1, got {n}")
        dataset = self.dataset(split, augment=False)
        while isinstance(dataset, Subset):
            dataset = dataset.dataset
        by_domain: dict[int, list[int]] = {}
        for index, (_, domain) in enumerate(dataset.items):
            by_domain.setdefault(domain, []).append(index)
        queues = [by_domain[d] for d in sorted(by_domain)]
        order = [q[k] for k in range(max(map(len, queues), default=0)) for q in queues if k < len(q)]
        return default_collate([dataset[i] for i in order[:n]])


class ShapesDataModule(TranslationDataModule):
    """The procedural shapes data set (:mod:`imtrans.data.shapes`); no files, no download.

    ``size``: image side in px. ``paired``: A and B share the layout in training too (else only
    val/test do). ``train_size``, ``val_size``, ``test_size``: number of items per split (here
    ``val_size`` is the val length, not a cap). ``crop_size`` exists so that configs can read
    ``data.crop_size``; it must equal ``size``. ``seed`` selects the data set's images.
    With ``val_from_train=N`` the val split is N items of the training split (and ``val_size`` is
    not used); training draws from the others.
    """

    #: the setting of the training images' size, named by the checks of the networks
    size_key = "data.size"

    def __init__(
        self,
        size: int = BASE_SIZE,
        *,
        paired: bool = False,
        train_size: int = 2000,
        val_size: int = 64,
        test_size: int = 64,
        crop_size: int | None = None,
        **common,
    ) -> None:
        if crop_size is not None and crop_size != size:
            raise ConfigError(
                f"data.crop_size={crop_size}: larger or smaller than the shapes images (data.size={size}); "
                f"the shapes data draws whole images, set data.size={crop_size} instead"
            )
        super().__init__(val_size=val_size, **common)
        _check_channels("input_nc", self.input_nc)
        _check_channels("output_nc", self.output_nc)
        self.size = size
        self.crop_size = size
        self.paired = paired
        self.lengths = {"train": train_size, "val": val_size, "test": test_size}

    def _limit(self, split: str, dataset: Dataset) -> Dataset:
        return dataset  # the split lengths are exact; val_size is not a cap here

    def _build(self, split: str, augment: bool) -> Dataset:
        holding_out = bool(self.val_from_train) and split in ("train", "val")
        source = "train" if holding_out else split
        dataset = ShapesDataset(
            source, self.lengths[source], self.size, self.seed, self.paired, self.input_nc, self.output_nc
        )
        if not holding_out:
            return dataset
        return Subset(dataset, self._held_out(len(dataset), split, 0, "items (data.train_size)"))
