"""UNIT v2: official weights, every loss term on a fixed batch (noise shared between the
reconstruction and the translation, KL = mean(mu^2)), update order, deterministic inference,
a short run whose reconstruction falls, DDP agreement."""

from __future__ import annotations

import hydra
import lightning as L
import pytest
import torch

from imtrans.losses import weighted_sum
from imtrans.run import train
from tests.helpers import compose_config, train_one_step
from tests.methods.test_munit import Spy, fixed_batch, lsgan, munit_run_overrides, tiny_model

UNIT_TERMS = {
    "gan_a", "gan_b", "recon_x_a", "recon_x_b", "kl_a", "kl_b",
    "cyc_x_a", "cyc_x_b", "kl_cyc_a", "kl_cyc_b",
}  # fmt: skip


def unit_run_overrides(iters, extra=()):
    over = [o.replace("model=munit", "model=unit") for o in munit_run_overrides(iters, extra)]
    return [o for o in over if "mlp_dim" not in o]


def test_official_weights():
    cfg = compose_config(["model=unit", "data=shapes"])
    w = cfg.loss.weights
    assert (w.gan_a, w.recon_x_a, w.kl_a, w.cyc_x_a, w.kl_cyc_a, w.vgg_a, w.dis_a) == (
        1,
        10,
        0.01,
        10,
        0.01,
        0,
        1,
    )
    assert (w.gan_b, w.recon_x_b, w.kl_b, w.cyc_x_b, w.kl_cyc_b, w.vgg_b, w.dis_b) == (
        1,
        10,
        0.01,
        10,
        0.01,
        0,
        1,
    )
    model = hydra.utils.instantiate(cfg.model)
    assert not model.is_multimodal and model.scheduler_interval == "iteration"
    opt = model.configure_optimizers()[0][0].param_groups[0]
    assert (opt["lr"], opt["betas"], opt["weight_decay"]) == (1e-4, (0.5, 0.999), 1e-4)


def test_terms_on_fixed_batch_match_the_official_forward():
    torch.manual_seed(0)
    model = tiny_model("unit")
    b = fixed_batch()
    x_a, x_b = b["A"], b["B"]
    inputs = {"gen_a.dec": [], "gen_b.dec": []}
    for name, store in inputs.items():
        model.get_submodule(name).register_forward_hook(
            lambda m, args, out, s=store: s.append(args[0].detach())
        )
    fwd = model.forward_pass(x_a, x_b)
    terms = model.all_generator_terms(x_a, x_b, fwd)
    assert set(terms) == UNIT_TERMS
    ga, gb = model.gen_a, model.gen_b
    with torch.no_grad():
        h_a, h_b = ga.encode(x_a), gb.encode(x_b)
        # decoder A decodes [h_a + n_a, h_b + n_b]; decoder B [h_b + n_b, h_a + n_a]: one noise
        # draw per image serves its reconstruction and its translation
        z_a, z_b = inputs["gen_a.dec"][0].split(2)
        assert torch.allclose(inputs["gen_b.dec"][0], torch.cat([z_b, z_a]))
        n_a = z_a - h_a
        assert 0.5 < n_a.std() < 1.5 and n_a.abs().max() > 0.1  # unit-variance noise was added
        x_ba, x_ab = ga.decode(z_b), gb.decode(z_a)
        h_b_recon, h_a_recon = ga.encode(x_ba), gb.encode(x_ab)  # the *other* domain's encoder
        # the cycle decodes with fresh noise
        z_a_cyc = inputs["gen_a.dec"][1]
        assert not torch.allclose(z_a_cyc - h_a_recon, n_a)
        ref = {
            "recon_x_a": (ga.decode(z_a) - x_a).abs().mean(),
            "recon_x_b": (gb.decode(z_b) - x_b).abs().mean(),
            "kl_a": (h_a**2).mean(),
            "kl_b": (h_b**2).mean(),
            "kl_cyc_a": (h_a_recon**2).mean(),
            "kl_cyc_b": (h_b_recon**2).mean(),
            "cyc_x_a": (ga.decode(z_a_cyc) - x_a).abs().mean(),
            "gan_a": lsgan(model.dis_a(x_ba), 1.0),
            "gan_b": lsgan(model.dis_b(x_ab), 1.0),
        }
    for name, value in ref.items():
        assert torch.allclose(terms[name], value, rtol=1e-4, atol=1e-6), name
    w = model.loss_weights
    assert torch.allclose(weighted_sum(terms, w), sum(w[k] * v for k, v in terms.items()))
    # with both cycle weights 0 the cycle pass is skipped (the official code would crash)
    for k in ("cyc_x_a", "cyc_x_b", "kl_cyc_a", "kl_cyc_b"):
        model.loss_weights[k] = 0
    assert set(model.all_generator_terms(x_a, x_b, model.forward_pass(x_a, x_b))) == UNIT_TERMS - {
        "cyc_x_a", "cyc_x_b", "kl_cyc_a", "kl_cyc_b",
    }  # fmt: skip


@pytest.mark.parametrize(("reuse", "dec_calls", "enc_calls"), [(True, 2, 2), (False, 3, 3)])
def test_update_order_and_translation_passes(reuse, dec_calls, enc_calls):
    torch.manual_seed(0)
    model = tiny_model("unit", extra=[f"model.reuse_translations={str(reuse).lower()}"])
    spy = Spy(model, ["gen_a.dec", "gen_a.enc"])
    train_one_step(model, fixed_batch())
    assert spy.order == ["D", "G"]
    # reuse: decoder A on [recon, translation] + cycle; official: + the D step's translation
    assert spy.calls == {"gen_a.dec": dec_calls, "gen_a.enc": enc_calls}
    fake_d, _, fake_g = spy.dis_a_inputs
    assert torch.equal(fake_d, fake_g) == reuse


def test_inference_decodes_the_mean():
    torch.manual_seed(0)
    model = tiny_model("unit")
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    y = model.translate(x, "a2b")
    assert torch.equal(y, model.translate(x, "a2b"))  # no noise at inference
    with torch.no_grad():
        assert torch.allclose(y, model.gen_b.decode(model.gen_a.encode(x)))
    assert model.translate(x, "b2a", num_samples=2).shape == (2, 2, 3, 32, 32)
    with pytest.raises(ValueError, match="deterministic"):
        model.translate(x, reference=x)


def test_short_run_reconstruction_falls(tmp_path):
    losses = []

    class Record(L.Callback):
        def on_train_batch_end(self, trainer, module, *_):
            m = trainer.callback_metrics
            losses.append(float(m["train/recon_x_a"] + m["train/recon_x_b"]))

    extra = [
        "model.generator.dim=8",
        "model.optimizer.lr=1e-3",
        "callbacks.sample_grid=null",
        "callbacks.last_checkpoint=null",
        "task=fit",
    ]
    train(compose_config(unit_run_overrides(100, extra), output_dir=tmp_path), extra_callbacks=[Record()])
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < 0.7 * first, (first, last)


@pytest.mark.slow
def test_two_process_ddp_keeps_parameters_identical(tmp_path):
    from tests.test_run import SaveRankParams

    extra = ["trainer=ddp_cpu", "data.batch_size=2", "callbacks.sample_grid=null"]
    train(
        compose_config(unit_run_overrides(3, extra), output_dir=tmp_path),
        extra_callbacks=[SaveRankParams(tmp_path)],
    )
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    init = torch.load(tmp_path / "init.pt")
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
    assert r0.pop("iteration").item() == 3
    assert len([k for k in init if not torch.equal(r0[k], init[k])]) > len(init) // 2
