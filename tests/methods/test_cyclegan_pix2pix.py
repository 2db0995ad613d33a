"""CycleGAN and pix2pix: loss terms and weights, update order, one translation per iteration."""

from __future__ import annotations

import hydra
import pytest
import torch
import torch.nn.functional as F

from imtrans.losses import weighted_sum
from tests.helpers import TINY, compose_config, random_batch, train_one_step


def _model(name: str, data: str):
    cfg = compose_config([f"model={name}", f"data={data}", "data.size=32", *TINY[name]])
    return hydra.utils.instantiate(cfg.model)


def _batch(seed=0, n=2, size=32):
    return random_batch(seed, n, size)


def test_cyclegan_weights_are_official():
    model = _model("cyclegan", "shapes")
    w = model.loss_weights
    assert (w["cycle_A"], w["cycle_B"]) == (10, 10)
    assert (w["idt_A"], w["idt_B"]) == (5, 5)  # lambda_identity 0.5 x lambda 10
    assert (w["gan_A"], w["gan_B"]) == (1, 1)
    assert all(w[k] == 0.5 for k in ("D_A_real", "D_A_fake", "D_B_real", "D_B_fake"))
    assert model.gan.mode == "lsgan" and model.pool_A.size == 4  # TINY sets pool 4 (default 50)


def test_cyclegan_terms_on_fixed_batch():
    torch.manual_seed(0)
    model = _model("cyclegan", "shapes")
    b = _batch()
    terms, fakes = model.generator_terms(b["A"], b["B"])
    assert set(terms) == {"gan_A", "gan_B", "cycle_A", "cycle_B", "idt_A", "idt_B"}
    with torch.no_grad():
        fake_B = model.G_A(b["A"])
        assert torch.allclose(fakes["B"], fake_B)
        assert torch.allclose(terms["cycle_A"], F.l1_loss(model.G_B(fake_B), b["A"]))
        assert torch.allclose(terms["idt_A"], F.l1_loss(model.G_A(b["B"]), b["B"]))
        assert torch.allclose(
            terms["gan_A"], F.mse_loss(model.D_A(fake_B), torch.ones_like(model.D_A(fake_B)))
        )
    expected = sum(model.loss_weights[k] * v for k, v in terms.items())
    assert torch.allclose(weighted_sum(terms, model.loss_weights), expected)
    # identity weight 0 drops the two extra generator passes
    model.loss_weights["idt_A"] = model.loss_weights["idt_B"] = 0
    terms, _ = model.generator_terms(b["A"], b["B"])
    assert "idt_A" not in terms and "idt_B" not in terms


def test_cyclegan_batches_the_identity_pass_only_where_samples_are_independent():
    """G(A) and G(B) (identity) in one call give the two calls' terms and gradients; a G with
    batch norm (batch statistics) or dropout gets two calls, as the batch would change its math."""
    from torch import nn

    from imtrans.nets.blocks import treats_samples_independently

    torch.manual_seed(0)
    model, b = _model("cyclegan", "shapes"), _batch()
    assert treats_samples_independently(model.G_A)
    batched, _ = model.generator_terms(b["A"], b["B"])
    g_batched = torch.autograd.grad(weighted_sum(batched, model.loss_weights), list(model.G_A.parameters()))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("imtrans.methods.cyclegan.treats_samples_independently", lambda _g: False)
        single, _ = model.generator_terms(b["A"], b["B"])
    g_single = torch.autograd.grad(weighted_sum(single, model.loss_weights), list(model.G_A.parameters()))
    for k in single:
        assert batched[k].item() == pytest.approx(single[k].item(), rel=1e-5), k
    # a conv bias before InstanceNorm has an exact gradient of 0 and a computed one of float
    # noise: the absolute tolerance comes from the largest gradient
    noise = 1e-5 * max(g.abs().max().item() for g in g_single)
    for x, y in zip(g_batched, g_single):
        assert (x - y).abs().max().item() <= 1e-4 * y.abs().max().item() + noise
    assert not treats_samples_independently(nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3)))
    assert not treats_samples_independently(nn.Sequential(nn.Conv2d(3, 3, 1), nn.Dropout(0.5)))
    assert treats_samples_independently(nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3)).eval())


def test_pix2pix_terms_on_fixed_batch():
    torch.manual_seed(0)
    model = _model("pix2pix", "shapes_paired")
    assert model.loss_weights["l1"] == 100 and model.gan.mode == "vanilla"
    assert model.loss_weights["D_real"] == model.loss_weights["D_fake"] == 0.5
    b = _batch()
    fake = model.G(b["A"])
    g = model.generator_terms(b["A"], b["B"], fake)
    assert torch.allclose(g["l1"], (fake - b["B"]).abs().mean())
    logits = model.D(torch.cat([b["A"], fake], 1))
    assert torch.allclose(g["gan"], F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits)))
    d = model.discriminator_terms(b["A"], b["B"], fake)
    assert set(d) == {"D_real", "D_fake"}
    # the D terms see fake_B detached: no gradient reaches G from the D step
    d["D_fake"].backward()
    assert all(p.grad is None for p in model.G.parameters())


class _Recorder:
    def __init__(self, model, modules):
        self.calls = {name: 0 for name in modules}
        self.order = []
        for name in modules:
            getattr(model, name).register_forward_hook(self._hook(name))
        original = model.optimize

        def optimize(name, fn, **kw):
            self.order.append(name)
            return original(name, fn, **kw)

        model.optimize = optimize

    def _hook(self, name):
        def hook(*_):
            self.calls[name] += 1

        return hook


@pytest.mark.parametrize(
    ("name", "data", "order", "gen_calls"),
    [
        # CycleGAN: G step then D step; G_A runs on A and B (identity) as one batch, and on
        # fake_A (cycle)
        ("cyclegan", "shapes", ["G", "D"], {"G_A": 2, "G_B": 2}),
        # pix2pix: D step then G step on one generator pass
        ("pix2pix", "shapes_paired", ["D", "G"], {"G": 1}),
    ],
)
def test_update_order_and_single_translation(name, data, order, gen_calls):
    torch.manual_seed(0)
    model = _model(name, data)
    rec = _Recorder(model, list(gen_calls))
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    train_one_step(model, _batch())
    assert rec.order == order
    assert rec.calls == gen_calls
    changed = [
        k for k, v in model.state_dict().items() if v.is_floating_point() and not torch.equal(v, before[k])
    ]
    assert any(k.startswith(("G", "G_A")) for k in changed) and any(k.startswith("D") for k in changed)
