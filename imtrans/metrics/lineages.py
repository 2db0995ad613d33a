"""FID lineages: the code a published FID (and KID) was computed with, from the file to the number.

The same images give different FIDs under different codes (CUT horse2zebra: 45.51 with
pytorch-fid, 43.71 with clean-fid), by more than the gaps papers report between methods. They
differ in the network's weights and blocks, and in how an image file becomes the network's input
(resize filter, where it happens, normalisation). The protocol field ``fid_impl``
(``metrics.fid_impl=...``) picks one; :data:`FID_IMPLS` holds them:

==================  ========================================  ==========================================
``fid_impl``        network (weights file)                    uint8 RGB image -> network input
==================  ========================================  ==========================================
``torch_fidelity``  torch-fidelity 0.4 ``inception-v3-compat``  TF1-compatible bilinear to 299, inside
                    (``weights-inception-...-6726825d.pth``)  the network
``pytorch_fid``     pytorch-fid 0.3 ``InceptionV3``, the TF   ``/ 255`` in float, torch bilinear to 299
                    FID Inception (``pt_inception-...-        (``align_corners=False``, no antialias),
                    6726825d.pth``)                           ``2 x - 1``
``clean``           clean-fid 0.1.35 ``mode="clean"``:        PIL bicubic per channel on float32 (mode
                    StyleGAN2-ADA's TorchScript TF Inception  F) to 299, clipped to [0, 255], not
                    (``inception-2015-12-05.pt``)             re-quantised; ``(x - 128) / 128``
``stargan_v2``      torchvision's ImageNet Inception-v3       PIL bilinear on uint8 to 299, ``/ 255``,
                    (``inception_v3_google-0cc3c7bd.pth``)    ImageNet mean and std (StarGAN v2's fid.py)
==================  ========================================  ==========================================

Every network takes uint8 images: what decoding a PNG or JPEG file gives (PIL, ``convert("RGB")``,
which all four codes use). So a folder of files (``imtrans evaluate fake=DIR real=DIR``) enters
each network as the package reads it, and gives the package's FID (tests/metrics/test_lineages.py).
In memory (the training callback, ``imtrans evaluate ckpt=``) the generator's float outputs are
rounded to uint8 exactly as writing a PNG rounds them (:func:`~imtrans.metrics.networks.to_uint8`,
the same as ``imtrans translate`` writes), then take the lineage's own path: the numbers are those
the package gives on the PNGs ``imtrans translate`` would write. Where they cannot be:

- the official test scripts of CUT and pytorch-CycleGAN-and-pix2pix save PNGs through
  ``util.tensor2im``, which truncates (``((x + 1) / 2 * 255).astype(uint8)``) where imtrans rounds:
  their files are up to one grey level darker than imtrans's, whichever lineage reads them;
- a script that saved JPEG (lossy) gives other pixels than any in-memory path;
- the protocol's ``image_size`` resize happens before the rounding, as a translate at that size
  would write the files; the reference images are the data set's (its test transform) unless the
  protocol reads them from their files (``image_source: files``);
- KID: pytorch-fid has none, and StarGAN v2's code none either: KID is torch-fidelity's estimator
  on the lineage's features. clean-fid's ``compute_kid`` is the same estimator, but draws its
  subsets from numpy's global random state, unseeded: imtrans draws them as torch-fidelity does
  (``RandomState(kid_seed)``), so the KIDs are equal when every subset holds all images (no more
  images a side than the subset size, as many on each side), otherwise within the subset noise;
- the FID formula is the same in every code (float64 means and ddof-1 covariances,
  ``|mu1 - mu2|^2 + tr(s1 + s2 - 2 sqrt(s1 s2))``); pytorch-fid and clean-fid take the matrix
  square root with ``scipy.linalg.sqrtm``, imtrans takes its trace exactly
  (:func:`~imtrans.metrics.core.fid_from_features`): they agree to about 1e-6 relative;
- on CUDA GPUs with TF32 (Ampere and later) the packages convolve in TF32, cuDNN's default, which
  moves features by ~1e-3 relative; imtrans convolves in full float32, as everyone does on a CPU.

The weight files are checked by SHA-256 (:mod:`imtrans.pretrained`): torch-fidelity's and
pytorch-fid's names carry the same prefix ``6726825d`` (torch-fidelity's file holds pytorch-fid's
tensor names and shapes, and appears to be the same file re-hosted); no SHA-256 of clean-fid's
TorchScript file is published, so it is used unchecked and a notice says so.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.inception import InceptionA, InceptionC, InceptionE

from imtrans.metrics.networks import (
    INCEPTION_STAGES,
    FrozenNetwork,
    InceptionFeatures,
    TorchvisionInceptionFeatures,
    full_float32,
    inception_pool_features,
    rgb,
)
from imtrans.metrics.weights import (
    CLEAN_FID_INCEPTION,
    INCEPTION,
    PYTORCH_FID_INCEPTION,
    TORCHVISION_INCEPTION,
    WeightsFile,
    verify,
)
from imtrans.pretrained import NO_PUBLISHED_HASH, expected_sha256


# ---------------------------------------------------------------------- pytorch-fid
class _TFPoolBranch:
    """For torchvision's InceptionA / C / E blocks: the pooling branch as TensorFlow's graph has it.

    torchvision's blocks average over the zero padding (``count_include_pad=True``); the TF
    Inception that FID is defined with leaves the padding out, and its last block max-pools
    instead. That is all that pytorch-fid's ``FIDInceptionA/C/E_1/E_2`` change. The other branches
    are torchvision's own; its pooling branch is computed and replaced (one 1x1 convolution per
    block, under 1 % of the network).
    """

    max_pool = False

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        branches = super()._forward(x)  # the pooling branch comes last in each block
        if self.max_pool:
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        else:
            pooled = F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)
        branches[-1] = self.branch_pool(pooled)
        return branches


class _TFInceptionA(_TFPoolBranch, InceptionA):
    pass


class _TFInceptionC(_TFPoolBranch, InceptionC):
    pass


class _TFInceptionE(_TFPoolBranch, InceptionE):
    pass


class _TFInceptionEMaxPool(_TFPoolBranch, InceptionE):
    max_pool = True


class PytorchFidInception(FrozenNetwork):
    """Pool3 features (N x 2048, float32) of uint8 RGB images N x 3 x H x W, as pytorch-fid 0.3
    computes them (``InceptionV3([3])``, its defaults ``resize_input`` and ``normalize_input``).

    The image is scaled to [0, 1] in float (``ToTensor`` of the decoded file), resized to
    299 x 299 by ``F.interpolate(mode="bilinear", align_corners=False)`` (no antialias, also when
    shrinking), mapped to [-1, 1] (``2 x - 1``), and run through torchvision's Inception-v3 trunk
    with the TF pooling branches (:class:`_TFPoolBranch`) and the final average pool.

    Args:
        weights_path: ``pt_inception-2015-12-05-6726825d.pth``, the whole network's state dict
            (1008-way ``fc`` included, as pytorch-fid loads it: strictly).
    """

    num_features = 2048
    input_size = 299
    #: the blocks whose pooling branch differs from torchvision's, with their constructor arguments
    TF_BLOCKS = {
        "Mixed_5b": (_TFInceptionA, (192, 32)),
        "Mixed_5c": (_TFInceptionA, (256, 64)),
        "Mixed_5d": (_TFInceptionA, (288, 64)),
        "Mixed_6b": (_TFInceptionC, (768, 128)),
        "Mixed_6c": (_TFInceptionC, (768, 160)),
        "Mixed_6d": (_TFInceptionC, (768, 160)),
        "Mixed_6e": (_TFInceptionC, (768, 192)),
        "Mixed_7b": (_TFInceptionE, (1280,)),
        "Mixed_7c": (_TFInceptionEMaxPool, (2048,)),
    }

    def __init__(self, weights_path: str | os.PathLike):
        super().__init__()
        from torchvision.models import inception_v3

        verify(PYTORCH_FID_INCEPTION, weights_path)
        net = inception_v3(weights=None, num_classes=1008, aux_logits=False, init_weights=False)
        for name, (block, args) in self.TF_BLOCKS.items():
            setattr(net, name, block(*args))
        net.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
        self.trunk = nn.ModuleDict({n: getattr(net, n) for stage, _ in INCEPTION_STAGES for n in stage})
        self.freeze()

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        device = next(self.trunk.parameters()).device
        x = rgb(self.uint8(images)).to(device).float() / 255
        size = (self.input_size, self.input_size)
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return inception_pool_features(self.trunk, 2 * x - 1)


# ---------------------------------------------------------------------- clean-fid
def pil_float_resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 N x C x H x W -> float32 N x C x size x size in [0, 255]: clean-fid's ``clean`` resize.

    Each channel of each image becomes a float32 PIL image (mode ``F``), is resized by PIL's
    BICUBIC filter (antialiased when shrinking) and clipped to [0, 255], and is not rounded back
    to 8 bits (``cleanfid.resize.make_resizer("PIL", False, "bicubic", (size, size))``).
    """
    if images.dtype != torch.uint8:
        raise TypeError("pil_float_resize takes uint8 images")
    from PIL import Image

    host = images.detach().cpu().numpy()
    out = np.empty((*host.shape[:2], size, size), dtype=np.float32)
    for i, image in enumerate(host):
        for c, plane in enumerate(image):
            resized = Image.fromarray(plane.astype(np.float32)).resize((size, size), Image.BICUBIC)
            out[i, c] = np.asarray(resized).clip(0, 255)
    return torch.from_numpy(out)


class CleanFidInception(FrozenNetwork):
    """Pool3 features (N x 2048, float32) of uint8 RGB images N x 3 x H x W, as clean-fid 0.1.35
    computes them in ``mode="clean"``.

    Each image is resized by :func:`pil_float_resize` to 299 x 299, normalised to
    ``(x - 128) / 128`` and run through the ``layers`` of the TorchScript file (StyleGAN2-ADA's
    export of the TF FID Inception, whose own TF-style resize ``clean`` mode bypasses), as
    ``cleanfid.inception_torchscript.InceptionV3W`` does.

    Args:
        weights_path: ``inception-2015-12-05.pt``. A TorchScript file holds code as well as
            weights, and no SHA-256 of it is published: take it from its published URL only.
    """

    num_features = 2048
    input_size = 299

    def __init__(self, weights_path: str | os.PathLike):
        super().__init__()
        verify(CLEAN_FID_INCEPTION, weights_path)
        with warnings.catch_warnings():  # torch.jit.load is deprecated; the file is TorchScript
            warnings.simplefilter("ignore", FutureWarning)
            self.layers = torch.jit.load(str(weights_path), map_location="cpu").layers
        self.freeze()

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        device = next(self.layers.parameters()).device
        x = pil_float_resize(rgb(self.uint8(images)), self.input_size).to(device)
        with full_float32(device):
            return self.layers((x - 128) / 128).reshape(len(x), self.num_features)


# ---------------------------------------------------------------------- the table
@dataclass(frozen=True)
class Lineage:
    """One FID lineage: its network class (taking the weights file's path), the weights file, the
    network's name in records older than ``fid_impl`` (their ``fid_features``), and what the record
    says of it."""

    name: str
    weights: WeightsFile
    network: type[nn.Module]
    features: str
    record: dict[str, Any] = field(default_factory=dict)


FID_IMPLS: dict[str, Lineage] = {
    lineage.name: lineage
    for lineage in (
        Lineage(
            name="torch_fidelity",
            weights=INCEPTION,
            network=InceptionFeatures,
            features="torch_fidelity_inception",
            record={
                "package": "torch-fidelity 0.4 (calculate_metrics(input1=DIR, input2=DIR, fid=True, "
                "kid=True))",
                "network": "inception-v3-compat (torch-fidelity FeatureExtractorInceptionV3)",
                "features": "pool3, 2048-d",
                "image_loading": "PIL, convert('RGB'), uint8",
                "input_resize": "299x299, TF1-compatible bilinear (torch-fidelity), inside the network",
                "kid": "torch-fidelity's",
            },
        ),
        Lineage(
            name="pytorch_fid",
            weights=PYTORCH_FID_INCEPTION,
            network=PytorchFidInception,
            features="pytorch_fid_inception",
            record={
                "package": "pytorch-fid 0.3.0 (python -m pytorch_fid DIR1 DIR2)",
                "network": "pytorch-fid InceptionV3: torchvision Inception-v3 with the TF pooling branches "
                "(FIDInceptionA/C/E: average pools without the padding, a max pool in Mixed_7c)",
                "features": "final average pool, 2048-d",
                "image_loading": "PIL, convert('RGB'), ToTensor: uint8 / 255 in float",
                "input_resize": "299x299, F.interpolate bilinear, align_corners=False, no antialias, "
                "in float",
                "input_normalisation": "2 x - 1",
                "kid": "none in pytorch-fid: torch-fidelity's estimator on these features",
            },
        ),
        Lineage(
            name="clean",
            weights=CLEAN_FID_INCEPTION,
            network=CleanFidInception,
            features="clean_fid_inception",
            record={
                "package": "clean-fid 0.1.35 (fid.compute_fid(DIR1, DIR2, mode='clean'), fid.compute_kid)",
                "network": "StyleGAN2-ADA's TorchScript TF Inception (its layers; its own resize bypassed)",
                "features": "pool3, 2048-d",
                "image_loading": "PIL, convert('RGB'), uint8",
                "input_resize": "299x299, PIL BICUBIC per channel on float32 (mode F), clipped to [0, 255], "
                "not re-quantised",
                "input_normalisation": "(x - 128) / 128",
                "kid": "clean-fid's estimator with torch-fidelity's seeded subsets (clean-fid's are "
                "unseeded): equal when every subset holds all images",
            },
        ),
        Lineage(
            name="stargan_v2",
            weights=TORCHVISION_INCEPTION,
            network=TorchvisionInceptionFeatures,
            features="torchvision_inception_v3",
            record={
                "package": "StarGAN v2's metrics/fid.py (calculate_fid_given_paths)",
                "network": "torchvision inception_v3, ImageNet weights (IMAGENET1K_V1), as StarGAN v2's "
                "metrics/fid.py",
                "features": "adaptive average pool after Mixed_7c, 2048-d (transform_input not applied)",
                "image_loading": "PIL, convert('RGB'), uint8",
                "input_resize": "299x299, PIL BILINEAR on the uint8 image",
                "input_normalisation": "x / 255, then ImageNet mean (0.485, 0.456, 0.406) and std "
                "(0.229, 0.224, 0.225)",
                "kid": "none in StarGAN v2's code: torch-fidelity's estimator on these features",
            },
        ),
    )
}

#: The names of the feature networks in records written before ``fid_impl`` (``fid_features``,
#: also accepted as a protocol override) -> the lineage.
LEGACY_FID_FEATURES = {lineage.features: lineage.name for lineage in FID_IMPLS.values()}


def lineage_record(name: str) -> dict[str, Any]:
    """What the protocol record says of lineage ``name``: the code it reproduces, the network,
    its weights file and how that file is checked, and the image path."""
    lineage = FID_IMPLS[name]
    filename = lineage.weights.filename
    expected = expected_sha256(filename)
    if expected is not None:
        check = f"checked against the SHA-256 prefix its name carries ({expected})"
    else:
        why = NO_PUBLISHED_HASH.get(filename, "no SHA-256 of it is published")
        check = f"none published ({why}): used unchecked, with a notice"
    return {"impl": name, **lineage.record, "weights": filename, "weights_url": lineage.weights.url,
            "weights_sha256": check}  # fmt: skip


def fid_impl_of(record: Mapping[str, Any]) -> str | None:
    """The lineage of a protocol record (``metrics_protocol`` of metrics.json, ``protocol`` of
    evaluate's JSON), also of one written before ``fid_impl`` existed (``fid_features``)."""
    if record.get("fid_impl"):
        return str(record["fid_impl"])
    return LEGACY_FID_FEATURES.get(str(record.get("fid_features")))
