"""Check a data set before training: ``python -m imtrans.data.check data=<preset> data.root=<folder>``.

Arguments are the run's Hydra overrides (``data=...``, ``data.root=...``, ``data.label_nc=...``,
``model=...``): the checker composes the same config as ``python -m imtrans.run`` and scans every
file the run would read, in every split folder present (``val`` falls back to ``test`` as in
training), decoding each file once. It reports:

- files per split and role (A/B sides, label/inst/img, domains), their image modes (RGB, L, P,
  RGBA, I;16, ...), the range of their sizes and the folder they were read from;
- **errors** (exit status 1), one line each, starting with the file: unreadable, truncated or
  corrupt files; missing or empty folders; list-file entries that do not exist; unmatched pairs
  (a file of one folder without its partner in the other: paired A/B folders, label/inst/img);
  instance maps without a label map; partners of different sizes; label ids outside
  0 .. ``label_nc``-1 (with ``data.contain_dontcare_label`` also allowed: the dontcare id
  ``label_nc`` and 255); label or instance maps that are not single-channel; float (mode F)
  photos; side-by-side AB images of odd width; images smaller than the crop; sizes the model
  cannot take after preprocessing (e.g. not divisible by 2**num_downs for a U-Net, by 4 for
  CycleGAN's ResNet generator);
- **warnings** (exit status stays 0): photos with transparency (RGBA, LA, PA: composited on white
  when read), 16-bit photos (scaled to 8 bit), grayscale photos read as RGB and the reverse.

The folders are those the data module reads, found by the same rules: the label layout's
folders (``data.label_folder`` etc.: ADE20K's ``annotations/{training,validation}/``),
``data.domains`` of a folder-per-domain tree (``data=afhq_cat2dog``: ``<root>/<split>/{cat,dog}/``
as the sides A and B; ``data=afhq``/``domains``: the given domains, or every folder of
``<root>/train``), list files or ``<split>A``/``<split>B`` folders of the unpaired layout, and
``data.direction=BtoA``, which reads the B folder as the input (with ``data.input_nc``).

``model=`` (default: the config's, ``cyclegan``) decides the size rule; the model is built from
the config to read it (see :func:`imtrans.inference.size_multiple`). Exit status: 0 when no error
was found, 1 otherwise, 2 for a wrong command line.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .datasets import bad_label_ids, label_ids_problem
from .errors import DataError
from .io import open_image
from .layouts import SPLITS, match_key, resolve_split
from .transforms import SpatialTransform

_TRANSPARENT = ("RGBA", "RGBa", "LA", "La", "PA")


@dataclass
class Group:
    """Statistics of the files of one split and role."""

    files: int = 0
    modes: Counter = field(default_factory=Counter)
    widths: list[int] = field(default_factory=list)
    heights: list[int] = field(default_factory=list)

    def sizes(self) -> str:
        if not self.widths:
            return "-"
        lo = f"{min(self.widths)}x{min(self.heights)}"
        hi = f"{max(self.widths)}x{max(self.heights)}"
        return lo if lo == hi else f"{lo} .. {hi}"


@dataclass
class Report:
    """What a scan found: statistics per (split, role), error and warning lines."""

    title: str = ""
    notes: list[str] = field(default_factory=list)
    groups: dict[tuple[str, str], Group] = field(default_factory=dict)
    #: the folder each (split, role) was read from (for list files: the folder their entries
    #: are relative to); shown relative to ``root`` in :meth:`format`.
    folders: dict[tuple[str, str], Path] = field(default_factory=dict)
    root: Path | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def error(self, path, problem: str | None = None) -> None:
        self.errors.append(str(path) if problem is None else str(DataError(path, problem)))

    def warn(self, path, problem: str) -> None:
        self.warnings.append(str(DataError(path, problem)))

    @property
    def ok(self) -> bool:
        return not self.errors

    def folder(self, split: str, role: str) -> str:
        """The folder of (split, role), relative to ``root`` where it lies below it."""
        folder = self.folders.get((split, role))
        if folder is None:
            return "-"
        if self.root is not None and folder.is_relative_to(self.root):
            return f"{folder.relative_to(self.root).as_posix()}/"
        return f"{folder}/"

    def format(self) -> str:
        lines = [self.title, *(f"  {n}" for n in self.notes)]
        if self.groups:
            lines.append(f"  {'split':<8}{'role':<10}{'files':>7}  {'modes':<22}{'sizes (WxH)':<22}folder")
            for (split, role), g in self.groups.items():
                modes = ", ".join(f"{m} {n}" for m, n in sorted(g.modes.items()))
                lines.append(
                    f"  {split:<8}{role:<10}{g.files:>7}  {modes:<22}{g.sizes():<22}{self.folder(split, role)}"
                )
        for e in self.errors:
            lines.append(f"ERROR   {e}")
        for w in self.warnings:
            lines.append(f"WARNING {w}")
        verdict = "OK" if self.ok else "FAILED"
        lines.append(
            f"imtrans data check: {verdict}: {len(self.errors)} error(s), {len(self.warnings)} warning(s)"
        )
        return "\n".join(lines)


class Scanner:
    """Scans the folders of one data module; fills a :class:`Report`.

    ``multiple``: what the model needs H and W after preprocessing to be divisible by (1: no rule).
    """

    def __init__(self, dm, multiple: int = 1, report: Report | None = None) -> None:
        self.dm = dm
        self.multiple = multiple
        self.report = report or Report()
        self.transform = SpatialTransform(dm.preprocess, dm.load_size, dm.crop_size, False, augment=False)

    # ------------------------------------------------------------------ files
    def list_folder(
        self, folder: Path, split: str, role: str, required: bool = True, expected: str | None = None
    ) -> list[Path] | None:
        """Image files of a folder (recursively); a missing or empty folder is an error when required.

        ``expected``: the layout sentence of the error (default: the data module's).
        """
        from .io import list_images

        if not folder.is_dir():
            if required:
                self.report.folders[(split, role)] = folder
                self.report.error(folder, "folder not found; " + (expected or self.dm.expected_layout))
            return None
        self.report.folders[(split, role)] = folder
        try:
            return list_images(folder)
        except DataError as err:
            self.report.error(err)
            return None

    def read(
        self,
        path: Path,
        split: str,
        role: str,
        kind: str,
        nc: int = 3,
        label_nc: int | None = None,
        dontcare: bool = False,
    ):
        """Decode one file, record its mode and size, check it for ``kind`` (photo, ab, label, inst).

        ``label_nc``, ``dontcare``: the valid ids of a label map (see
        :func:`imtrans.data.datasets.bad_label_ids`). Returns its (width, height), or None when
        it cannot be read.
        """
        group = self.report.groups.setdefault((split, role), Group())
        group.files += 1
        try:
            img = open_image(path, decode=True)
        except DataError as err:
            self.report.error(err)
            return None
        mode, size = img.mode, img.size
        group.modes[mode] += 1
        group.widths.append(size[0])
        group.heights.append(size[1])
        if kind in ("label", "inst"):
            if mode not in ("L", "P", "1", "I") and not mode.startswith("I;16"):
                what = "label" if kind == "label" else "instance"
                self.report.error(
                    path, f"{what} map has mode {mode}; expected single-channel integer ids (L, P, I;16 or I)"
                )
                return size
            if kind == "label" and label_nc is not None:
                bad = bad_label_ids(np.asarray(img), label_nc, dontcare)
                if bad and bad[0] < 0:
                    self.report.error(path, label_ids_problem(bad, label_nc, dontcare))
                    bad = [v for v in bad if v >= 0]
                if bad:
                    self.report.error(path, label_ids_problem(bad, label_nc, dontcare, every=True))
            return size
        if mode == "F":
            self.report.error(path, "32-bit float image (mode F) is not supported; save it as 8 or 16 bit")
        elif mode in _TRANSPARENT or "transparency" in img.info:
            self.report.warn(path, f"mode {mode} has transparency; it is composited on white when read")
        elif mode.startswith("I"):
            self.report.warn(path, f"16-bit image (mode {mode}); scaled to 8 bit when read")
        elif nc == 3 and mode in ("L", "1"):
            self.report.warn(path, f"grayscale image (mode {mode}) read as RGB (data.*_nc is 3)")
        elif nc == 1 and mode not in ("L", "1"):
            self.report.warn(path, f"mode {mode} image read as grayscale (data.*_nc is 1)")
        return size

    def check_geometry(self, path: Path, size: tuple[int, int] | None) -> None:
        """Preprocessing of an item's first image: large enough for the crop, and a size the model takes."""
        if size is None:
            return
        try:
            geometry = self.transform.sample(size, path)
        except DataError as err:
            self.report.error(err)
            return
        if self.dm.crop_size and self.dm.preprocess != "none":
            return  # every item becomes crop x crop; checked once in check_crop
        w, h = geometry.resize or size
        if self.multiple > 1 and (w % self.multiple or h % self.multiple):
            how = (
                "as read"
                if geometry.resize is None
                else f"after {self.dm.preprocess} (load_size {self.dm.load_size})"
            )
            self.report.error(path, f"is {w}x{h} {how}; the model needs sides divisible by {self.multiple}")

    def check_crop(self) -> None:
        crop = self.dm.crop_size
        if crop and self.dm.preprocess != "none" and self.multiple > 1 and crop % self.multiple:
            self.report.error(
                "data.crop_size", f"{crop} is not divisible by {self.multiple}, which the model needs"
            )

    def match(
        self, primary: Sequence[Path], others: Sequence[Path], primary_folder: Path, other_folder: Path
    ) -> list[tuple[Path, Path]]:
        """Pairs by :func:`match_key`; every file without its partner is an error line."""
        keyed_p = self._keyed(primary)
        keyed_o = self._keyed(others)
        for key, path in keyed_p.items():
            if key not in keyed_o:
                self.report.error(path, f"no file with the matching name {key!r} in {other_folder}")
        for key, path in keyed_o.items():
            if key not in keyed_p:
                self.report.error(path, f"no file with the matching name {key!r} in {primary_folder}")
        return [(keyed_p[k], keyed_o[k]) for k in keyed_p if k in keyed_o]

    def _keyed(self, paths: Sequence[Path]) -> dict[str, Path]:
        keyed: dict[str, Path] = {}
        for path in paths:
            key = match_key(path)
            if key in keyed:
                self.report.error(
                    path, f"has the same name as {keyed[key]}; names must be unique to match files"
                )
            else:
                keyed[key] = path
        return keyed

    def same_size(self, path: Path, size, partner: Path, partner_size) -> None:
        if size is not None and partner_size is not None and size != partner_size:
            self.report.error(
                path,
                f"size {size[0]}x{size[1]} differs from {partner} ({partner_size[0]}x{partner_size[1]}); "
                "the images and maps of one item must be pixel-aligned",
            )

    # ------------------------------------------------------------------ layouts
    @staticmethod
    def folder_splits(exists) -> list[str]:
        """The distinct split folder names a run reads (train, then val/test with their fallbacks)."""
        names = []
        for split in SPLITS:
            name = resolve_split(split, exists)
            if name not in names and (split == "train" or exists(name)):
                names.append(name)
        return names

    def scan(self) -> Report:
        from .datamodules import DomainsDataModule, LabelDataModule, PairedDataModule, UnpairedDataModule

        try:
            root = self.dm._root()
        except DataError as err:
            self.report.error(err)
            return self.report
        self.report.root = root
        self.check_crop()
        if isinstance(self.dm, UnpairedDataModule):
            self.scan_unpaired(root)
        elif isinstance(self.dm, PairedDataModule):
            self.scan_paired(root)
        elif isinstance(self.dm, LabelDataModule):
            self.scan_labels(root)
        elif isinstance(self.dm, DomainsDataModule):
            self.scan_domains(root)
        else:
            self.report.notes.append(f"{type(self.dm).__name__}: no files to check")
        return self.report

    def input_side(self, side: str) -> bool:
        """Whether the files of side ``side`` (A or B, as on disk) are the model's input: A, or B
        with ``data.direction=BtoA`` (the data module swaps the sides)."""
        return (side == "A") != (getattr(self.dm, "direction", "AtoB") == "BtoA")

    def side_nc(self, side: str) -> int:
        """The channels side ``side`` is read with (``input_nc`` for the input side)."""
        return self.dm.input_nc if self.input_side(side) else self.dm.output_nc

    def scan_unpaired(self, root: Path) -> None:
        from .layouts import _use_lists

        if getattr(self.dm, "domain_folders", None) is not None:
            self.scan_domain_pair(root, self.dm.domain_folders)
            return
        exists = lambda s: (root / f"{s}A").is_dir() or (root / f"list_{s}A.txt").is_file()  # noqa: E731
        for name in self.folder_splits(exists):
            lists = _use_lists(self.dm.use_lists, root, name)
            for side in "AB":
                folder = root / f"{name}{side}"
                if lists:
                    self.report.folders[(name, side)] = folder
                    paths = self.read_list(root / f"list_{name}{side}.txt", folder)
                else:
                    paths = self.list_folder(folder, name, side)
                for path in paths or []:
                    self.check_geometry(path, self.read(path, name, side, "photo", self.side_nc(side)))

    def scan_domain_pair(self, root: Path, domains: Sequence[str]) -> None:
        """Two domain folders of a folder-per-domain tree read as sides A and B
        (:func:`imtrans.data.layouts.find_domain_pair`); the roles are the domain names."""
        from .layouts import DOMAINS_EXPECTED

        sides = dict(zip("AB", domains))
        inputs = [d for side, d in sides.items() if self.input_side(side)]
        self.report.notes.append(
            f"data.domains: {', '.join(f'{d} (side {side})' for side, d in sides.items())}, read from "
            f"<root>/<split>/<domain>/; input: {inputs[0]}"
        )
        for name in self.folder_splits(lambda s: (root / s).is_dir()):
            for side, domain in sides.items():
                paths = self.list_folder(root / name / domain, name, domain, expected=DOMAINS_EXPECTED)
                for path in paths or []:
                    self.check_geometry(path, self.read(path, name, domain, "photo", self.side_nc(side)))

    def read_list(self, list_file: Path, base: Path) -> list[Path]:
        """Paths of a list file; each missing entry is an error line (naming the list file's line)."""
        if not list_file.is_file():
            self.report.error(list_file, "list file not found (data.use_lists)")
            return []
        paths = []
        for number, line in enumerate(list_file.read_text(errors="replace").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                paths += read_list_file_line(list_file, base, line, number)
            except DataError as err:
                self.report.error(err)
        if not paths:
            self.report.error(list_file, "list file names no files")
        return paths

    def scan_paired(self, root: Path) -> None:
        from .layouts import paired_layout

        try:
            layout = paired_layout(root, self.dm.layout)
        except DataError as err:
            self.report.error(err)
            return
        if layout == "ab":
            for name in self.folder_splits(lambda s: (root / s).is_dir()):
                for path in self.list_folder(root / name, name, "AB") or []:
                    size = self.read(path, name, "AB", "ab")
                    if size is not None and size[0] % 2:
                        self.report.error(
                            path,
                            f"side-by-side AB image has odd width {size[0]}; expected two halves of equal width",
                        )
                        continue
                    self.check_geometry(path, None if size is None else (size[0] // 2, size[1]))
            return
        for name in self.folder_splits(lambda s: (root / f"{s}A").is_dir()):
            fa, fb = root / f"{name}A", root / f"{name}B"
            pa, pb = self.list_folder(fa, name, "A"), self.list_folder(fb, name, "B")
            sizes = {}
            for paths, side in ((pa, "A"), (pb, "B")):
                for path in paths or []:
                    sizes[path] = self.read(path, name, side, "photo", self.side_nc(side))
            if pa and pb:
                for a, b in self.match(pa, pb, fa, fb):
                    self.same_size(b, sizes[b], a, sizes[a])
                    self.check_geometry(a, sizes[a])

    def scan_labels(self, root: Path) -> None:
        dm = self.dm
        folders = dm.folders
        if not folders.is_default:
            self.report.notes.append(f"folders: {dm.expected_layout.removeprefix('expected ')}")
        if dm.contain_dontcare_label:
            self.report.notes.append(
                f"label ids: 0..{dm.label_nc - 1}, and the dontcare id {dm.label_nc} (or 255 in the file)"
            )
        for name in self.folder_splits(folders.present(root)):
            label_folder = folders.folder(root, "label", name)
            labels = self.list_folder(label_folder, name, "label") or []
            sizes = {
                p: self.read(
                    p, name, "label", "label", label_nc=dm.label_nc, dontcare=dm.contain_dontcare_label
                )
                for p in labels
            }
            partners = []
            inst_folder = folders.folder(root, "inst", name)
            if dm.use_instance or inst_folder.is_dir():
                insts = self.list_folder(inst_folder, name, "inst", required=dm.use_instance) or []
                for p in insts:
                    sizes[p] = self.read(p, name, "inst", "inst")
                if insts:
                    if dm.use_instance:
                        partners += self.match(labels, insts, label_folder, inst_folder)
                    else:  # only orphans matter when the run does not read them
                        keyed = self._keyed(labels)
                        for p in insts:
                            if match_key(p) not in keyed:
                                self.report.error(p, f"instance map without a label map in {label_folder}")
            image_folder = folders.folder(root, "img", name)
            if name == "train" or image_folder.is_dir():
                images = self.list_folder(image_folder, name, "img") or []
                for p in images:
                    sizes[p] = self.read(p, name, "img", "photo", dm.output_nc)
                if images:
                    partners += self.match(labels, images, label_folder, image_folder)
            for label, partner in partners:
                self.same_size(partner, sizes[partner], label, sizes[label])
            for label in labels:
                self.check_geometry(label, sizes[label])

    def scan_domains(self, root: Path) -> None:
        given = getattr(self.dm, "_domains", None) is not None  # before .domains fills it in
        try:
            domains = self.dm.domains  # the data module's own: data.domains, or <root>/train's folders
        except DataError as err:
            self.report.error(err)
            return
        self.report.notes.append(
            f"domains: {', '.join(domains)} ({'data.domains' if given else 'every folder of <root>/train'})"
        )
        for name in self.folder_splits(lambda s: (root / s).is_dir()):
            for domain in domains:
                for path in self.list_folder(root / name / domain, name, domain) or []:
                    self.check_geometry(path, self.read(path, name, domain, "photo", self.dm.input_nc))


def read_list_file_line(list_file: Path, base: Path, line: str, number: int) -> list[Path]:
    """One entry of a list file, checked as :func:`imtrans.data.io.read_list_file` does."""
    import os

    path = Path(os.path.normpath(base / line.strip()))
    if not path.is_file():
        raise DataError(path, f"file listed in {list_file} (line {number}) not found")
    return [path]


# ---------------------------------------------------------------------- entry
def compose(overrides: Sequence[str]):
    """The run config for ``overrides``, as ``python -m imtrans.run`` composes it."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    import imtrans  # noqa: F401  (registers the resolvers)

    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="imtrans.conf", version_base="1.3"):
        cfg = hydra_compose(config_name="config", overrides=list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    return cfg


def model_multiple(cfg) -> tuple[int, str]:
    """(size multiple, description) of the configured model; (1, reason) when it cannot be built."""
    import hydra

    from imtrans.inference import size_multiple

    name = cfg.hydra.runtime.choices.get("model", "?") if "hydra" in cfg else "?"
    try:
        model = hydra.utils.instantiate(cfg.model)
    except Exception as err:  # a resolver refusing the crop size, a missing option, ...
        reason = " ".join(str(err).splitlines()[:1])
        return 1, f"model={name}: sizes not checked (the model cannot be built from this config: {reason})"
    multiple = size_multiple(model)
    return (
        multiple,
        f"model={name} ({type(model).__name__}): sides must be divisible by {multiple} after preprocessing",
    )


def check(overrides: Sequence[str]) -> Report:
    """Compose the config for ``overrides``, scan the data set, return the report."""
    import hydra

    cfg = compose(overrides)
    choice = cfg.hydra.runtime.choices.get("data", "?")
    dm = hydra.utils.instantiate(cfg.data)
    root = getattr(dm, "root", None)
    report = Report(title=f"imtrans data check: data={choice} ({type(dm).__name__}) root={root}")
    if not hasattr(dm, "preprocess"):
        report.notes.append("procedural data set: no files to read")
        return report
    multiple, note = model_multiple(cfg)
    crop = dm.crop_size if dm.preprocess != "none" else None
    eval_load = getattr(dm, "eval_load_size", None)
    eval_note = "" if eval_load is None else f" (val/test: {eval_load})"
    report.notes.append(f"preprocess={dm.preprocess} load_size={dm.load_size}{eval_note} crop_size={crop}")
    report.notes.append(note)
    return Scanner(dm, multiple, report).scan()


def run(argv: Sequence[str] | None = None) -> int:
    """The command line: print the report, return the exit status (0 ok, 1 errors, 2 usage)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help", "help") for a in argv):
        print(__doc__)
        return 0
    try:
        report = check(argv)
    except Exception as err:  # Hydra's override errors, a bad data option
        print(f"imtrans data check: {type(err).__name__}: {' '.join(str(err).splitlines())}", file=sys.stderr)
        return 2
    print(report.format())
    return 0 if report.ok else 1


def main() -> None:
    """``python -m imtrans.data.check`` and ``imtrans check``: exits with :func:`run`'s status."""
    sys.exit(run())


if __name__ == "__main__":
    main()
