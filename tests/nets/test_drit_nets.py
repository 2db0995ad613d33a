"""DRIT / DRIT++ networks: exact official parameter counts, shapes, init, content D sizes."""

from __future__ import annotations

import hydra
import pytest
import torch
from torch import nn

from imtrans.nets.drit import (
    AttrEncoder,
    AttrEncoderConcat,
    ContentDis,
    ContentEncoder,
    GeneratorConcat,
    GeneratorMis,
    MultiScaleDis,
    drit_init,
)
from tests.helpers import compose_config


def count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_official_network_counts():
    assert count(ContentEncoder()) == 9_018_112
    assert count(AttrEncoderConcat()) == 2_688_160
    assert count(GeneratorConcat()) == 9_564_710
    assert count(MultiScaleDis()) == 8_271_171
    assert count(ContentDis()) == 10_683_649
    assert count(AttrEncoder()) == 5_529_872
    assert count(GeneratorMis()) == 17_146_374


@pytest.mark.parametrize(
    ("concat", "total", "gen_side"), [(True, 65_039_315, 21_270_982), (False, 75_462_691, 31_694_358)]
)
def test_model_totals_from_config(concat, total, gen_side):
    cfg = compose_config(["model=drit", "data=cat2dog", f"model.concat={str(concat).lower()}"])
    model = hydra.utils.instantiate(cfg.model)
    assert count(model) == total
    assert sum(count(m) for m in model.generator_modules().values()) == gen_side
    for name in ("disA", "disA2", "disB", "disB2"):
        assert count(getattr(model, name)) == 8_271_171
    assert count(model.disContent) == 10_683_649


def test_no_norm_leaky_slope_and_conv_only_init():
    d = MultiScaleDis()
    assert not any(isinstance(m, (nn.InstanceNorm2d, nn.BatchNorm2d)) for m in d.modules())
    assert {m.negative_slope for m in d.modules() if isinstance(m, nn.LeakyReLU)} == {0.01}
    assert not any(isinstance(m, nn.InstanceNorm2d) for m in ContentDis().modules())
    torch.manual_seed(0)
    enc = drit_init(AttrEncoderConcat(dim=16))
    conv = enc.branch_a.conv[1]
    assert abs(conv.weight.std().item() - 0.02) < 0.005
    fresh = nn.Linear(64, 8)  # Linear keeps PyTorch's default init (std ~ 1/sqrt(3 * 64))
    assert abs(enc.branch_a.fc.weight.std().item() - fresh.weight.std().item()) < 0.02
    assert conv.bias.abs().max() > 0.01  # biases not zeroed


@pytest.mark.parametrize("crop", [128, 216, 256])
def test_content_dis_sizes(crop):
    """216 px runs the exact official form; 128 and 256 px work through ``fit=auto``, and the
    parameter count does not depend on the size."""
    torch.manual_seed(0)
    dis = ContentDis(dim=32)
    content = torch.randn(2, 32, crop // 4, crop // 4)
    assert dis(content).shape == (2,)
    exact = ContentDis(dim=32, fit="exact")
    exact.load_state_dict(dis.state_dict())
    if crop == 216:
        assert torch.equal(exact(content), dis(content))
    else:
        with pytest.raises(ValueError, match="53-60"):
            exact(content)
    assert count(ContentDis(fit="resize")) == 10_683_649


def test_content_dis_resizes_under_bf16_autocast():
    """bf16-mixed on the CPU: the antialiased resize (256 px crops give 64 x 64 content maps)
    runs in float32, where the kernel exists, and the output follows the autocast dtype."""
    torch.manual_seed(0)
    dis = ContentDis(dim=32)
    content = torch.randn(1, 32, 64, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = dis(content.bfloat16())
    assert out.shape == (1,) and torch.isfinite(out.float()).all()


def test_content_noise_only_in_training():
    enc = ContentEncoder(dim=4).eval()
    x = torch.randn(1, 3, 16, 16)
    assert torch.equal(enc.forward_a(x), enc.forward_a(x))
    enc.train()
    assert not torch.equal(enc.forward_a(x), enc.forward_a(x))
