"""``imtrans zoo``: the pretrained models the official repositories publish, fetched and imported.

    imtrans zoo                                   # the list: name, method, data, resolution, numbers, needs
    imtrans zoo show NAME                         # one entry: the model, its numbers and their sources,
                                                  # its files, its import command
    imtrans zoo get NAME [root=DIR] [out=DIR] [options] [overrides]

The entries live in ``imtrans/official/zoo.yaml`` (one per model the official repositories
publish: URLs, where the official scripts put the files, the importer options and Hydra overrides
that rebuild the model at the official test resolution) and what was reported for it: each
number with its metric, the FID code it came from (its lineage: pytorch-fid, clean-fid, ...), the
split it was scored on, which model the source scored and where it says so. FIDs of different
lineages are not comparable (the same images give CUT horse2zebra 45.51 with pytorch-fid and 43.71
with clean-fid), hence the lineage beside every number.

``get`` downloads each file of the entry to ``root/NAME/<official path>`` (``root`` default
``pretrained``; a checkout of the official repository works too: a file already at
``root/<official path>`` is used as it is), then runs
``imtrans import METHOD PATH out=DIR`` with the entry's options and overrides (``out`` default
``zoo/NAME``); further ``key=value`` arguments are the method's importer options or Hydra
overrides, applied on top. Downloads go through ``<file>.part`` and resume from it with an HTTP
Range request; the sha256 is printed and recorded in ``<file>.json``. A file placed by hand is
never downloaded again. A file with ``extract: [member, ...]`` is an archive (tar or zip) of
which those members are unpacked beside it (CUT publishes its six models in one tar); an archive
whose members are all there already (an official checkout) is not fetched.

Offline (no connection, a refused proxy, a timeout), for entries marked ``manual`` (Google
Drive: a plain HTTP GET returns a web page, not the file) and when the server refuses the file,
``get`` prints one line saying so, then the URL, where to put the file and the exact
``imtrans import`` command to run afterwards, and exits with status 2. Any other failure is one
line on stderr and status 2 as well.
"""

from __future__ import annotations

import difflib
import hashlib
import http.client
import json
import os
import shlex
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from imtrans.errors import shorten

ZOO_FILE = Path(__file__).with_name("zoo.yaml")
DEFAULT_ROOT = "pretrained"
DEFAULT_OUT = "zoo"
TIMEOUT_S = 30.0
CHUNK = 1 << 20
#: the opener every download goes through (tests replace it; nothing else touches the network)
urlopen = urllib.request.urlopen


class ZooError(Exception):
    """A one-line failure of ``imtrans zoo`` (printed, exit status 2)."""


class Unreachable(Exception):
    """The file cannot be fetched from here: offline, manual, refused by the server, or cut off.
    ``line`` is the first line printed; the instructions for fetching it by hand follow."""

    def __init__(self, line: str, refused: bool = False) -> None:
        super().__init__(line)
        self.line = line
        self.refused = refused  # the server answered with an HTTP error (the file is not there)


# ----------------------------------------------------------------------------- the entries
#: the fields of a ``reported`` item (zoo.yaml's header says what each holds): required, optional
REPORTED_FIELDS = ("value", "metric", "lineage", "split", "weights", "source", "url")
REPORTED_OPTIONAL = ("spread", "note", "score")
#: FID/KID code lineages, and the ``metrics.fid_impl`` of imtrans that follows each (None: none does)
FID_LINEAGES = {
    "pytorch-fid": "pytorch_fid",  # mseitzer/pytorch-fid: CUT, SPADE and most unpaired papers since
    "clean-fid": "clean",  # GaParmar/clean-fid, mode clean
    "torch-fidelity": "torch_fidelity",  # the TensorFlow/TTUR lineage; imtrans' default
    "stargan-v2": "stargan_v2",  # clovaai/stargan-v2 metrics/fid.py: torchvision's ImageNet Inception
    "mmagic": None,  # open-mmlab/mmagic's own FID code
}
#: which model a source scored: these very files, the paper's own model (the published file may
#: differ), a model someone else trained with the official code, or not said
WEIGHTS = ("published", "paper", "third-party", "unknown")


def load_zoo(path: Path = ZOO_FILE) -> list[dict[str, Any]]:
    """The entries of ``zoo.yaml``, in file order, their ``reported`` numbers checked."""
    data = yaml.safe_load(path.read_text())
    entries = list(data["models"])
    check_reported(entries, path)
    return entries


def check_reported(entries: list[dict[str, Any]], path: Path | str = ZOO_FILE) -> None:
    """Every entry lists what was reported for it, each number with its metric, lineage, split,
    weights and source, or says in ``reported_note`` where a number could come from: a number
    without its FID code or split cannot be compared with one measured here. A ZooError names the
    entry and the field otherwise."""
    hint = f"see the header of {Path(path).name}"
    for e in entries:
        where = f"{path}: {e.get('name', '?')}"
        items = e.get("reported")
        if not isinstance(items, list):
            raise ZooError(
                f"{where}: reported={items!r}: not a list; give [] or the reported numbers ({hint})"
            )
        note = e.get("reported_note")
        if note is not None and (not isinstance(note, str) or not note.strip()):
            raise ZooError(
                f"{where}: reported_note={note!r}: not a sentence; say where a number could come from"
            )
        if not items and note is None:
            raise ZooError(
                f"{where}: reported=[] without reported_note; say where a number could come from ({hint})"
            )
        for i, item in enumerate(items):
            at = f"{where}: reported[{i}]"
            if not isinstance(item, dict):
                raise ZooError(f"{at}={item!r}: not a mapping; give {', '.join(REPORTED_FIELDS)} ({hint})")
            missing = [k for k in REPORTED_FIELDS if item.get(k) in (None, "")]
            if missing:
                raise ZooError(
                    f"{at}: no {', '.join(missing)}; every number needs {', '.join(REPORTED_FIELDS)} ({hint})"
                )
            unknown = sorted(set(item) - set(REPORTED_FIELDS) - set(REPORTED_OPTIONAL))
            if unknown:
                fields = ", ".join(REPORTED_FIELDS + REPORTED_OPTIONAL)
                raise ZooError(f"{at}: unknown field(s) {', '.join(unknown)}; the fields are {fields}")
            for key in ("value", "spread"):
                if key in item and (isinstance(item[key], bool) or not isinstance(item[key], (int, float))):
                    raise ZooError(
                        f"{at}: {key}={item[key]!r}: not a number; write the number the source gives"
                    )
            if str(item["metric"]).upper() in ("FID", "KID") and item["lineage"] not in FID_LINEAGES:
                raise ZooError(
                    f"{at}: lineage={item['lineage']!r}: not a known {item['metric']} code; "
                    f"choose one of {', '.join(FID_LINEAGES)}"
                )
            if item["weights"] not in WEIGHTS:
                raise ZooError(f"{at}: weights={item['weights']!r}: choose one of {', '.join(WEIGHTS)}")
            if not str(item["url"]).startswith(("http://", "https://")):
                raise ZooError(f"{at}: url={item['url']!r}: not a web address; give the source's URL")


def headline(items: list[dict[str, Any]], most: int = 2) -> list[dict[str, Any]]:
    """The numbers of the list: the first of each metric and lineage, at most ``most`` (a second
    training setting scored the same way, as mmagic's identity-loss-0 rows, waits for ``show``)."""
    seen, chosen = set(), []
    for item in items:
        key = (item["metric"], item["lineage"])
        if key not in seen and len(chosen) < most:
            seen.add(key)
            chosen.append(item)
    return chosen


def compact(item: dict[str, Any]) -> str:
    """One reported number in a few words: ``FID 45.51 (pytorch-fid)``, ``LPIPS 0.4501 ±0.0007``."""
    text = f"{item['metric']} {item['value']:g}"
    if "spread" in item:
        text += f" ±{item['spread']:g}"
    if str(item["metric"]).upper() in ("FID", "KID"):
        text += f" ({item['lineage']})"
    return text


def find(name: str, entries: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The entry called ``name``; a ZooError listing close names otherwise."""
    entries = load_zoo() if entries is None else entries
    names = [e["name"] for e in entries]
    if name in names:
        return entries[names.index(name)]
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
    close += [n for n in names if name.lower() in n and n not in close][: 5 - len(close)]
    hint = f"close names: {', '.join(close)}" if close else "run `imtrans zoo` for the list"
    raise ZooError(f"unknown model {name!r}; {hint}")


@dataclass
class Plan:
    """Where one entry's files go and how they are imported."""

    entry: dict[str, Any]
    root: Path
    out: Path
    options: dict[str, str]
    overrides: list[str]

    @property
    def folder(self) -> Path:
        return self.root / self.entry["name"]

    def target(self, file: dict[str, Any]) -> Path:
        """Where ``get`` stores ``file``: ``root/NAME/<official path>``."""
        return self.folder / file["path"]

    def present(self, file: dict[str, Any]) -> Path | None:
        """The file when it is already there: in ``root/NAME/`` or, in an official checkout,
        at ``root/<official path>``."""
        for candidate in (self.target(file), self.root / file["path"]):
            if candidate.is_file() and candidate.stat().st_size > 0:
                return candidate
        return None

    def unpacked(self, file: dict[str, Any]) -> Path | None:
        """For an archive entry: the folder (``root/NAME/`` or ``root``) where all its
        ``extract`` members are already, or None."""
        members = file.get("extract") or []
        for base in (self.folder, self.root):
            if members and all((base / m).is_file() for m in members):
                return base
        return None

    def import_path(self) -> Path:
        """PATH of ``imtrans import``: under ``root/NAME/``, or under ``root`` when ``root`` is an
        official checkout holding every required file at its official path."""
        rel = self.entry["import_path"]
        required = [f for f in self.entry["files"] if not f.get("optional")]
        if required[0].get("extract"):  # the members of an archive: where they were unpacked
            return (self.unpacked(required[0]) or self.folder) / rel
        if not self.target(required[0]).is_file() and all(
            (self.root / f["path"]).is_file() for f in required
        ):
            return self.root / rel
        return self.folder / rel

    def command(self) -> str:
        """The ``imtrans import`` command line that imports the entry."""
        path = str(self.import_path()) + ("/" if self.entry["import_path"].endswith("/") else "")
        args = ["imtrans", "import", self.entry["method"], path, f"out={self.out}"]
        args += [f"{k}={v}" for k, v in self.options.items()] + self.overrides
        return " ".join(shlex.quote(a) for a in args)


def make_plan(entry: dict[str, Any], args: dict[str, str]) -> Plan:
    """The plan of ``get``/``show``: ``root=``, ``out=``, then importer options (the method's
    ``OPTIONS``) and Hydra overrides on top of the entry's."""
    args = dict(args)
    root = Path(args.pop("root", DEFAULT_ROOT)).expanduser()
    out = Path(args.pop("out", str(Path(DEFAULT_OUT) / entry["name"]))).expanduser()
    accepted = _format_options(entry["method"])
    options = {k: str(v) for k, v in (entry.get("options") or {}).items()}
    extra: list[str] = []
    for key, value in args.items():
        if key in accepted or key in options:
            options[key] = value
        else:
            extra.append(f"{key}={value}")
    from imtrans.official import merge_overrides

    return Plan(entry, root, out, options, merge_overrides(list(entry.get("overrides") or []), extra))


def _format_options(method: str) -> dict[str, str]:
    """The importer options of ``method`` (none when its format module is missing)."""
    from imtrans.official import OfficialFormatError, get_format

    try:
        return dict(get_format(method).OPTIONS)
    except OfficialFormatError:
        return {}


# ----------------------------------------------------------------------------- printing
def _needs(entry: dict[str, Any], methods: list[str]) -> str:
    parts = []
    if entry.get("manual"):
        parts.append("manual download (Google Drive)")
    else:
        n = len(entry["files"])
        parts.append(f"download {n} file{'s' if n > 1 else ''}")
    if entry["method"] not in methods:
        parts.append(f"format module {entry['method']} missing")
    return "; ".join(parts)


def table(entries: list[dict[str, Any]]) -> str:
    """The list as a fixed-width table."""
    from imtrans.official import available_methods

    methods = available_methods()
    rows = [("NAME", "METHOD", "DATA", "TEST RESOLUTION", "REPORTED", "NEEDS")]
    for e in entries:
        test = str(e["resolution"]["test"]).split(" (")[0]
        numbers = "; ".join(compact(item) for item in headline(e["reported"])) or "-"
        rows.append((e["name"], e["method"], e["data"], test, numbers, _needs(e, methods)))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:5], widths)) + "  " + r[5] for r in rows]
    lines.append("")
    lines.append(
        f"{len(entries)} models. REPORTED: the first numbers published for the model (FID with its "
        "code: numbers of different FID codes are not comparable); `imtrans zoo show NAME` for all "
        "of them with their sources, `imtrans zoo get NAME [root=DIR] [out=DIR]` to fetch and import it."
    )
    return "\n".join(lines)


#: the fields ``show`` prints, in this order: what the model is, where it comes from, what the
#: official code does with it, what was reported for it. Paths, options and overrides appear in the
#: printed files and import command; ``official_options`` and ``dev_notes`` are the maintainers'
#: record. ``reported_note`` is printed within ``reported``.
SHOWN = (
    "name",
    "method",
    "translates",
    "data",
    "repository",
    "paper",
    "resolution",
    "manual",
    "manual_reason",
    "official_download",
    "official_test",
    "reported",
    "notes",
)


def show(entry: dict[str, Any], plan: Plan) -> str:
    """What a user needs of one entry (:data:`SHOWN`), then where its files go and its import
    command."""
    view = {key: entry[key] for key in SHOWN if key in entry}
    view["repository"] = f"https://github.com/{entry['repository']}"
    note = entry.get("reported_note")
    if not entry.get("reported"):
        view["reported"] = f"none published for this model: {note}"
    elif note:  # beside the numbers, after them
        notes = view.pop("notes", None)
        view["reported_about"] = note
        if notes is not None:
            view["notes"] = notes
    text = yaml.safe_dump(view, sort_keys=False, width=4096, allow_unicode=True).rstrip()
    lines = [text, "", "files (imtrans zoo get):"]
    for f in entry["files"]:
        lines.append(f"  {f['url']}\n    -> {plan.target(f)}" + ("  (optional)" if f.get("optional") else ""))
    lines.append(f"import: {plan.command()}")
    return "\n".join(lines)


def instructions(plan: Plan, files: list[dict[str, Any]]) -> str:
    """What to do by hand: the URL, where to put the file, the import command."""
    lines = []
    for f in files:
        lines.append(f"  url:  {f['url']}")
        lines.append(f"  put:  {plan.target(f)}" + ("  (optional)" if f.get("optional") else ""))
    lines.append(f"  then: {plan.command()}")
    lines.append(
        f"        (or run `imtrans zoo get {plan.entry['name']}` again: files placed there are used)"
    )
    return "\n".join(lines)


# ----------------------------------------------------------------------------- downloading
def _network_reason(err: BaseException) -> str:
    reason = getattr(err, "reason", None) or err
    return shorten(f"{type(reason).__name__}: {reason}", 160)


def _progress(total: int | None, initial: int, name: str):
    from tqdm import tqdm

    return tqdm(
        total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=name, file=sys.stderr
    )


def download(url: str, target: Path, timeout: float = TIMEOUT_S) -> Path:
    """``url`` to ``target`` through ``target.part``, resuming a partial file with a Range request.

    Raises Unreachable when offline, refused by the server or cut off (the ``.part`` file is kept
    for the next try).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    for attempt in range(2):
        offset = part.stat().st_size if part.is_file() else 0
        request = urllib.request.Request(url, headers={"User-Agent": "imtrans-zoo"})
        if offset:
            request.add_header("Range", f"bytes={offset}-")
        try:
            response = urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as err:
            if err.code == 416 and offset and attempt == 0:
                # the partial file does not fit the server's file (changed?): start over once
                part.unlink()
                continue
            raise Unreachable(
                f"the server refused {url}: HTTP {err.code} {err.reason} (the file is not, or no longer, "
                "published there); fetch it by hand if you have it elsewhere:",
                refused=True,
            ) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as err:  # sockets, timeouts
            raise Unreachable(
                f"offline: cannot reach {urllib.request.urlparse(url).netloc} ({_network_reason(err)}); "
                "fetch the file by hand:"
            ) from None
        with response:
            status = getattr(response, "status", None) or response.getcode()
            if offset and status != 206:
                offset = 0  # the server ignored the Range header: the whole file comes again
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length is not None else None
            received = offset
            mode = "ab" if offset else "wb"
            try:
                with open(part, mode) as sink, _progress(total, offset, target.name) as bar:
                    while True:
                        block = response.read(CHUNK)
                        if not block:
                            break
                        sink.write(block)
                        received += len(block)
                        bar.update(len(block))
            except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
                raise Unreachable(
                    f"download of {url} interrupted after {received} bytes ({_network_reason(err)}); "
                    f"{part} is kept: run the same command again to resume, or fetch the file by hand:"
                ) from None
        if total is not None and received < total:
            raise Unreachable(
                f"download of {url} ended after {received} of {total} bytes; {part} is kept: run the "
                "same command again to resume, or fetch the file by hand:"
            )
        os.replace(part, target)
        return target
    raise AssertionError("unreachable")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def record(path: Path, url: str, how: str) -> str:
    """Print and record (``<file>.json``) the sha256 of ``path``; returns it."""
    digest = sha256(path)
    info = {
        "file": path.name,
        "url": url,
        "sha256": digest,
        "bytes": path.stat().st_size,
        "obtained": how,
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    path.with_name(path.name + ".json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"  sha256 {digest}  {path}")
    return digest


def unpack(archive: Path, members: list[str]) -> None:
    """Extract ``members`` (paths inside the tar or zip ``archive``) to ``archive.parent/<member>``,
    each through a temporary file. A member the archive lacks is a ZooError naming both."""
    base = archive.parent
    try:
        # tar first: a tar of .pth files (zip archives themselves) passes zipfile's test too
        if tarfile.is_tarfile(archive):
            with tarfile.open(archive) as t:
                names = {m.name.removeprefix("./"): m for m in t.getmembers() if m.isfile()}
                _unpack_from(archive, names, members, base, lambda m: t.extractfile(names[m]))
        else:
            with zipfile.ZipFile(archive) as z:
                names = {n.removeprefix("./"): n for n in z.namelist()}
                _unpack_from(archive, names, members, base, lambda m: z.open(names[m]))
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as err:
        raise ZooError(
            f"{archive}: not a readable tar or zip archive ({err}); delete it and get it again"
        ) from None


def _unpack_from(archive: Path, names: dict, members: list[str], base: Path, opener) -> None:
    for member in members:
        if member not in names:
            some = ", ".join(sorted(names)[:3]) or "nothing"
            raise ZooError(f"{archive}: no member {member!r} (it holds {len(names)} files: {some}, ...)")
        target = base / member
        if target.is_file():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        with opener(member) as source, open(tmp, "wb") as sink:
            for block in iter(lambda: source.read(CHUNK), b""):
                sink.write(block)
        os.replace(tmp, target)
        print(f"imtrans zoo: unpacked {member} from {archive.name}")


def fetch(plan: Plan, timeout: float = TIMEOUT_S) -> None:
    """Make every file of the entry present (download, or use one placed by hand); unpack the
    members of archives."""
    entry = plan.entry
    missing = [f for f in entry["files"] if plan.present(f) is None and plan.unpacked(f) is None]
    if missing and entry.get("manual"):
        reason = entry.get("manual_reason", "it cannot be fetched by a plain HTTP GET")
        raise Unreachable(f"{entry['name']}: the file must be fetched by hand ({reason}):")
    for f in entry["files"]:
        if plan.unpacked(f) is not None:
            print(f"imtrans zoo: the members of {f['path']} are there, not downloaded again")
            continue
        have = plan.present(f)
        if have is not None:
            print(f"imtrans zoo: {have} is there, not downloaded again")
            if not have.with_name(have.name + ".json").is_file():
                record(have, f["url"], "placed by hand")
            if f.get("extract"):
                unpack(have, f["extract"])
            continue
        target = plan.target(f)
        print(f"imtrans zoo: downloading {f['url']}\n          to {target}", file=sys.stderr)
        try:
            download(f["url"], target, timeout)
        except Unreachable as err:
            if f.get("optional") and err.refused:
                print(f"imtrans zoo: optional file {f['url']} is not on the server, skipped")
                continue
            raise
        record(target, f["url"], "downloaded")
        if f.get("extract"):
            unpack(target, f["extract"])


# ----------------------------------------------------------------------------- commands
def get(name: str, args: dict[str, str], timeout: float = TIMEOUT_S) -> Path:
    """Fetch and import ``name``; returns the run folder. Raises Unreachable / ZooError /
    OfficialFormatError."""
    from imtrans.official import import_official

    entry = find(name)
    plan = make_plan(entry, args)
    try:
        fetch(plan, timeout)
    except Unreachable as err:
        err.plan = plan  # type: ignore[attr-defined]
        raise
    path = plan.import_path()
    print(f"imtrans zoo: importing: {plan.command()}")
    return import_official(entry["method"], path, plan.out, options=plan.options, overrides=plan.overrides)


def _parse(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    positional = [a for a in argv if "=" not in a]
    keyed = dict(a.split("=", 1) for a in argv if "=" in a)
    return positional, keyed


USAGE = "usage: imtrans zoo [show NAME | get NAME [root=DIR] [out=DIR] [options] [overrides]]"


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``imtrans zoo`` (exit status 2 on any failure, never a traceback)."""
    from imtrans.official import OfficialFormatError

    argv = list(sys.argv[1:] if argv is None else argv)
    if (argv and argv[0] == "help") or any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return
    positional, keyed = _parse(argv)
    try:
        if not positional:
            if keyed:
                raise ZooError(f"{USAGE} (got {' '.join(argv)})")
            print(table(load_zoo()))
            return
        verb, names = positional[0], positional[1:]
        if verb not in ("show", "get", "list") or (verb != "list" and len(names) != 1):
            raise ZooError(f"{USAGE} (got {' '.join(argv)})")
        if verb == "list":
            print(table(load_zoo()))
            return
        if verb == "show":
            entry = find(names[0])
            print(show(entry, make_plan(entry, keyed)))
            return
        out = get(names[0], keyed)
        from imtrans.official.__main__ import _report  # the same summary as `imtrans import`

        print(_report(out))
    except Unreachable as err:
        plan = getattr(err, "plan", None)
        print(f"imtrans zoo: {err.line}")
        if plan is not None:
            files = [f for f in plan.entry["files"] if plan.present(f) is None] or plan.entry["files"]
            print(instructions(plan, files))
        sys.exit(2)
    except (ZooError, OfficialFormatError) as err:
        print(f"imtrans zoo: {' '.join(str(err).split())}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(
            "imtrans zoo: interrupted; a partial download is kept as <file>.part and resumed next time",
            file=sys.stderr,
        )
        sys.exit(130)
    except OSError as err:  # disk full, permissions: one line
        print(f"imtrans zoo: {type(err).__name__}: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
