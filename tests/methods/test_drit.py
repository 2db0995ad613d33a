"""DRIT / DRIT++: presets, every loss term on a fixed batch, the update schedule, the faithful
two-step E/G update against a reference computation, inference (random, example-guided),
short runs (two domains on shapes, multi-domain on folders), DDP agreement, the issue's commands."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import hydra
import lightning as L
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from imtrans.losses import weighted_sum
from imtrans.run import train
from tests.helpers import compose_config

REPO = Path(__file__).resolve().parents[2]
TINY = ["model.dim=4", "model.dis_dim=4", "model.dis_n_layer=2", "model.dis_scale=2", "model.mlp_dim=16"]
TINY_MULTI = [
    "model.dim=4",
    "model.dis_dim=4",
    "model.dis_n_layer=3",
    "model.mlp_dim=16",
    "model.num_domains=2",
]


def tiny_model(extra=(), size=32):
    cfg = compose_config(["model=drit", "data=shapes", f"data.size={size}", *TINY, *extra])
    return hydra.utils.instantiate(cfg.model)


def fixed_batch(seed=0, n=2, size=32):
    g = torch.Generator().manual_seed(seed)
    return {
        "A": torch.rand(n, 3, size, size, generator=g) * 2 - 1,
        "B": torch.rand(n, 3, size, size, generator=g) * 2 - 1,
    }


def attach(model):
    """Optimizers and a trainer stub, so update methods run outside ``Trainer.fit``."""
    trainer = L.Trainer(accelerator="cpu", max_steps=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    trainer.strategy.connect(model)
    trainer.strategy._lightning_optimizers = None
    model.trainer = trainer
    opts = model.configure_optimizers()
    trainer.strategy.optimizers = opts[0] if isinstance(opts, tuple) else opts
    model.log_dict = lambda *a, **k: None
    model.log = lambda *a, **k: None
    return model


def sig_bce(logits, target):
    p = torch.sigmoid(logits)
    return F.binary_cross_entropy(p, torch.full_like(p, target))


# ---------------------------------------------------------------------------- presets
def test_presets_compose():
    cfg = compose_config(["model=drit", "data=cat2dog"])
    assert cfg.model.optimizer.lr == 1e-4 and cfg.model.optimizer_overrides.disContent.lr == 4e-5
    assert cfg.model.d_iter == 3 and cfg.model.two_step_update is True and cfg.model.concat is True
    assert (
        cfg.loss.weights.ms_ab == 1.0 and cfg.loss.weights.z_l1_a == 10.0 and cfg.loss.weights.kl_za_a == 0.01
    )
    assert compose_config(["model=drit", "loss=drit_no_ms"]).loss.weights.ms_ab == 0.0
    c2d = compose_config(["experiment=drit_cat2dog"])
    assert (c2d.data.load_size, c2d.data.crop_size, c2d.data.batch_size, c2d.data.flip) == (256, 216, 2, True)
    assert c2d.model._target_ == "imtrans.methods.DRIT" and c2d.trainer.max_epochs == 1200
    por = compose_config(["experiment=drit_portrait"])
    assert por.model.concat is False and por.data.crop_size == 216
    assert compose_config(["model=drit_multi", "data=afhq"]).model.image_size == 256
    # LinearDecay(600, 600, epoch_count=0) is the official lambda rule
    model = tiny_model()
    sched = model.configure_optimizers()[1][0]
    for ep in (0, 600, 601, 900, 1199):
        assert sched.factor(ep) == pytest.approx(1.0 - max(0, ep - 600) / 601)


# ---------------------------------------------------------------------------- losses
@pytest.mark.parametrize("ms", [True, False])
def test_terms_on_fixed_batch(ms):
    model = tiny_model([] if ms else ["loss=drit_no_ms"]).train()
    torch.manual_seed(3)
    f = model.forward_pass(fixed_batch())
    assert ("fake_A_rand2" in f) == ms
    main, second = model.main_terms(f), model.second_terms(f)
    A, B = fixed_batch()["A"][:1], fixed_batch()["B"][:1]
    D = lambda d, x, t: sum(sig_bce(o, t) for o in d(x))  # noqa: E731
    assert torch.allclose(main["gan_content_a"], sig_bce(model.disContent(f["c_a"]), 0.5))
    assert torch.allclose(main["gan_content_b"], sig_bce(model.disContent(f["c_b"]), 0.5))
    assert torch.allclose(main["gan_a"], D(model.disA, f["fake_A"], 1.0))
    assert torch.allclose(main["l1_cc_a"], (f["fake_A_recon"] - A).abs().mean())
    assert torch.allclose(main["l1_self_b"], (f["fake_BB"] - B).abs().mean())
    mu, lv = f["mu_a"], f["logvar_a"]
    assert torch.allclose(main["kl_za_a"], -0.5 * (1 + lv - mu**2 - lv.exp()).sum())
    assert torch.allclose(main["kl_zc_b"], (f["c_b"] ** 2).mean())
    assert torch.allclose(second["z_l1_b"], (f["mu2_b"] - f["z_r"]).abs().mean())
    assert torch.allclose(f["mu2_a"], model.enc_a.forward_a(f["fake_A_rand"])[0])
    gan2 = D(model.disA2, f["fake_A_rand"], 1.0) + (D(model.disA2, f["fake_A_rand2"], 1.0) if ms else 0)
    assert torch.allclose(second["gan2_a"], gan2)
    if ms:
        lz = (f["fake_B_rand2"] - f["fake_B_rand"]).abs().mean() / (f["z_r2"] - f["z_r"]).abs().mean()
        assert torch.allclose(second["ms_ab"], 1 / (lz + 1e-5))
    else:
        assert "ms_ab" not in second
    # discriminator terms
    dis_a = D(model.disA, f["fake_A"].detach(), 0.0) + D(model.disA, A, 1.0)
    assert torch.allclose(model.image_d_loss(model.disA, A, f["fake_A"]), dis_a)
    dc = sig_bce(model.disContent(f["c_a"]), 0.0) + sig_bce(model.disContent(f["c_b"]), 1.0)
    assert torch.allclose(model.content_d_loss(f["c_a"], f["c_b"]), dc)
    # the encoded translation is G_A(c_b, z_a); the random one G_A(c_b, z_r)
    assert torch.allclose(f["fake_A"], model.gen.forward_a(f["c_b"], f["z_a"]), atol=1e-6)
    assert torch.allclose(f["fake_B_rand"], model.gen.forward_b(f["c_a"], f["z_r"]), atol=1e-6)


def test_update_schedule_content_only_between_full_updates():
    model = tiny_model()
    model._trainer = None
    assert [model.is_full_update(i) for i in range(7)] == [False, False, True, False, False, True, False]


# ---------------------------------------------------------------------------- two-step update
def _params(model, names):
    return [p for n in names for p in getattr(model, n).parameters()]


def test_two_step_update_equals_reference_computation():
    """Step (E_c, E_a, G) on the main loss's gradients, then (E_c, G) on the second loss's
    gradients taken at the *pre-step* parameters, each module with one Adam (twice stepped)."""
    torch.manual_seed(0)
    model = attach(tiny_model().train())
    ref = copy.deepcopy(model)
    one = attach(copy.deepcopy(model))
    one.two_step_update = False
    batch = fixed_batch()

    torch.manual_seed(7)
    model.update_encoders_generator(model.forward_pass(batch))

    torch.manual_seed(7)
    f = ref.forward_pass(batch)
    loss1 = weighted_sum(ref.main_terms(f), ref.loss_weights)
    loss2 = weighted_sum(ref.second_terms(f), ref.loss_weights)
    main, second = ("enc_c", "enc_a", "gen"), ("enc_c", "gen")
    g1 = torch.autograd.grad(loss1, _params(ref, main), retain_graph=True, allow_unused=True)
    g2 = torch.autograd.grad(loss2, _params(ref, second), allow_unused=True)
    adam = {
        n: torch.optim.Adam(getattr(ref, n).parameters(), lr=1e-4, betas=(0.5, 0.999), weight_decay=1e-4)
        for n in main
    }
    for p, g in zip(_params(ref, main), g1):
        p.grad = torch.zeros_like(p) if g is None else g
    for n in main:
        adam[n].step()
    for p, g in zip(_params(ref, second), g2):
        p.grad = torch.zeros_like(p) if g is None else g
    for n in second:
        adam[n].step()

    for (k, p), (_, q) in zip(model.named_parameters(), ref.named_parameters()):
        assert torch.allclose(p, q, atol=1e-7, rtol=0), k

    torch.manual_seed(7)
    one.update_encoders_generator(one.forward_pass(batch))
    differs = [
        k for (k, p), (_, q) in zip(model.named_parameters(), one.named_parameters()) if not torch.equal(p, q)
    ]
    assert any(k.startswith("gen.") for k in differs)
    # enc_a is stepped once in both variants, on the main loss only
    assert not any(k.startswith("enc_a.") for k in differs)
    assert all(
        torch.equal(p, q)
        for k, p in model.named_parameters()
        for k2, q in one.named_parameters()
        if k == k2 and k.startswith("dis")
    )


def test_training_step_runs_both_kinds_of_update():
    model = attach(tiny_model().train())
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    model.training_step(fixed_batch(), 0)  # content-only
    changed = {k for k, v in model.named_parameters() if not torch.equal(v, before[k])}
    assert changed and all(k.startswith("disContent.") for k in changed)
    model.training_step(fixed_batch(), 2)  # full
    changed = {k.split(".")[0] for k, v in model.named_parameters() if not torch.equal(v, before[k])}
    assert changed == {"disA", "disA2", "disB", "disB2", "disContent", "enc_c", "enc_a", "gen"}


# ---------------------------------------------------------------------------- inference
def test_translate_random_and_example_guided():
    torch.manual_seed(0)
    model = tiny_model().eval()
    x, refs = fixed_batch()["A"], fixed_batch(1)["B"]
    out = model.translate(x, "a2b", num_samples=3)
    assert out.shape == (2, 3, 3, 32, 32) and not torch.equal(out[:, 0], out[:, 1])
    guided = model.translate(x, "a2b", reference=refs[:1], num_samples=2)
    assert torch.equal(guided[:, 0], guided[:, 1])
    with torch.no_grad():
        code = model.enc_a.forward_b(refs[:1])[0]
        expected = model.gen.forward_b(model.enc_c.forward_a(x), code.expand(2, -1))
    assert torch.allclose(guided[:, 0], expected, atol=1e-6)
    other = model.translate(x, "a2b", reference=refs[1:2])
    assert not torch.equal(other, guided[:, 0])  # a different reference, a different attribute
    assert model.translate(fixed_batch()["B"], "b2a").shape == (2, 3, 32, 32)


# ---------------------------------------------------------------------------- runs
def _overrides(tmp_path, iters, extra=()):
    return ["model=drit", "data=shapes", "data.size=32", "data.num_fixed=2", "data.val_size=4", "trainer=cpu",
            "logger=csv", f"iters={iters}", "callbacks.progress_bar=null", "callbacks.sample_grid.every_n_iters=3",
            "trainer.enable_model_summary=false", "data.batch_size=2", *TINY, *extra]  # fmt: skip


def test_short_run_on_shapes(tmp_path):
    cfg = compose_config(_overrides(tmp_path, 6), output_dir=tmp_path)
    train(cfg)
    for name in ("config.yaml", "checkpoints/last.ckpt", "metrics.json"):
        assert (tmp_path / name).is_file(), name
    from imtrans.load import load_model

    model = load_model(tmp_path)
    assert model.iteration == 6 and model.translate(torch.zeros(1, 3, 32, 32), "a2b").shape == (1, 3, 32, 32)


def make_domains(root: Path, domains=("cat", "dog"), n=4, size=40):
    g = torch.Generator().manual_seed(0)
    for split in ("train", "test"):
        for i, d in enumerate(domains):
            (root / split / d).mkdir(parents=True, exist_ok=True)
            for k in range(n):
                img = (torch.rand(size, size, 3, generator=g) * 127 + 64 * i).to(torch.uint8).numpy()
                Image.fromarray(img).save(root / split / d / f"{k}.png")


def test_multi_domain_run_and_translate(tmp_path):
    make_domains(tmp_path / "data")
    cfg = compose_config(
        ["model=drit_multi", "data=domains", f"data.root={tmp_path}/data", "data.load_size=36", "data.crop_size=32",
         "data.num_workers=0", "data.batch_size=2", "data.num_fixed=2", "trainer=cpu", "logger=csv", "iters=2",
         "callbacks.progress_bar=null", "callbacks.sample_grid=null", "metrics=none",
         "trainer.enable_model_summary=false", *TINY_MULTI],
        output_dir=tmp_path / "run",
    )  # fmt: skip
    train(cfg)
    from imtrans.load import load_model

    model = load_model(tmp_path / "run")
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    out = model.translate(x, target_domain=1, num_samples=2)
    assert out.shape == (2, 2, 3, 32, 32)
    guided = model.translate(x, target_domain=0, reference=x[:1])
    with torch.no_grad():
        model.eval()
        code = model.encode_style(x[:1], 0)
        assert torch.allclose(guided, model.generate(x, 0, code), atol=1e-6)
    grid = model.sample_grid({"image": x, "domain": torch.tensor([0, 1])}, num_samples=2)
    assert grid.dtype == torch.uint8 and grid.shape[0] == 3  # 2 rows: input + 2 domains x 2 samples


def test_multi_domain_two_step_with_content_dis():
    cfg = compose_config(
        ["model=drit_multi", "data=domains", "data.crop_size=32", *TINY_MULTI, "model.content_dis=true"]
    )
    model = attach(hydra.utils.instantiate(cfg.model).train())
    batch = {"image": torch.rand(2, 3, 32, 32) * 2 - 1, "domain": torch.tensor([0, 1])}
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    model.training_step(batch, 0)
    assert {k.split(".")[0] for k, v in model.named_parameters() if not torch.equal(v, before[k])} == {
        "disContent"
    }
    model.training_step(batch, 2)
    changed = {k.split(".")[0] for k, v in model.named_parameters() if not torch.equal(v, before[k])}
    assert {"dis1", "dis2", "enc_c", "enc_a", "gen"} <= changed


class SaveRankParams(L.Callback):
    def __init__(self, out: Path):
        self.out = out

    def on_train_end(self, trainer, module):
        torch.save(
            {k: v.detach().cpu() for k, v in module.named_parameters()},
            self.out / f"rank{trainer.global_rank}.pt",
        )


@pytest.mark.slow
def test_two_process_ddp_keeps_parameters_identical(tmp_path):
    cfg = compose_config(_overrides(tmp_path, 3, ["trainer=ddp_cpu", "callbacks.sample_grid=null", "model.d_iter=1"]),
                         output_dir=tmp_path)  # fmt: skip
    train(cfg, extra_callbacks=[SaveRankParams(tmp_path)])
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        ["model=drit", "data=shapes", "trainer=ddp_cpu", "iters=4"],
        ["model=drit_multi", "data=domains", "trainer=cpu", "iters=2", "model.num_domains=2", "data.crop_size=64",
         "data.load_size=72"],
    ],
    ids=["drit-ddp_cpu", "drit_multi-cpu"],
)  # fmt: skip
def test_acceptance_commands(args, tmp_path):
    make_domains(tmp_path / "domains", size=80)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "WANDB_MODE": "offline",
           "IMTRANS_DATA": str(tmp_path)}  # fmt: skip
    res = subprocess.run([sys.executable, "-m", "imtrans.run", *args, f"hydra.run.dir={tmp_path}/run"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()
