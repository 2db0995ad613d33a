"""Where the standard metric networks' weights come from, and what to say when they are absent.

Each file is looked for, in order, in ``metrics.weights_dir``, in torch's hub cache
(``$TORCH_HOME/hub/checkpoints``, the place torch-fidelity, pytorch-fid, torchvision and lpips
use; clean-fid keeps its file in /tmp, which is not read) and, where the machine reaches the
host, downloaded into the hub cache. Absent and unreachable,
:func:`resolve_weights` returns None and :func:`missing_notice` gives the one line that names
the file to place and where. Nothing is ever replaced by a stand-in network.

A file found (or downloaded) is checked against the published SHA-256 whose first digits its
name carries (:func:`imtrans.pretrained.verify_weights`): another file under the name raises
:class:`~imtrans.pretrained.WeightsMismatchError`, one line naming it and where to download it
again, and no score is computed from it. The LPIPS heads shipped in torchmetrics are checked
against their full published SHA-256 (:data:`LPIPS_ALEX_HEADS`). clean-fid's TorchScript file
has no published SHA-256: it is used unchecked, and the evaluation says so in one line.

Set ``IMTRANS_METRICS_DOWNLOAD=0`` (or ``metrics.download=false``) to never try a download,
e.g. in tests or on a cluster whose compute nodes must not reach the internet.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch

from imtrans.pretrained import expected_sha256, verify_weights

log = logging.getLogger("imtrans")


@dataclass(frozen=True)
class WeightsFile:
    """A weights file of a standard metric network."""

    key: str  # short name used in configs and records
    filename: str  # the file name torch's hub cache uses
    url: str
    used_for: str  # the metrics that need it, for the notice


INCEPTION = WeightsFile(
    key="inception",
    filename="weights-inception-2015-12-05-6726825d.pth",
    # torch_fidelity.feature_extractor_inceptionv3.URL_INCEPTION_V3 (torch-fidelity 0.3 and 0.4)
    url="https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
    "weights-inception-2015-12-05-6726825d.pth",
    used_for="FID and KID",
)
ALEXNET = WeightsFile(
    key="alexnet",
    filename="alexnet-owt-7be5be79.pth",
    # torchvision.models.AlexNet_Weights.IMAGENET1K_V1.url: the backbone of LPIPS (alex)
    url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    used_for="LPIPS",
)
TORCHVISION_INCEPTION = WeightsFile(
    key="torchvision_inception",
    filename="inception_v3_google-0cc3c7bd.pth",
    # torchvision.models.Inception_V3_Weights.IMAGENET1K_V1.url: what StarGAN v2's FID loads
    # through ``inception_v3(pretrained=True)`` (its metrics/fid.py)
    url="https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth",
    used_for="FID and KID (torchvision ImageNet Inception-v3)",
)
PYTORCH_FID_INCEPTION = WeightsFile(
    key="pytorch_fid_inception",
    filename="pt_inception-2015-12-05-6726825d.pth",
    # pytorch_fid.inception.FID_WEIGHTS_URL (pytorch-fid 0.3): the TF FID Inception ported to
    # PyTorch, cached by torch hub under this name (the keys of torch-fidelity's file)
    url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
    "pt_inception-2015-12-05-6726825d.pth",
    used_for="FID and KID (pytorch-fid's Inception)",
)
CLEAN_FID_INCEPTION = WeightsFile(
    key="clean_fid_inception",
    filename="inception-2015-12-05.pt",
    # cleanfid.downloads_helper.inception_url (clean-fid 0.1.35): StyleGAN2-ADA's TorchScript
    # export of the TF FID Inception, code as well as weights and without a published SHA-256.
    # clean-fid keeps it in /tmp, not read here (anyone can write there): imtrans looks for it
    # where it looks for the others.
    url="https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt",
    used_for="FID and KID (clean-fid's TorchScript Inception)",
)
WEIGHTS = {
    w.key: w for w in (INCEPTION, ALEXNET, TORCHVISION_INCEPTION, PYTORCH_FID_INCEPTION, CLEAN_FID_INCEPTION)
}
#: The LPIPS v0.1 linear heads of AlexNet, read from the installed torchmetrics (never downloaded;
#: its SHA-256 is in ``imtrans.pretrained.PUBLISHED_SHA256``).
LPIPS_ALEX_HEADS = WeightsFile(
    key="lpips_alex_heads",
    filename="alex.pth",
    url="https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/alex.pth",
    used_for="LPIPS",
)

# Hosts found unreachable in this process: each is tried once, not once per evaluation.
_UNREACHABLE: set[str] = set()


def hub_checkpoints_dir() -> Path:
    """``torch.hub.get_dir()/checkpoints`` (``$TORCH_HOME/hub/checkpoints`` by default)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def download_allowed(download: bool | None = True) -> bool:
    """``download`` unless the environment variable ``IMTRANS_METRICS_DOWNLOAD`` is 0/false/no."""
    env = os.environ.get("IMTRANS_METRICS_DOWNLOAD", "").strip().lower()
    if env in ("0", "false", "no", "off"):
        return False
    return bool(download)


def _reachable(url: str, timeout: float = 5.0) -> bool:
    host = urlparse(url).hostname or ""
    if host in _UNREACHABLE:
        return False
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        _UNREACHABLE.add(host)
        return False


def _download(weights: WeightsFile, target: Path) -> Path | None:
    if not _reachable(weights.url):
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        print(f"imtrans: downloading {weights.url} to {target}", file=sys.stderr, flush=True)
        # torch checks the hash prefix before the file takes its name
        torch.hub.download_url_to_file(
            weights.url, str(target), hash_prefix=expected_sha256(weights.filename), progress=False
        )
    except Exception as err:  # network errors of every kind: report and go on without
        log.warning("imtrans: download of %s failed: %s", weights.url, err)
        _UNREACHABLE.add(urlparse(weights.url).hostname or "")
        return None
    return target


def candidate_paths(weights: WeightsFile, weights_dir: str | os.PathLike | None = None) -> list[Path]:
    """Where ``weights`` is looked for, in order."""
    paths = []
    if weights_dir:
        paths.append(Path(weights_dir).expanduser() / weights.filename)
    paths.append(hub_checkpoints_dir() / weights.filename)
    return paths


def resolve_weights(
    weights: WeightsFile | str,
    weights_dir: str | os.PathLike | None = None,
    download: bool = True,
) -> Path | None:
    """The local path of ``weights``, downloading it into the hub cache when allowed; None if absent.

    The first file found is checked against its published SHA-256 (:func:`verify_weights`):
    :class:`~imtrans.pretrained.WeightsMismatchError` when it is another file; a later candidate never stands in
    for it (the wrong file would stay, and be found by the next tool)."""
    weights = WEIGHTS[weights] if isinstance(weights, str) else weights
    for path in candidate_paths(weights, weights_dir):
        if path.is_file():
            verify(weights, path)
            return path
    if download_allowed(download):
        path = _download(weights, hub_checkpoints_dir() / weights.filename)
        if path is not None:
            verify(weights, path)
        return path
    return None


def verify(weights: WeightsFile | str, path: str | os.PathLike) -> str:
    """:func:`imtrans.pretrained.verify_weights` for a standard metric file: ``"verified"`` or
    ``"stand-in"``; :class:`~imtrans.pretrained.WeightsMismatchError` naming where to download it
    again."""
    weights = WEIGHTS[weights] if isinstance(weights, str) else weights
    remedy = None  # "delete it and download it again from <url>"
    if weights is LPIPS_ALEX_HEADS:  # a file of an installed package, not a download
        remedy = (
            "reinstall the package it comes from (pip install --force-reinstall --no-deps torchmetrics) "
            f"or replace it with {weights.url}"
        )
    return verify_weights(path, weights.filename, weights.url, remedy)


def missing_notice(weights: WeightsFile | str, weights_dir: str | os.PathLike | None = None) -> str:
    """One line: which metrics are skipped, which file to place, where, and where it comes from."""
    weights = WEIGHTS[weights] if isinstance(weights, str) else weights
    home = str(Path.home())
    folders = [
        "~" + str(p.parent)[len(home) :] if str(p.parent).startswith(home + "/") else str(p.parent)
        for p in candidate_paths(weights, weights_dir)
    ]
    if weights_dir:  # the first folder is the one the config names
        folders[0] = f"metrics.weights_dir={folders[0]}"
    else:
        folders.append("metrics.weights_dir")
    where = " or ".join(folders)
    return f"imtrans: {weights.used_for} skipped: no {weights.filename} in {where} (from {weights.url})"
