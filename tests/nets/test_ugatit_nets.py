"""U-GAT-IT networks: official parameter counts, AdaLIN/ILN formulas, CAM, rho clamping."""

from __future__ import annotations

import gc

import torch
import torch.nn.functional as F

from imtrans.nets.ugatit import CAM, ILN, AdaLIN, UgatitDiscriminator, UgatitGenerator, clamp_rho


def _count(net) -> int:
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def test_light_parameter_counts_are_official():
    g, dg, dl = UgatitGenerator(light=True), UgatitDiscriminator(n_layers=7), UgatitDiscriminator(n_layers=5)
    assert _count(g) == 10_589_888
    assert _count(dg) == 53_130_176
    assert _count(dl) == 3_290_560
    assert 2 * (_count(g) + _count(dg) + _count(dl)) == 134_021_248
    # breakdown of reference 1.3
    assert _count(g.encoder) == 5_096_640 and _count(g.cam.conv1x1) == 131_328
    assert _count(g.blocks[0]) == 1_180_160 and _count(g.decoder) == 378_624 and _count(g.mlp) == 131_072
    # spectral norm everywhere but the 1x1 fusion
    assert hasattr(dg.cam.gap_fc, "weight_orig") and hasattr(dg.head[1], "weight_orig")
    assert not hasattr(dg.cam.conv1x1, "weight_orig")
    assert all(hasattr(block[1], "weight_orig") for block in dg.body)


def test_full_generator_parameter_count_is_official():
    g = UgatitGenerator(light=False, img_size=256)
    n, mlp = _count(g), _count(g.mlp)
    del g
    gc.collect()
    assert (n, mlp) == (278_959_808, 268_500_992)
    assert 2 * (n + 53_130_176 + 3_290_560) == 670_761_088


def test_output_shapes():
    x = torch.randn(2, 3, 64, 64)
    out, cam, heat = UgatitGenerator(ngf=4, n_blocks=2, img_size=64, light=False)(x)
    assert out.shape == x.shape and cam.shape == (2, 2) and heat.shape == (2, 1, 16, 16)
    assert out.abs().max() <= 1
    logit, cam, heat = UgatitDiscriminator(ndf=4, n_layers=5)(x)
    assert logit.shape == (2, 1, 6, 6) and cam.shape == (2, 2) and heat.shape == (2, 1, 7, 7)


def _formula(x, rho, gamma, beta, eps=1e-5):
    # written out per element with the unbiased (n - 1) variance
    n_hw, n_chw = x.shape[2] * x.shape[3], x.shape[1] * x.shape[2] * x.shape[3]
    mi = x.sum((2, 3), keepdim=True) / n_hw
    vi = ((x - mi) ** 2).sum((2, 3), keepdim=True) / (n_hw - 1)
    ml = x.sum((1, 2, 3), keepdim=True) / n_chw
    vl = ((x - ml) ** 2).sum((1, 2, 3), keepdim=True) / (n_chw - 1)
    mix = rho * (x - mi) / (vi + eps).sqrt() + (1 - rho) * (x - ml) / (vl + eps).sqrt()
    return mix * gamma + beta


def test_adalin_and_iln_match_their_formulas():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 4, 5, generator=g) * 3 + 1
    gamma, beta = torch.randn(2, 3, generator=g), torch.randn(2, 3, generator=g)
    ada = AdaLIN(3)
    assert torch.equal(ada.rho, torch.full((1, 3, 1, 1), 0.9))
    with torch.no_grad():
        ada.rho.copy_(torch.tensor([0.0, 0.3, 1.0]).view(1, 3, 1, 1))
    expected = _formula(x, ada.rho, gamma[:, :, None, None], beta[:, :, None, None])
    torch.testing.assert_close(ada(x, gamma, beta), expected)
    # rho = 1 is instance norm but with the unbiased variance: not F.instance_norm
    biased = F.instance_norm(x)[:, 2]
    assert not torch.allclose(ada(x, torch.ones(2, 3), torch.zeros(2, 3))[:, 2], biased, atol=1e-3)

    iln = ILN(3)
    assert torch.equal(iln.rho, torch.zeros(1, 3, 1, 1))
    assert torch.equal(iln.gamma, torch.ones(1, 3, 1, 1)) and torch.equal(iln.beta, torch.zeros(1, 3, 1, 1))
    with torch.no_grad():
        iln.rho.copy_(torch.tensor([0.2, 0.5, 0.9]).view(1, 3, 1, 1))
        iln.gamma.copy_(torch.tensor([1.5, -1.0, 0.5]).view(1, 3, 1, 1))
        iln.beta.copy_(torch.tensor([0.1, 0.2, -0.3]).view(1, 3, 1, 1))
    torch.testing.assert_close(iln(x), _formula(x, iln.rho, iln.gamma, iln.beta))


def test_discriminator_cam_reweights_with_the_raw_weight():
    torch.manual_seed(0)
    cam = CAM(4, act="lrelu", spectral=True)
    x = torch.randn(2, 4, 3, 3)
    out, logit, heat = cam(x)
    raw = torch.cat(
        [x * cam.gap_fc.weight_orig[:, :, None, None], x * cam.gmp_fc.weight_orig[:, :, None, None]], 1
    )
    expected = F.leaky_relu(cam.conv1x1(raw), 0.2)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(heat, expected.sum(1, keepdim=True))
    # the logits use the normalised weight (after this forward's power iteration)
    normalised = cam.gap_fc.weight
    assert not torch.allclose(normalised, cam.gap_fc.weight_orig)
    torch.testing.assert_close(logit[:, :1], F.adaptive_avg_pool2d(x, 1).flatten(1) @ normalised.t())


def test_clamp_rho():
    g = UgatitGenerator(ngf=2, n_blocks=1, img_size=16)
    with torch.no_grad():
        g.blocks[0].norm1.rho.fill_(1.7)
        g.decoder[2].rho.fill_(-0.4)
    clamp_rho(g)
    assert torch.equal(g.blocks[0].norm1.rho, torch.ones_like(g.blocks[0].norm1.rho))
    assert torch.equal(g.decoder[2].rho, torch.zeros_like(g.decoder[2].rho))
