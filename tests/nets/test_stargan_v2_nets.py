"""StarGAN v2 networks: the official parameter counts of both presets (built at 256 px, no
forward), the w_hpf structure, the high-pass path, per-domain outputs, the FAN and its loading."""

from __future__ import annotations

import hydra
import pytest
import torch

from imtrans.losses.perceptual import MissingWeightsError
from imtrans.nets.stargan_v2 import (
    FAN,
    StarGANv2Discriminator,
    StarGANv2Generator,
    StarGANv2MappingNetwork,
    StarGANv2StyleEncoder,
    heatmap_masks,
    load_fan,
)
from tests.helpers import compose_config

COUNTS = {  # REFERENCE_NEW_METHODS.md §3.3, the official print_network at 256 px
    "stargan_v2_afhq": (33_892_995, 3_259_072, 20_949_760, 20_852_803),
    "stargan_v2_celeba_hq": (43_467_395, 2_438_272, 20_916_928, 20_852_290),
}


def n_params(m):
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("preset", sorted(COUNTS))
def test_parameter_counts_of_the_presets(preset):
    cfg = compose_config([f"experiment={preset}", "model.fan=null", "trainer=cpu"])
    assert cfg.model.img_size == 256
    with pytest.warns(UserWarning, match="not the official") if "celeba" in preset else _nothing():
        model = hydra.utils.instantiate(cfg.model)
    nets = (model.generator, model.mapping_network, model.style_encoder, model.discriminator)
    assert tuple(n_params(m) for m in nets) == COUNTS[preset]


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_fan_size_and_eval_mode():
    fan = FAN()
    assert n_params(fan) == 6_333_603
    assert sum(b.numel() for n, b in fan.named_buffers() if "coords" not in n) == 15_031  # BN statistics
    fan.train()
    assert not any(m.training for m in fan.modules())  # its BatchNorm never trains
    assert not any("coords" in k for k in fan.state_dict())


def test_w_hpf_adds_a_level_and_removes_the_decoder_shortcut():
    g0, g1 = StarGANv2Generator(32, 8, 8, 0, dim_in=4), StarGANv2Generator(32, 8, 8, 1, dim_in=4)
    assert (len(g0.encode), len(g1.encode)) == (3, 4)  # 1 (2) down-sampling levels + 2 bottleneck
    assert all(b.skip for b in g0.decode) and not any(b.skip for b in g1.decode)
    assert g0.hpf is None and torch.equal(g1.hpf.filter, torch.tensor([[-1.0] * 3, [-1, 8, -1], [-1.0] * 3]))
    x, s = torch.rand(2, 3, 32, 32) * 2 - 1, torch.randn(2, 8)
    masks = (torch.rand(2, 1, 256, 256), torch.rand(2, 1, 256, 256))
    with torch.no_grad():
        assert torch.equal(g0(x, s, masks), g0(x, s))  # AFHQ: masks do nothing
        assert not torch.allclose(g1(x, s, masks), g1(x, s))  # the high-pass path at 32 px
        # the decoder block without shortcut returns its residual branch alone
        block, h = g1.decode[-1], torch.randn(2, 8, 16, 16)
        torch.testing.assert_close(block(h, s), block._residual(h, s))


def test_adain_and_resblk_formulas():
    g = StarGANv2Generator(32, 8, 8, 0, dim_in=4)
    adain, x, s = g.decode[0].norm1, torch.randn(2, 8, 4, 4), torch.randn(2, 8)
    gamma, beta = adain.fc(s).chunk(2, 1)
    normed = (x - x.mean((2, 3), keepdim=True)) / torch.sqrt(
        x.var((2, 3), unbiased=False, keepdim=True) + 1e-5
    )
    torch.testing.assert_close(adain(x, s), (1 + gamma[..., None, None]) * normed + beta[..., None, None])
    blk, h = g.encode[0], torch.randn(2, 4, 32, 32)
    torch.testing.assert_close(blk(h), (blk._shortcut(h) + blk._residual(h)) / 2**0.5)


def test_per_domain_outputs():
    torch.manual_seed(0)
    mapping, enc = StarGANv2MappingNetwork(16, 8, 3, 16), StarGANv2StyleEncoder(32, 8, 3, 8, dim_in=4)
    disc = StarGANv2Discriminator(32, 3, 8, dim_in=4)
    z, x = torch.randn(3, 16), torch.rand(3, 3, 32, 32)
    y = torch.tensor([2, 0, 1])
    s = mapping(z, y)
    for i in range(3):
        torch.testing.assert_close(s[i], mapping.unshared[int(y[i])](mapping.shared(z[i : i + 1]))[0])
    assert enc(x, y).shape == (3, 8) and disc(x, y).shape == (3,)
    torch.testing.assert_close(disc(x, y), disc.main(x).flatten(1)[torch.arange(3), y])
    with pytest.raises(ValueError, match="outside 0..2"):
        disc(x, torch.tensor([0, 1, 3]))


def test_heatmap_masks_range():
    a, b = heatmap_masks(torch.rand(2, 98, 256, 256))
    assert a.shape == b.shape == (2, 1, 256, 256)
    assert a.min() >= 0 and a.max() <= 1 and b.min() >= 0 and b.max() <= 1


def test_load_fan_local_file_or_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(MissingWeightsError) as info:
        load_fan()
    message = str(info.value)
    assert "\n" not in message and str(tmp_path / "torch" / "hub" / "checkpoints" / "wing.ckpt") in message
    torch.manual_seed(0)
    ref = FAN()
    path = tmp_path / "wing.ckpt"
    torch.save({"state_dict": ref.state_dict(), "epoch": 1}, path)
    fan = load_fan(str(path))
    assert not fan.training and not any(p.requires_grad for p in fan.parameters())
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    for m_ref, m in zip(ref.masks(x), fan.masks(x)):
        assert torch.equal(m_ref, m)
    torch.save({"state_dict": {"conv1.conv.weight": torch.zeros(1)}}, path)
    with pytest.raises(ValueError, match="not a FAN"):
        load_fan(str(path))
