"""The metric networks load the standard files and compute what the reference packages compute."""

from __future__ import annotations

import warnings

import pytest
import torch

from imtrans.metrics.networks import AlexLPIPS, InceptionFeatures, to_uint8


def test_alex_lpips_equals_the_lpips_package(metric_weights):
    lpips = pytest.importorskip("lpips")
    net = AlexLPIPS(metric_weights["alexnet"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False)
    backbone = torch.load(metric_weights["alexnet"], weights_only=True)
    slices = {i: s for s, (a, b) in enumerate(AlexLPIPS.STAGES, 1) for i in range(a, b)}
    for key, value in backbone.items():
        if key.startswith("features."):
            _, i, name = key.split(".")
            getattr(getattr(ref.net, f"slice{slices[int(i)]}"), i).get_parameter(name).data.copy_(value)
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(3, 3, 32, 32, generator=g) * 2 - 1, torch.rand(3, 3, 32, 32, generator=g) * 2 - 1
    with torch.no_grad():
        expected = ref(a, b).flatten()
    assert torch.allclose(net(a, b), expected, rtol=1e-5, atol=1e-7)
    assert torch.allclose(net(a, a), torch.zeros(3), atol=1e-7)
    assert net(a[:, :1], b[:, :1]).shape == (3,)  # grayscale is repeated to RGB


def test_inception_features_equal_torch_fidelity(metric_weights):
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    net = InceptionFeatures(metric_weights["inception"])
    ref = FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(metric_weights["inception"])
    )
    x = to_uint8(torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1)
    feats = net(x)
    assert feats.shape == (2, 2048) and torch.equal(feats, ref(x)[0])
    assert float(feats.std(0).mean()) > 1e-4  # the test weights give non-degenerate features
    assert all(not p.requires_grad for p in net.parameters())
    with pytest.raises(TypeError):
        net(x.float())
