"""Parameter counts of the official architectures (../shared/REFERENCE.md), built from config."""

from __future__ import annotations

import hydra
import pytest

from imtrans.nets import NLayerDiscriminator, ResnetGenerator, UnetGenerator
from tests.conftest import count_params
from tests.helpers import compose_config


def test_cyclegan_counts_from_config():
    cfg = compose_config(["model=cyclegan", "data=shapes"])
    model = hydra.utils.instantiate(cfg.model)
    assert [count_params(m) for m in (model.G_A, model.G_B)] == [11_378_179, 11_378_179]
    assert [count_params(m) for m in (model.D_A, model.D_B)] == [2_764_737, 2_764_737]
    assert count_params(model) == 28_285_832


@pytest.mark.parametrize(("crop", "g_params"), [(256, 54_413_955), (128, 41_828_995)])
def test_pix2pix_counts_from_config(crop, g_params):
    # The U-Net depth follows the crop: unet_256 at 256 px, unet_128 at 128 px.
    cfg = compose_config(["model=pix2pix", "data=shapes_paired", f"data.size={crop}"])
    model = hydra.utils.instantiate(cfg.model)
    assert count_params(model.G) == g_params
    assert count_params(model.D) == 2_768_705
    if crop == 256:
        assert count_params(model) == 57_182_660


def test_networks_shapes_and_range():
    import torch

    x = torch.rand(2, 3, 64, 64) * 2 - 1
    g = ResnetGenerator(ngf=8, n_blocks=2)
    y = g(x)
    assert y.shape == x.shape and y.abs().max() <= 1
    u = UnetGenerator(input_nc=3, output_nc=1, num_downs=6, ngf=8)
    assert u(x).shape == (2, 1, 64, 64)
    # 70x70 PatchGAN: 30x30 patches at 256 px, 6x6 at 64 px.
    assert NLayerDiscriminator(ndf=8)(x).shape == (2, 1, 6, 6)
    with pytest.raises(ValueError, match="num_downs >= 5"):
        UnetGenerator(num_downs=4)


def test_norm_decides_bias():
    # junyanz: convs before BatchNorm are bias-free, before InstanceNorm they keep the bias.
    d_batch = NLayerDiscriminator(norm="batch")
    d_inst = NLayerDiscriminator(norm="instance")
    assert count_params(d_inst) - count_params(d_batch) == (128 + 256 + 512) - 2 * (128 + 256 + 512)
