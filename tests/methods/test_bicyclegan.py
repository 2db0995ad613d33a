"""BicycleGAN: official parameter counts, loss terms, the G-only latent regression, inference."""

from __future__ import annotations

import hydra
import pytest
import torch
import torch.nn.functional as F

from imtrans.methods.bicyclegan import kl_to_standard_normal
from tests.conftest import count_params
from tests.helpers import compose_config

TINY = ["model.generator.ngf=4", "model.discriminator.ndf=4", "model.encoder.ndf=4", "data.size=64"]


@pytest.mark.parametrize(
    ("crop", "expected"),
    [
        # G, D, D2, E, total (../shared/REFERENCE.md, 1 input channel as in edges2shoes)
        (256, (54_792_579, 3_458_978, 3_458_978, 2_590_032, 64_300_567)),
        (128, (42_143_107, 830_626, 830_626, 1_344_080, 45_148_439)),
    ],
)
def test_parameter_counts(crop, expected):
    cfg = compose_config(["experiment=bicyclegan_edges2shoes", f"data.crop_size={crop}"])
    model = hydra.utils.instantiate(cfg.model)
    got = tuple(count_params(m) for m in (model.G, model.D, model.D2, model.E)) + (count_params(model),)
    assert got == expected


def _tiny(extra=()):
    cfg = compose_config(["model=bicyclegan", "data=shapes_paired", *TINY, *extra])
    return hydra.utils.instantiate(cfg.model)


def _batch(n=4, size=64):
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1, torch.rand(
        n, 3, size, size, generator=g
    ) * 2 - 1


def test_loss_terms_on_a_fixed_batch():
    torch.manual_seed(0)
    model = _tiny()
    w = model.loss_weights
    assert (w["gan"], w["gan2"], w["l1"], w["kl"], w["z_l1"]) == (1, 1, 10, 0.01, 0.5)
    A, B = _batch()
    f = model.forward_pass(A, B)
    assert f["fake_enc"].shape == f["fake_rand"].shape == (2, 3, 64, 64)
    assert torch.equal(f["B1"], B[:2]) and torch.equal(f["B2"], B[2:])
    terms = model.generator_terms(f)
    assert set(terms) == {"gan", "gan2", "l1", "kl", "z_l1"}
    assert torch.allclose(terms["l1"], (f["fake_enc"] - B[:2]).abs().mean())
    mu, logvar = f["mu"], f["logvar"]
    assert torch.allclose(terms["kl"], (-0.5 * (1 + logvar - mu**2 - logvar.exp())).sum())
    with torch.no_grad():
        mu2 = model.E(f["fake_rand"])[0]
        assert torch.allclose(terms["z_l1"], (mu2 - f["z_rand"]).abs().mean())
        d = model.D(f["fake_enc"])
        assert isinstance(d, list) and len(d) == 2
        assert torch.allclose(terms["gan"], sum(F.mse_loss(s, torch.ones_like(s)) for s in d))
    d2 = model.discriminator_terms("D2", f["B2"], f["fake_rand"])
    assert set(d2) == {"D2_real", "D2_fake"}


def test_kl_formula():
    mu, logvar = torch.zeros(2, 8), torch.zeros(2, 8)
    assert kl_to_standard_normal(mu, logvar).item() == 0
    assert kl_to_standard_normal(torch.ones(2, 8), logvar).item() == pytest.approx(0.5 * 16)


def test_latent_regression_updates_the_generator_only():
    torch.manual_seed(0)
    model = _tiny()
    A, B = _batch()
    f = model.forward_pass(A, B)
    z_l1 = model.generator_terms(f)["z_l1"]
    grads_E = torch.autograd.grad(z_l1, list(model.E.parameters()), retain_graph=True, allow_unused=True)
    assert all(g is None or not g.any() for g in grads_E)
    grads_G = torch.autograd.grad(z_l1, list(model.G.parameters()), allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in grads_G)
    # while the other G/E terms do reach the encoder (KL and L1 through z_encoded)
    f = model.forward_pass(A, B)
    l1 = model.generator_terms(f)["l1"]
    assert any(
        g is not None and g.abs().sum() > 0
        for g in torch.autograd.grad(l1, list(model.E.parameters()), allow_unused=True)
    )


def test_inference_random_and_example_guided():
    torch.manual_seed(0)
    model = _tiny().eval()
    A, B = _batch(2)
    out = model.translate(A, num_samples=3)
    assert out.shape == (2, 3, 3, 64, 64) and out.abs().max() <= 1
    assert not torch.allclose(out[:, 0], out[:, 1])  # different codes, different outputs
    guided = model.translate(A, reference=B[:1])
    with torch.no_grad():
        code = model.encode(B[:1])
        assert torch.allclose(guided, model.G(A, code.expand(2, -1)), atol=1e-6)
        # one reference, two inputs: both get the same (the reference's) code
        assert torch.allclose(model.translate(A[1:], reference=B[:1]), guided[1:], atol=1e-6)


def test_short_run_on_shapes_paired(tmp_path):
    from imtrans.load import load_model
    from imtrans.run import train

    overrides = ["model=bicyclegan", "data=shapes_paired", *TINY, "data.batch_size=2", "data.val_size=4", "data.num_fixed=2",
                 "trainer=cpu", "logger=csv", "iters=4", "callbacks.progress_bar=null", "trainer.enable_model_summary=false"]  # fmt: skip
    train(compose_config(overrides, output_dir=tmp_path))
    assert (tmp_path / "samples" / "test.png").is_file()
    model = load_model(tmp_path)
    assert model.iteration == 4
    assert model.translate(torch.zeros(1, 3, 64, 64), num_samples=2).shape == (1, 2, 3, 64, 64)
