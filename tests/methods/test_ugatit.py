"""U-GAT-IT: loss terms and weights, CAM targets, update order, one translation per iteration,
rho clamping, the schedule, short runs (fp32 and bf16) that reload and translate."""

from __future__ import annotations

import hydra
import pytest
import torch
import torch.nn.functional as F

import imtrans.methods.ugatit as ugatit_module
from imtrans.callbacks.images import title_band_height
from imtrans.losses import weighted_sum
from imtrans.methods.schedules import LinearDecay
from imtrans.nets.ugatit import ILN, AdaLIN
from imtrans.run import train
from tests.helpers import TINY, compose_config, random_batch, tiny_run_overrides, train_one_step


def _model(extra=()):
    cfg = compose_config(["model=ugatit", "data=shapes", "data.size=64", *TINY["ugatit"], *extra])
    return hydra.utils.instantiate(cfg.model)


def _batch(seed=0, n=2, size=64):
    return random_batch(seed, n, size)


def test_config_is_official():
    cfg = compose_config(["model=ugatit", "data=shapes", "data.size=256"])
    assert cfg.model.generator.light and cfg.model.generator.ngf == 64 and cfg.model.generator.n_blocks == 4
    assert cfg.model.global_discriminator.n_layers == 7 and cfg.model.local_discriminator.n_layers == 5
    opt = cfg.model.optimizer
    assert (opt.lr, list(opt.betas), opt.weight_decay) == (1e-4, [0.5, 0.999], 1e-4)
    assert cfg.model.scheduler_interval == "iteration" and cfg.model.init_from is None
    w = cfg.loss.weights
    assert cfg.loss.gan_mode == "lsgan"
    assert all(w[f"cycle_{d}"] == 10 and w[f"idt_{d}"] == 10 for d in "AB")
    assert all(w[f"cam_{d}_{k}"] == 1000 for d in "AB" for k in ("source", "identity"))
    assert all(w[k] == 1 for k in w if k.startswith(("gan_", "D_")))
    assert sum(k.startswith("D_") for k in w) == 16 and sum(k.startswith("gan_") for k in w) == 8


def test_schedule_is_the_official_per_iteration_decay():
    # official: for step in 1..iters, before the updates: if step > iters // 2: lr -= lr0 / (iters // 2)
    iters, lr0 = 10, 1e-4
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=lr0)
    sched = LinearDecay(opt, n_epochs=iters // 2, n_epochs_decay=iters // 2 - 1)
    lr = lr0
    for step in range(1, iters + 1):
        if step > iters // 2:
            lr -= lr0 / (iters // 2)
        if step > 1:
            opt.step()  # no gradients: a no-op that keeps the scheduler's order check quiet
            sched.step()  # what TranslationModule does before every batch but the first
        assert opt.param_groups[0]["lr"] == pytest.approx(lr, abs=1e-12)
    assert lr == pytest.approx(0, abs=1e-12)


def test_terms_on_fixed_batch():
    torch.manual_seed(0)
    model = _model()
    b = _batch()
    A, B = b["A"], b["B"]
    made = model.translations(A, B)
    g = model.generator_terms(A, B, made)
    ones, zeros = torch.ones(2, 2), torch.zeros(2, 2)
    with torch.no_grad():
        fake_A2B, cam_A2B, _ = model.genA2B(A)
        fake_B2A, cam_B2A, _ = model.genB2A(B)
        torch.testing.assert_close(made["A2B"][0], fake_A2B)
        # reconstruction and identity
        torch.testing.assert_close(g["cycle_A"], F.l1_loss(model.genB2A(fake_A2B)[0], A))
        torch.testing.assert_close(g["cycle_B"], F.l1_loss(model.genA2B(fake_B2A)[0], B))
        torch.testing.assert_close(g["idt_A"], F.l1_loss(model.genB2A(A)[0], A))
        torch.testing.assert_close(g["idt_B"], F.l1_loss(model.genA2B(B)[0], B))
        # CAM BCE: 1 for the source domain, 0 for the identity pass
        bce = F.binary_cross_entropy_with_logits
        torch.testing.assert_close(g["cam_A_source"], bce(cam_B2A, ones))
        torch.testing.assert_close(g["cam_A_identity"], bce(model.genB2A(A)[1], zeros))
        torch.testing.assert_close(g["cam_B_source"], bce(cam_A2B, ones))
        torch.testing.assert_close(g["cam_B_identity"], bce(model.genA2B(B)[1], zeros))
        # LSGAN on patch and CAM logits; the Ds are in eval mode to freeze their power iteration
        for d in (model.disGA, model.disLA, model.disGB, model.disLB):
            d.eval()
        g = model.generator_terms(A, B, made)
        logit, cam, _ = model.disGA(fake_B2A)
        torch.testing.assert_close(g["gan_GA"], ((logit - 1) ** 2).mean())
        torch.testing.assert_close(g["gan_GA_cam"], ((cam - 1) ** 2).mean())
        logit, cam, _ = model.disLB(fake_A2B)
        torch.testing.assert_close(g["gan_LB"], ((logit - 1) ** 2).mean())
        torch.testing.assert_close(g["gan_LB_cam"], ((cam - 1) ** 2).mean())
        d = model.discriminator_terms(A, B, fake_B2A, fake_A2B)
        assert len(d) == 16
        logit, cam, _ = model.disLA(A)
        torch.testing.assert_close(d["D_LA_real"], ((logit - 1) ** 2).mean())
        torch.testing.assert_close(d["D_LA_cam_real"], ((cam - 1) ** 2).mean())
        logit, cam, _ = model.disGB(fake_A2B)
        torch.testing.assert_close(d["D_GB_fake"], (logit**2).mean())
        torch.testing.assert_close(d["D_GB_cam_fake"], (cam**2).mean())
    assert set(g) == {f"gan_{n}{c}" for n in ("GA", "LA", "GB", "LB") for c in ("", "_cam")} | {
        "cycle_A", "cycle_B", "idt_A", "idt_B", "cam_A_source", "cam_A_identity", "cam_B_source", "cam_B_identity"
    }  # fmt: skip
    w = model.loss_weights
    expected = sum(w[k] * v for k, v in g.items())
    torch.testing.assert_close(weighted_sum(g, w), expected)


def test_update_order_single_translation_and_rho_clamp(monkeypatch):
    torch.manual_seed(0)
    # a large generator rate pushes rho out of [0, 1] in one step
    model = _model(["+model.optimizer_overrides.G.lr=10"])
    with torch.no_grad():
        for m in model.genA2B.modules():
            if isinstance(m, (AdaLIN, ILN)):
                m.rho.fill_(0.999 if isinstance(m, AdaLIN) else 0.001)
    calls = {"genA2B": 0, "genB2A": 0}
    for name in calls:
        getattr(model, name).register_forward_hook(lambda *_, n=name: calls.__setitem__(n, calls[n] + 1))
    order, before_clamp = [], []
    original_optimize, original_clamp = model.optimize, ugatit_module.clamp_rho

    def optimize(name, fn, **kw):
        order.append(name)
        return original_optimize(name, fn, **kw)

    def clamp(module, *a):
        before_clamp.append(
            [m.rho.detach().clone() for m in module.modules() if isinstance(m, (AdaLIN, ILN))]
        )
        original_clamp(module, *a)

    model.optimize = optimize
    monkeypatch.setattr(ugatit_module, "clamp_rho", clamp)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    train_one_step(model, _batch())
    assert order == ["D", "G"]
    # genA2B: A (reused by the D and G steps), fake_B2A (cycle), B (identity); the official
    # code makes 4 passes each, computing A2B(A) again for the G step
    assert calls == {"genA2B": 3, "genB2A": 3}
    changed = {
        k.split(".")[0]
        for k, v in model.state_dict().items()
        if v.is_floating_point() and not torch.equal(v, before[k])
    }
    assert {"genA2B", "genB2A", "disGA", "disGB", "disLA", "disLB"} <= changed
    pushed = torch.cat([r.flatten() for r in before_clamp[0]])
    assert (pushed > 1).any() and (pushed < 0).any()  # the step left [0, 1] ...
    rhos = torch.cat([m.rho.flatten() for m in model.genA2B.modules() if isinstance(m, (AdaLIN, ILN))])
    assert rhos.min() >= 0 and rhos.max() <= 1  # ... and the clamp brought it back
    assert len(before_clamp) == 2  # both generators


@pytest.mark.parametrize("precision", ["32", "bf16-mixed"])
def test_short_run_reloads_and_translates(tmp_path, precision):
    from imtrans.load import load_model

    extra = [f"trainer.precision={precision}", "callbacks.sample_grid.every_n_iters=100"]
    cfg = compose_config(tiny_run_overrides("ugatit", "shapes", iters=4, extra=extra), output_dir=tmp_path)
    train(cfg)
    restored = load_model(tmp_path)
    assert restored.iteration == 4
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    for direction in ("a2b", "b2a"):
        y = restored.translate(x, direction)
        assert y.shape == x.shape and torch.isfinite(y).all() and y.abs().max() <= 1
    rhos = torch.cat([m.rho.flatten() for m in restored.modules() if isinstance(m, (AdaLIN, ILN))])
    assert rhos.min() >= 0 and rhos.max() <= 1


def test_sample_grid_shows_the_attention_maps(tmp_path):
    """The acceptance command's grid: per direction, input | translation | the generator's CAM
    over the input | the two discriminators' maps over the translation (5 cells)."""
    import numpy as np
    from PIL import Image

    from imtrans.callbacks.images import attention_overlay
    from imtrans.load import load_model
    from imtrans.run import train
    from tests.helpers import compose_config, tiny_run_overrides

    cfg = compose_config(
        tiny_run_overrides("ugatit", "shapes", iters=2, extra=["metrics=none", "task=fit"]),
        output_dir=tmp_path,
    )
    train(cfg)
    grid = np.asarray(Image.open(tmp_path / "samples" / "iter_0000002.png"))
    size, pad = 64, 2
    assert grid.shape[1] == 2 * 5 * (size + pad) + pad  # a2b and b2a, 5 cells each
    module = load_model(tmp_path)
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    maps = module.attention_maps(x, "a2b")
    assert [over for _, over in maps.values()] == ["input", "output", "output"]
    heat = maps["G"][0]
    assert heat.shape == (2, 1, size // 4, size // 4)
    cell = attention_overlay(x[0], heat[0])
    assert cell.shape == (3, size, size) and cell.min() >= -1 and cell.max() <= 1
    # where the map is highest the overlay is reddest
    up = torch.nn.functional.interpolate(heat[:1], size=(size, size), mode="bilinear")[0, 0]
    hot, cold = up.argmax(), up.argmin()
    red = (cell[0] - cell[2]).flatten()
    assert red[hot] > red[cold]

    # imtrans translate attention=true writes input | output | the three maps, at the input's size
    from imtrans.translate import translate

    (tmp_path / "in").mkdir()
    Image.fromarray((np.random.default_rng(0).random((64, 80, 3)) * 255).astype(np.uint8)).save(
        tmp_path / "in" / "x.png"
    )
    result = translate([f"ckpt={tmp_path}", f"input={tmp_path / 'in'}", f"output={tmp_path / 'out'}", "attention=true",
                        "progress=false"])  # fmt: skip
    sheet = np.asarray(Image.open(tmp_path / "out" / "x_a2b_attention.png"))
    assert tmp_path / "out" / "x_a2b_attention.png" in result.written
    assert sheet.shape[:2] == (title_band_height(64) + 64 + 2 * pad, 5 * (80 + pad) + pad)  # titled columns
