"""Standard pretrained weight files, checked against their published SHA-256 before use.

A file found under a standard name (``weights-inception-2015-12-05-6726825d.pth``,
``alexnet-owt-7be5be79.pth``, ``vgg16-397923af.pth``, ...) is not trusted for its name: a
truncated download, another network saved under that name or random weights would otherwise
give a FID, an LPIPS or a training loss that looks right and is not. :func:`verify_weights`
hashes the file and compares:

- names that follow torch hub's convention carry the first hex digits of the file's SHA-256
  after their last ``-`` (``torch.hub.download_url_to_file(..., hash_prefix=...)`` and
  ``load_state_dict_from_url(check_hash=True)`` check the same digits); the file must start
  with those;
- files whose name carries no hash are compared with the full SHA-256 in
  :data:`PUBLISHED_SHA256` when an authoritative source gives it (only these);
- a file with no published hash at all (:data:`NO_PUBLISHED_HASH`, e.g. StarGAN v2's
  ``wing.ckpt``, clean-fid's ``inception-2015-12-05.pt``) cannot be checked: it is used, and the caller says so in one line. Nothing
  is made up for it.

A mismatch raises :class:`WeightsMismatchError`, one line naming the file, the expected and the
actual hash prefix and the file to download again; the command-line tools report it as a user
error (exit 2), since only the user can replace the file. Hashing a 100 MB file costs ~0.3 s:
digests are kept per (path, size, modification time) for the process.

Tests use random weights under the standard names. They declare them: files under the folder
named by the environment variable ``IMTRANS_STAND_IN_WEIGHTS`` are *stand-ins*, used without a
hash check, and every use is said in one line (the metrics add a notice to their record), so a
number computed from them never passes for the published metric.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path

log = logging.getLogger("imtrans")

STAND_IN_ENV = "IMTRANS_STAND_IN_WEIGHTS"

#: Full SHA-256 of standard files whose name carries no hash, from authoritative sources only.
PUBLISHED_SHA256 = {
    # LPIPS v0.1 linear heads of the AlexNet variant (richzhang/PerceptualSimilarity): the
    # wheels' RECORD on PyPI lists this digest for lpips 0.1.4's lpips/weights/v0.1/alex.pth and
    # for torchmetrics 1.9.0's torchmetrics/functional/image/lpips_models/alex.pth (same bytes).
    "alex.pth": "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
}

#: Standard files for which no hash is published anywhere we could find: why, for the warning.
NO_PUBLISHED_HASH = {
    "wing.ckpt": "StarGAN v2's download.sh fetches it from Dropbox without a checksum",
    "inception-2015-12-05.pt": "clean-fid and StyleGAN2-ADA fetch it from NVIDIA's CDN without a checksum",
}

# torch hub's convention: <name>-<hex digits>.<ext>, the digits being the SHA-256's beginning
_HUB_HASH = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$")

# (resolved path, size, mtime_ns) -> SHA-256 hex digest, for the life of the process
_DIGESTS: dict[tuple[str, int, int], str] = {}
# files already reported as used unverified (one line per file and process)
_REPORTED: set[str] = set()


class MissingWeightsError(FileNotFoundError):
    """Pretrained weights are neither at the configured path nor in the hub cache, and could not
    be downloaded. The message is one line naming the file to place."""


class WeightsMismatchError(MissingWeightsError):
    """A file under a standard weights name is not the published file (its SHA-256 differs):
    the standard file is, in effect, missing. The message is one line naming the file, the
    expected and actual hash prefixes and where to download it again."""


def expected_sha256(filename: str) -> str | None:
    """The published SHA-256 of the standard file ``filename``: the full digest of
    :data:`PUBLISHED_SHA256`, else the prefix its torch hub name carries, else None."""
    if filename in PUBLISHED_SHA256:
        return PUBLISHED_SHA256[filename]
    found = _HUB_HASH.search(filename)
    return found.group(1) if found else None


def sha256_of(path: str | os.PathLike) -> str:
    """The file's SHA-256 (hex), computed once per path, size and modification time."""
    path = Path(path).resolve()
    stat = path.stat()
    stamp = (str(path), stat.st_size, stat.st_mtime_ns)
    if stamp not in _DIGESTS:
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _DIGESTS[stamp] = digest.hexdigest()
    return _DIGESTS[stamp]


def is_stand_in(path: str | os.PathLike) -> bool:
    """Whether ``path`` lies under the folder of ``IMTRANS_STAND_IN_WEIGHTS`` (tests' random weights)."""
    folder = os.environ.get(STAND_IN_ENV, "").strip()
    if not folder:
        return False
    root = Path(folder).expanduser().resolve()
    return Path(path).expanduser().resolve().is_relative_to(root)


def verify_weights(
    path: str | os.PathLike, filename: str, url: str | None = None, remedy: str | None = None
) -> str:
    """Check ``path`` against the published SHA-256 of the standard file ``filename``.

    Returns ``"verified"``, ``"stand-in"`` (under ``IMTRANS_STAND_IN_WEIGHTS``, not hashed) or
    ``"no published hash"`` (nothing to compare with: the caller says so, see
    :func:`unverified_line`). Raises :class:`WeightsMismatchError` when the digests differ;
    its fix is ``remedy``, by default "delete it and download it again from ``url``".
    """
    if is_stand_in(path):
        return "stand-in"
    expected = expected_sha256(filename)
    if expected is None:
        return "no published hash"
    actual = sha256_of(path)
    if actual.startswith(expected):
        return "verified"
    shown = min(len(expected), 16)
    fix = remedy or f"delete it and download it again from {url or 'its published source'}"
    raise WeightsMismatchError(
        f"{path}: not the published {filename}: its SHA-256 begins {actual[:shown]}, the published "
        f"file's {expected[:shown]} (another file, or a damaged copy); {fix}"
    )


def unverified_line(path: str | os.PathLike, filename: str, status: str) -> str:
    """One line saying that ``path`` is used in place of ``filename`` without a hash check."""
    if status == "stand-in":
        return (
            f"imtrans: {path} used as a stand-in for {filename} without a hash check "
            f"({STAND_IN_ENV}): results from it are not those of the published weights"
        )
    why = NO_PUBLISHED_HASH.get(filename, "no SHA-256 of it is published")
    return f"imtrans: {path} used as {filename} without a hash check: {why}; make sure it is that file"


def check_weights(
    path: str | os.PathLike, filename: str, url: str | None = None, remedy: str | None = None
) -> str:
    """:func:`verify_weights`, and a warning (once per file and process) when the file is used
    without a hash check. For loaders that have no record of their own to note it in."""
    status = verify_weights(path, filename, url, remedy)
    if status != "verified" and str(path) not in _REPORTED:
        _REPORTED.add(str(path))
        log.warning(unverified_line(path, filename, status))
    return status
