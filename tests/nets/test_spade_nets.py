"""SPADE networks (imtrans/nets/spade.py): the official parameter counts of the three published
configurations (REFERENCE_SPADE.md section 11, built on the meta device: no memory, no init),
the official state-dict layout, output sizes and the semantic input."""

from __future__ import annotations

import pytest
import torch

from imtrans.errors import ConfigError
from imtrans.nets.spade import (
    SPADE,
    SPADEEncoder,
    SPADEGenerator,
    SPADEMultiscaleDiscriminator,
    latent_size,
    semantic_map,
    semantic_nc,
)
from tests.conftest import count_params

# (label_nc, dontcare, no_instance, num_upsampling_layers, crop_size, aspect_ratio),
# G as published, G with use_vae, D (2 scales), E
PUBLISHED = {
    "cityscapes": ((35, False, False, "more", 512, 2.0), 93_048_003, 101_136_579, 5_601_410, 10_463_424),
    "ade20k": ((150, True, True, "normal", 256, 1.0), 96_492_483, 111_942_595, 5_836_930, 10_463_424),
    "coco": ((182, True, False, "normal", 256, 1.0), 97_480_899, 112_626_883, 5_904_514, 10_463_424),
}


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_published_parameter_counts(name):
    (label_nc, dontcare, no_instance, up, crop, aspect), g, g_vae, d, e = PUBLISHED[name]
    snc = semantic_nc(label_nc, dontcare, no_instance)
    with torch.device("meta"):
        nets = {
            "G": SPADEGenerator(snc, 64, up, crop, aspect),
            "G_vae": SPADEGenerator(snc, 64, up, crop, aspect, use_vae=True),
            "D": SPADEMultiscaleDiscriminator(snc + 3),
            "E": SPADEEncoder(64, crop),
        }
    assert {k: count_params(v) for k, v in nets.items()} == {"G": g, "G_vae": g_vae, "D": d, "E": e}
    # the official state-dict sizes: G 234 tensors (with SN u/v and BN statistics), D 26, E 22
    assert [len(nets[k].state_dict()) for k in ("G", "D", "E")] == [234, 26, 22]
    assert nets["G"].output_size == ((256, 512) if name == "cityscapes" else (256, 256))


def test_official_layout_and_spectral_norm_placement():
    g = SPADEGenerator(5, ngf=2, num_upsampling_layers="most", crop_size=256, nhidden=4)
    keys = g.state_dict().keys()
    # spectral norm on the block convs only, conv_s without bias, up_4 only for 'most'
    assert {"up_0.conv_s.weight_orig", "up_0.conv_s.weight_u", "up_4.conv_0.weight_v"} <= keys
    assert "up_0.conv_s.bias" not in keys and "head_0.conv_s.weight_orig" not in keys
    assert {"fc.weight", "conv_img.weight", "head_0.norm_0.mlp_gamma.weight"} <= keys
    assert not any(
        k.startswith(("fc.weight_", "conv_img.weight_")) or "mlp_shared.0.weight_" in k for k in keys
    )
    assert g.conv_img.in_channels == 1  # ngf / 2 after up_4
    d = SPADEMultiscaleDiscriminator(8, ndf=2).state_dict().keys()
    assert {
        "discriminator_1.model0.0.bias",
        "discriminator_1.model3.0.0.weight_orig",
        "discriminator_1.model4.0.bias",
    } <= d
    assert "discriminator_0.model1.0.0.bias" not in d  # the norm cancels the bias


def test_output_sizes_range_and_vae_latent():
    seg = semantic_map(torch.randint(0, 3, (2, 16, 24)), 3, torch.randint(0, 2, (2, 16, 24)))
    g = SPADEGenerator(
        4, ngf=1, num_upsampling_layers="more", crop_size=128, aspect_ratio=2.0, nhidden=4
    ).eval()
    out = g(seg)  # the output size comes from crop_size / aspect_ratio, not from the input
    assert out.shape == (2, 3, 64, 128) and out.abs().max() <= 1
    assert latent_size(512, 2.0, "more") == (4, 8) and latent_size(256, 1.0, "normal") == (8, 8)
    assert latent_size(256, 4.0, "normal") == (2, 8)
    vae = SPADEGenerator(4, ngf=1, crop_size=256, aspect_ratio=4.0, use_vae=True, nhidden=4).eval()
    assert vae.fc.out_features == 16 * 2 * 8
    assert vae(seg, torch.randn(2, 256)).shape == (2, 3, 64, 256)
    assert vae(seg).shape == (2, 3, 64, 256)  # z drawn from N(0, I) on the input's device
    mu, logvar = SPADEEncoder(ngf=1).eval()(torch.rand(2, 3, 40, 60) * 2 - 1)  # any size: resized to 256
    assert mu.shape == logvar.shape == (2, 256)
    with pytest.raises(ConfigError, match=r"crop_size=128: the official encoder .* needs crop_size >= 256"):
        SPADEEncoder(ngf=1, crop_size=128)
    with pytest.raises(ConfigError, match="crop_size=16: .* the latent map is 0 x 0"):
        SPADEGenerator(4, crop_size=16)


def test_spade_norm_modulates_with_one_plus_gamma():
    torch.manual_seed(0)
    norm = SPADE(4, 3, nhidden=5).eval()
    for conv in (norm.mlp_gamma, norm.mlp_beta):
        torch.nn.init.zeros_(conv.weight)
    torch.nn.init.constant_(norm.mlp_gamma.bias, 1.0)  # gamma = 1: scale 2
    torch.nn.init.constant_(norm.mlp_beta.bias, 0.5)
    x = torch.randn(2, 4, 6, 6)
    expected = norm.param_free_norm(x) * 2 + 0.5
    assert torch.allclose(norm(x, torch.rand(2, 3, 12, 12)), expected)


def test_semantic_map_one_hot_edges_and_range():
    label = torch.tensor([[[0, 1], [2, 2]]])
    inst = torch.tensor([[[5, 5], [5, 7]]])
    sem = semantic_map(label, 3, inst)
    assert sem.shape == (1, 4, 2, 2)
    assert sem[0, :3].argmax(0).tolist() == label[0].tolist() and sem[0, :3].sum(0).eq(1).all()
    assert sem[0, 3].tolist() == [[0, 1], [1, 1]]  # 4-neighbours of another instance, both sides
    assert torch.equal(semantic_map(label[:, None].float(), 3), sem[:, :3])  # the loader's N x 1 floats
    with pytest.raises(ConfigError, match=r"label_nc=3: a label map holds id 3 outside \[0, 3\)"):
        semantic_map(label + 1, 3)
