"""Download a named data set into ``<root>/<name>/``, laid out as its ``data=<name>`` preset reads it.

Usage: ``python -m imtrans.data.download NAME [--root DIR]`` with DIR the config's
``paths.data_dir`` (default ``data``). An archive already at ``<root>/<archive name>`` (placed
by hand, e.g. on a machine without internet) is unpacked instead of downloaded. Where the
network cannot be reached, or the data set has no single archive to fetch (Cityscapes needs a
login, COCO-Stuff a conversion step), the command prints the URL or the steps, where to put
the files and the expected layout, and exits with status 1.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from .sources import DATASETS, Source

TIMEOUT_S = 20.0


def _fetch(url: str, archive: Path, timeout: float) -> None:
    """Stream ``url`` to ``archive`` through a ``.part`` file, so no half file is left behind."""
    partial = archive.with_name(archive.name + ".part")
    print(f"downloading {url}\n         to {archive}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(partial, "wb") as out:
            shutil.copyfileobj(response, out, length=1 << 20)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.rename(archive)


def _unpack(archive: Path, into: Path) -> None:
    """Extract a .zip or .tar.gz, refusing members that would land outside ``into``."""
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            names = zf.namelist()
            _check_members(names, into, archive)
            zf.extractall(into)
    else:
        with tarfile.open(archive) as tf:
            _check_members(tf.getnames(), into, archive)
            # The "data" filter (Python >= 3.10.12) also refuses links and device files.
            options = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tf.extractall(into, **options)


def _check_members(names: list[str], into: Path, archive: Path) -> None:
    base = into.resolve()
    for name in names:
        if not (base / name).resolve().is_relative_to(base):
            raise RuntimeError(f"{archive}: member {name!r} would be written outside {into}")


def _layout_folder(unpacked: Path) -> Path:
    """The data set folder inside an unpacked archive: its only folder, or the top itself."""
    entries = [p for p in unpacked.iterdir() if not p.name.startswith(("__MACOSX", "."))]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return unpacked


def _manual_instructions(name: str, source: Source, target: Path, reason: str) -> None:
    print(f"{name}: {reason}", file=sys.stderr)
    if source.howto:
        print(source.howto, file=sys.stderr)
    if source.url is not None:
        print(f"  URL:        {source.url}", file=sys.stderr)
        print(f"  put it at:  {target.parent / source.archive}  and run this command again,", file=sys.stderr)
        print("              or unpack it yourself so that you have:", file=sys.stderr)
    else:
        print(f"  expected layout under {target}:", file=sys.stderr)
    for line in source.tree.splitlines():
        print(f"    {target}/{line}", file=sys.stderr)


def download(name: str, root: Path, timeout: float = TIMEOUT_S) -> int:
    """Fetch and unpack data set ``name`` into ``root/name``; returns the exit status."""
    source = DATASETS[name]
    target = root / name
    if target.is_dir() and any(target.iterdir()):
        print(f"{name}: already present in {target}")
        return 0
    if source.url is None:
        _manual_instructions(name, source, target, f"cannot be downloaded automatically ({source.manual})")
        return 1
    root.mkdir(parents=True, exist_ok=True)
    archive = root / source.archive
    if not archive.is_file():
        try:
            _fetch(source.url, archive, timeout)
        except (urllib.error.URLError, OSError) as err:  # URLError, timeouts, refused connections
            _manual_instructions(name, source, target, f"download failed ({err})")
            return 1
    unpacked = root / f".{name}.unpacking"
    shutil.rmtree(unpacked, ignore_errors=True)
    try:
        _unpack(archive, unpacked)
        _layout_folder(unpacked).rename(target)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as err:
        print(f"{archive}: cannot unpack ({err}); delete it and run this command again", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(unpacked, ignore_errors=True)
    print(f"{name}: ready in {target} (use data={name}); the archive {archive} can be deleted")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m imtrans.data.download", description=__doc__.split("\n")[0]
    )
    parser.add_argument("name", choices=sorted(DATASETS), help="data set (also the name of its data preset)")
    parser.add_argument(
        "--root", type=Path, default=Path("data"), help="folder receiving <root>/<name>/ (default: data)"
    )
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S, help="network timeout in seconds")
    args = parser.parse_args(argv)
    return download(args.name, args.root, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
