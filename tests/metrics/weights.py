"""Random-weight stand-ins of the standard metric weight files, for tests only.

They carry the real file names and layouts, so the real loading code runs offline; the values
are random (seeded), so only plumbing and agreement with reference implementations can be
tested, never the published numbers. Their SHA-256 is not the published one: they pass only as
declared stand-ins (``IMTRANS_STAND_IN_WEIGHTS``, set in tests/conftest.py to the session's
temporary folder), and every score computed from them carries a notice saying so.
"""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import torch
from torch import nn

from imtrans.metrics.weights import (
    ALEXNET,
    CLEAN_FID_INCEPTION,
    INCEPTION,
    PYTORCH_FID_INCEPTION,
    TORCHVISION_INCEPTION,
)


def write_inception(path: Path, seed: int = 0) -> Path:
    """torch-fidelity's Inception state dict with He-initialised convolutions (non-degenerate features)."""
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    with (
        mock.patch.object(fe, "load_state_dict_from_url", lambda *a, **k: None),
        mock.patch.object(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, *a, **k: None),
    ):
        net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.Conv2d):
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=gen) * (2 / fan_in) ** 0.5)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)
    return path


def write_alexnet(path: Path, seed: int = 0, classifier: bool = False) -> Path:
    """torchvision's AlexNet state dict, randomly initialised.

    By default only the ``features.*`` entries (10 MB): LPIPS reads nothing else, and the
    classifier (58 M parameters, 234 MB) would only cost every test session time and disk.
    """
    from torchvision.models import alexnet

    torch.manual_seed(seed)
    net = alexnet() if classifier else alexnet().features
    state = net.state_dict() if classifier else {f"features.{k}": v for k, v in net.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def write_torchvision_inception(path: Path, seed: int = 0) -> Path:
    """torchvision's full Inception-v3 state dict (AuxLogits and fc included, as the real file),
    He-initialised convolutions and random BatchNorm parameters and statistics (so that a loader
    which dropped any of them would change the features)."""
    from torchvision.models import inception_v3

    net = inception_v3(weights=None, aux_logits=True, init_weights=False)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2 / m.weight[0].numel()) ** 0.5)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)
    return path


def write_pytorch_fid_inception(path: Path, seed: int = 0) -> Path:
    """pytorch-fid's state dict: torch-fidelity's layout (the published files hold the same tensor
    names and shapes), from :func:`write_inception`, with random BatchNorm parameters and
    statistics as well (so that a loader which dropped or misplaced one would change the features)."""
    write_inception(path, seed)
    state = torch.load(path, weights_only=True)
    gen = torch.Generator().manual_seed(seed + 1)
    for key, value in state.items():
        if key.endswith((".running_mean", ".bn.bias")):
            value.copy_(torch.randn(value.shape, generator=gen) * 0.1)
        elif key.endswith((".running_var", ".bn.weight")):
            value.copy_(torch.rand(value.shape, generator=gen) + 0.5)
    torch.save(state, path)
    return path


class CleanFidStandIn(nn.Module):
    """A small random network laid out as clean-fid's TorchScript ``inception-2015-12-05.pt``:
    ``layers`` maps a (x - 128) / 128 batch at 299 x 299 to N x 2048 x 1 x 1 (clean-fid calls
    only that), ``forward`` takes ``return_features`` as the real file's does."""

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(3, 16, 5, stride=4), nn.ReLU(), nn.Conv2d(16, 64, 3, stride=2), nn.ReLU(),
            nn.Conv2d(64, 256, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
            nn.Conv2d(256, 2048, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        return self.layers((x - 128) / 128).reshape(-1, 2048)


def write_clean_fid_inception(path: Path, seed: int = 0) -> Path:
    """:class:`CleanFidStandIn` as TorchScript (torch.jit.script is deprecated but still makes
    the kind of file clean-fid loads)."""
    import warnings

    net = CleanFidStandIn().eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d):  # He: features that differ between images
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2 / m.weight[0].numel()) ** 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.script(net)
    path.parent.mkdir(parents=True, exist_ok=True)
    scripted.save(str(path))
    return path


def write_all(directory: Path) -> dict[str, Path]:
    """The metric files under ``directory`` (e.g. ``$TORCH_HOME/hub/checkpoints``), written once."""
    out = {}
    writers = (
        (INCEPTION, write_inception),
        (ALEXNET, write_alexnet),
        (TORCHVISION_INCEPTION, write_torchvision_inception),
        (PYTORCH_FID_INCEPTION, write_pytorch_fid_inception),
        (CLEAN_FID_INCEPTION, write_clean_fid_inception),
    )
    for weights, writer in writers:
        path = directory / weights.filename
        if not path.is_file():
            tmp = path.with_name(path.name + ".tmp")
            writer(tmp)
            tmp.replace(path)
        out[weights.key] = path
    return out
