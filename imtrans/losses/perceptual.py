"""MUNIT's domain-invariant perceptual loss: VGG16 relu5_3 features, instance-normalised, MSE.

The official code (NVlabs/MUNIT ``trainer.compute_vgg_loss``) compares a translation with its
*source* image (not a target of the other domain): instance normalisation removes the
per-channel feature statistics, which carry the domain-specific style, so only the content
is compared.

The network is VGG16 as the official ``Vgg16`` defines it: the 13 convs with ReLU, max
pooling after relu1_2, relu2_2 and relu3_3 only (there is **no** pooling between relu4_3 and
conv5_1, unlike torchvision's ``vgg16().features``), output relu5_3 (512 channels, 1/8 of the
input side). Weights: torchvision's ImageNet VGG16 (``vgg16-397923af.pth``), read from a
configured path or the torch hub cache and checked against the SHA-256 prefix in that name
(:mod:`imtrans.pretrained`); they expect RGB in [0, 1] normalised by the ImageNet mean/std, so
images are converted that way. (The official code used a Caffe-converted VGG16
fed BGR in [0, 255] minus the Caffe mean; its weights are not distributed any more.)
"""

from __future__ import annotations

import contextlib
import contextvars
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from imtrans.nets.blocks import instance_norm_input_grad_fix

# The errors of pretrained weights live with their hash check (imtrans.pretrained); they are
# also imported from here, where MissingWeightsError was first defined.
from imtrans.pretrained import MissingWeightsError, WeightsMismatchError, check_weights  # noqa: F401

VGG16_FILE = "vgg16-397923af.pth"
VGG16_URL = f"https://download.pytorch.org/models/{VGG16_FILE}"
# torchvision's vgg16().features indices that the official Vgg16 uses: relu1_1 ... relu4_3
# (0-22), skipping the max pool at 23, then conv5_1 ... relu5_3 (24-29).
_OFFICIAL_LAYERS = [*range(23), *range(24, 30)]
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


# Inference never calls a training loss: ``imtrans.load_model`` builds methods inside
# ``without_loss_networks()`` so a checkpoint translates on a machine without the VGG files.
_SKIP_LOSS_NETWORKS = contextvars.ContextVar("imtrans_skip_loss_networks", default=False)


@contextlib.contextmanager
def without_loss_networks():
    """Within the block, perceptual losses are built without reading their pretrained network;
    calling such a loss raises. For modules built for inference only."""
    token = _SKIP_LOSS_NETWORKS.set(True)
    try:
        yield
    finally:
        _SKIP_LOSS_NETWORKS.reset(token)


class _NotLoaded:
    """The place of a loss network skipped by :func:`without_loss_networks`."""

    def __init__(self, name: str):
        self.name = name

    def _apply(self, fn, recurse=True):
        return self

    def __call__(self, *args, **kwargs):
        raise RuntimeError(
            f"the {self.name} network of this loss was not loaded: the module was built for inference "
            "(imtrans.load_model); train with imtrans.run, which loads it"
        )

    def __iter__(self):
        self()


def _loss_network(name: str, load):
    """``load()``, or a stand-in that refuses to run inside :func:`without_loss_networks`."""
    return _NotLoaded(name) if _SKIP_LOSS_NETWORKS.get() else load()


def _vgg_features(cfg) -> nn.Sequential:
    """torchvision's VGG ``features`` for a layer list (widths, "M" for max pooling): 3x3
    convs with ReLU, same indices as torchvision, so its ``features.*`` keys load."""
    layers: list[nn.Module] = []
    in_ch = 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(in_ch, v, 3, padding=1), nn.ReLU(inplace=True)]
            in_ch = v
    return nn.Sequential(*layers)


def vgg16_features() -> nn.Sequential:
    """torchvision's ``vgg16().features`` layout (same indices, so its ``features.*`` keys
    load), built without the 124 M-parameter classifier."""
    return _vgg_features(
        (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
    )


def _load_features(
    name: str,
    file_name: str,
    url: str,
    features: nn.Sequential,
    file: Path,
    in_cache: bool,
    download: bool,
    only: int | None = None,
) -> nn.Sequential:
    """Load the ``features.*`` entries of a torchvision VGG state dict at ``file`` into ``features``.

    A missing file is fetched from ``url`` into the hub cache when ``download`` and ``in_cache``
    (no explicit path was given); otherwise, or when that fails, :class:`MissingWeightsError`
    names the file to place. The file, wherever it is and whatever its name, must be
    torchvision's ``file_name``: its SHA-256 must begin with the digits that name carries
    (:class:`WeightsMismatchError` otherwise, before training starts). ``only``: the first
    ``only`` layers are needed (keys of later layers may be absent from the file).
    """
    if not file.is_file():
        fetched = False
        if download and in_cache:
            try:
                torch.hub.load_state_dict_from_url(url, progress=False, check_hash=True)
                fetched = file.is_file()
            except Exception:  # noqa: BLE001 - any network failure means: place the file
                fetched = False
        if not fetched:
            raise MissingWeightsError(
                f"{name} weights not found: place torchvision's {file_name} at {file} "
                f"(from {url}) or set loss.vgg.path"
            )
    check_weights(file, file_name, url)
    state = torch.load(file, map_location="cpu", weights_only=True)
    wanted = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
    needed = set(features.state_dict())
    if only is not None:
        needed = {k for k in needed if int(k.split(".")[0]) < only}
    missing = needed - set(wanted)
    if missing:
        raise ValueError(
            f"{file}: not a torchvision {name} state dict (missing features.{sorted(missing)[0]})"
        )
    features.load_state_dict({k: v for k, v in wanted.items() if k in needed}, strict=only is None)
    return features


def vgg16_weights_path(path: str | Path | None = None) -> Path:
    """``path`` if given, else ``$TORCH_HOME/hub/checkpoints/vgg16-397923af.pth``."""
    if path is not None:
        return Path(path).expanduser()
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILE


def load_vgg16_relu5_3(path: str | Path | None = None, download: bool = False) -> nn.Sequential:
    """The frozen official-topology VGG16 up to relu5_3, in eval mode.

    The weights file is a torchvision VGG16 state dict (``features.*`` keys are read; the
    classifier may be absent). When it is missing: with ``download`` it is fetched from
    download.pytorch.org into the hub cache; otherwise, or when that fails, one line names
    the file to place (:class:`MissingWeightsError`).
    """
    features = _load_features(
        "VGG16", VGG16_FILE, VGG16_URL, vgg16_features(), vgg16_weights_path(path), path is None, download
    )
    net = nn.Sequential(*[features[i] for i in _OFFICIAL_LAYERS]).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


class DomainInvariantPerceptualLoss(nn.Module):
    """``loss(img, target) = mean((IN(vgg(img)) - IN(vgg(target)))^2)``.

    ``img``, ``target``: N x 3 x H x W in [-1, 1] (H, W >= 8). ``IN`` is instance
    normalisation without affine (eps 1e-5); ``vgg`` the relu5_3 features (N x 512 x H/8 x W/8).
    Gradients flow into whichever input requires them (in MUNIT only the translation does);
    the VGG weights are frozen.

    The VGG is deliberately *not* a registered submodule: 14.7 M frozen weights have no place
    in the method's checkpoints (they come from the weights file), so ``state_dict`` skips
    them; ``.to()``/``.cuda()`` still move them (``_apply`` is forwarded).
    """

    def __init__(self, path: str | Path | None = None, download: bool = False):
        super().__init__()
        self.__dict__["vgg"] = _loss_network("VGG16", lambda: load_vgg16_relu5_3(path, download))
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        self.__dict__["vgg"] = self.vgg._apply(fn)
        return self

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Instance-normalised relu5_3 features of images in [-1, 1]."""
        x = ((x + 1) / 2 - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        return instance_norm_input_grad_fix(F.instance_norm(self.vgg(x), eps=1e-5))

    def forward(self, img: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(self.features(img).float(), self.features(target).float())


# ---------------------------------------------------------------------------------------------
# pix2pixHD's perceptual loss: VGG19 relu1_1 ... relu5_1, L1, weights 1/32 ... 1
# ---------------------------------------------------------------------------------------------

VGG19_FILE = "vgg19-dcbb9e9d.pth"
VGG19_URL = f"https://download.pytorch.org/models/{VGG19_FILE}"
#: torchvision ``vgg19().features`` slices ending at relu1_1, relu2_1, relu3_1, relu4_1, relu5_1.
VGG19_SLICES = ((0, 2), (2, 7), (7, 12), (12, 21), (21, 30))
VGG19_WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)


def vgg19_features() -> nn.Sequential:
    """torchvision's ``vgg19().features`` layout (its ``features.*`` keys load), no classifier."""
    return _vgg_features((64, 64, "M", 128, 128, "M", *[256] * 4, "M", *[512] * 4, "M", *[512] * 4, "M"))


def vgg19_weights_path(path: str | Path | None = None) -> Path:
    """``path`` if given, else ``$TORCH_HOME/hub/checkpoints/vgg19-dcbb9e9d.pth``."""
    if path is not None:
        return Path(path).expanduser()
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE


def load_vgg19_relu5_1(path: str | Path | None = None, download: bool = False) -> nn.ModuleList:
    """The frozen VGG19 up to relu5_1 as 5 slices (12,944,960 weights), in eval mode.

    The file is a torchvision VGG19 state dict; only ``features.0`` ... ``features.28`` are
    needed. Missing file: fetched with ``download`` into the hub cache when the machine can,
    else one line names the file to place (:class:`MissingWeightsError`).
    """
    end = VGG19_SLICES[-1][1]
    features = _load_features(
        "VGG19",
        VGG19_FILE,
        VGG19_URL,
        vgg19_features(),
        vgg19_weights_path(path),
        path is None,
        download,
        end,
    )
    net = nn.ModuleList(nn.Sequential(*[features[i] for i in range(a, b)]) for a, b in VGG19_SLICES).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


class VGG19PerceptualLoss(nn.Module):
    """pix2pixHD's ``VGGLoss``: ``sum_k w_k * L1(vgg_k(img), vgg_k(target).detach())`` over
    relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 with ``w = (1/32, 1/16, 1/8, 1/4, 1)``.

    Images are fed as they are, N x 3 x H x W in [-1, 1], **without** ImageNet normalisation
    (as the official code). The method's loss weight multiplies the sum (lambda_feat 10). As
    for the VGG16 loss, the frozen network is not a registered submodule: it stays out of
    the method's state dict and optimizers, ``.to()`` still moves it.
    """

    def __init__(self, path: str | Path | None = None, download: bool = False, weights=VGG19_WEIGHTS):
        super().__init__()
        self.__dict__["vgg"] = _loss_network("VGG19", lambda: load_vgg19_relu5_1(path, download))
        self.weights = tuple(float(w) for w in weights)

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        self.__dict__["vgg"] = self.vgg._apply(fn)
        return self

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for block in self.vgg:
            x = block(x)
            out.append(x)
        return out

    def forward(self, img: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target_feats = self.features(target)
        total = None
        for w, f, t in zip(self.weights, self.features(img), target_feats):
            term = w * F.l1_loss(f.float(), t.float())
            total = term if total is None else total + term
        return total
