"""MUNIT / UNIT networks: exact parameter counts, LayerNorm and AdaIN against their formulas,
the MLP-to-AdaIN assignment order, the multi-scale discriminator's pooling."""

from __future__ import annotations

import hydra
import pytest
import torch
import torch.nn.functional as F

from imtrans.nets import (
    AdaINGen,
    AdaptiveInstanceNorm2d,
    MsImageDis,
    MunitLayerNorm,
    VAEGen,
    assign_adain_params,
)
from imtrans.nets.blocks import InstanceNorm2d
from imtrans.nets.munit import Decoder, adain_layers, num_adain_params
from tests.conftest import count_params
from tests.helpers import compose_config


def test_munit_counts_from_config():
    cfg = compose_config(["model=munit", "data=shapes"])
    model = hydra.utils.instantiate(cfg.model)
    g = model.gen_a
    parts = [count_params(m) for m in (g.enc_style, g.enc_content, g.dec, g.mlp)]
    assert parts == [2_764_936, 5_385_856, 5_754_627, 1_120_768]
    assert count_params(model.gen_a) == count_params(model.gen_b) == 15_026_187
    assert count_params(model.dis_a) == count_params(model.dis_b) == 8_271_171
    assert [count_params(net) for net in model.dis_a.cnns] == [2_757_057] * 3
    assert count_params(model) == 46_594_716


def test_unit_counts_from_config():
    cfg = compose_config(["model=unit", "data=shapes"])
    model = hydra.utils.instantiate(cfg.model)
    assert count_params(model.gen_a.enc) == 5_385_856 and count_params(model.gen_a.dec) == 5_754_627
    assert count_params(model.gen_a) == count_params(model.gen_b) == 11_140_483
    assert count_params(model.dis_a) == 8_271_171
    assert count_params(model) == 38_823_308


def test_layer_norm_formula():
    torch.manual_seed(0)
    ln = MunitLayerNorm(3)
    assert (ln.gamma >= 0).all() and (ln.gamma <= 1).all() and (ln.beta == 0).all()
    assert not torch.allclose(ln.gamma, ln.gamma[0].expand(3))  # U(0, 1), not constant
    x = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).view(2, 3, 2, 2) ** 1.5
    y = ln(x)
    for n in range(2):
        v = x[n].flatten()
        mean = v.mean()
        std = torch.sqrt(((v - mean) ** 2).sum() / (v.numel() - 1))  # unbiased
        expected = (x[n] - mean) / (std + 1e-5) * ln.gamma.view(3, 1, 1) + ln.beta.view(3, 1, 1)
        assert torch.allclose(y[n], expected, atol=1e-6)
    # a batch of one gives the same per-sample result (the official code has a branch for it)
    assert torch.allclose(ln(x[1:]), y[1:], atol=1e-6)
    # and it is neither nn.LayerNorm nor GroupNorm(1): those use sqrt(biased var + eps)
    assert not torch.allclose(y, F.group_norm(x, 1, ln.gamma, ln.beta), atol=1e-3)


def test_adain_formula():
    torch.manual_seed(0)
    layer = AdaptiveInstanceNorm2d(3)
    x = torch.randn(2, 3, 4, 5) * 3 + 1
    weight, bias = torch.randn(2, 3), torch.randn(2, 3)
    layer.weight, layer.bias = weight, bias
    y = layer(x)
    mean = x.mean((2, 3), keepdim=True)
    var = x.var((2, 3), unbiased=False, keepdim=True)
    expected = (x - mean) / torch.sqrt(var + 1e-5) * weight[..., None, None] + bias[..., None, None]
    assert torch.allclose(y, expected, atol=1e-5)
    assert not list(layer.parameters())  # no parameters of its own
    layer.weight = layer.bias = None
    with pytest.raises(RuntimeError, match="assign"):
        layer(x)


def test_mlp_output_is_assigned_bias_then_scale_per_layer():
    dec = Decoder(n_upsample=1, n_res=2, dim=4, output_dim=3, res_norm="adain")
    layers = adain_layers(dec)
    assert len(layers) == 4 and num_adain_params(dec) == 4 * 2 * 4  # 2 blocks x 2 convs
    params = torch.arange(2 * 32, dtype=torch.float32).view(2, 32)
    assign_adain_params(params, dec)
    for k, m in enumerate(layers):
        assert torch.equal(m.bias, params[:, 8 * k : 8 * k + 4])  # first C: bias (mean)
        assert torch.equal(m.weight, params[:, 8 * k + 4 : 8 * k + 8])  # next C: weight (std)
    with pytest.raises(ValueError, match="33"):
        assign_adain_params(torch.zeros(2, 33), dec)
    # the generator feeds the MLP output through exactly this assignment
    gen = AdaINGen(3, dim=4, style_dim=2, mlp_dim=8, n_downsample=1, n_res=1)
    content = torch.randn(2, 8, 8, 8)
    style = torch.randn(2, 2)
    out = gen.decode(content, style)
    assign_adain_params(gen.mlp(style), gen.dec)
    assert torch.allclose(out, gen.dec.model(content))
    assert all(m.weight is not None for m in adain_layers(gen.dec))


def test_decoder_clears_assigned_params_after_forward():
    gen = AdaINGen(3, dim=4, style_dim=2, mlp_dim=8, n_downsample=1, n_res=1)
    y = gen(torch.rand(1, 3, 16, 16) * 2 - 1)
    assert y.shape == (1, 3, 16, 16) and y.abs().max() <= 1
    assert all(m.weight is None and m.bias is None for m in adain_layers(gen.dec))


def test_style_encoder_has_four_downsamplings_and_no_norm():
    gen = AdaINGen(3, dim=4, style_dim=5, mlp_dim=8, n_downsample=1, n_res=1)
    convs = [m for m in gen.enc_style.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.stride[0] for c in convs] == [1, 2, 2, 2, 2, 1]
    assert not any(isinstance(m, (torch.nn.InstanceNorm2d, MunitLayerNorm)) for m in gen.enc_style.modules())
    assert gen.enc_style(torch.rand(2, 3, 32, 32)).shape == (2, 5)


def test_ms_discriminator_scales_and_pooling():
    d = MsImageDis(3, dim=4, n_layer=2, num_scales=3)
    x = torch.rand(2, 3, 32, 32)
    outs = d(x)
    assert [tuple(o.shape) for o in outs] == [(2, 1, 8, 8), (2, 1, 4, 4), (2, 1, 2, 2)]
    # scale 2 sees the image pooled with count_include_pad=False (borders not darkened)
    pooled = F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
    assert torch.allclose(outs[1], d.cnns[1](pooled))
    assert not torch.allclose(pooled, F.avg_pool2d(x, 3, 2, 1))
    # the three scales share nothing
    assert d.cnns[0][0].conv.weight.data_ptr() != d.cnns[1][0].conv.weight.data_ptr()


def test_vae_generator_noise_only_in_training():
    torch.manual_seed(0)
    g = VAEGen(3, dim=4, n_downsample=1, n_res=1)
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    g.eval()
    assert torch.equal(g(x), g.decode(g.encode(x)))
    g.train()
    assert not torch.allclose(g(x), g.decode(g.encode(x)))
    res_norms = [type(m) for m in g.dec.model[0].modules() if not isinstance(m, torch.nn.Sequential)]
    assert InstanceNorm2d in res_norms and AdaptiveInstanceNorm2d not in res_norms
