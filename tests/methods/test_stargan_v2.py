"""StarGAN v2: R1 and the diversity term against hand computations, the lambda_ds decay, the four
updates and which networks each steps, the EMA (its formula, from iteration 0, from PyTorch's
default init), short runs (fp32, bf16) that reload and translate both ways, the grids, DDP, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import hydra
import pytest
import torch
from PIL import Image

from imtrans.callbacks import GeneratorEMA
from imtrans.methods import stargan_v2 as sg
from imtrans.run import train
from tests.helpers import compose_config, train_one_step
from tests.methods.test_drit import make_domains

REPO = Path(__file__).resolve().parents[2]
TINY = [
    "model.generator.dim_in=4", "model.generator.max_conv_dim=8", "model.style_encoder.dim_in=4",
    "model.style_encoder.max_conv_dim=8", "model.discriminator.dim_in=4", "model.discriminator.max_conv_dim=8",
    "model.mapping_network.hidden_dim=16", "model.style_dim=8",
]  # fmt: skip
NETS = ("generator", "mapping_network", "style_encoder", "discriminator")


def run_overrides(tmp_path: Path, iters: int, extra=()) -> list[str]:
    """A tiny run on 3 generated domain folders at 32 px (batch 4)."""
    make_domains(tmp_path / "data", domains=("a", "b", "c"))
    return [
        "model=stargan_v2", "data=domains", f"data.root={tmp_path}/data", "data.load_size=36", "data.crop_size=32",
        "data.num_workers=0", "data.batch_size=4", "data.num_fixed=2", "trainer=cpu", "logger=csv", f"iters={iters}",
        "callbacks.progress_bar=null", "trainer.enable_model_summary=false", *TINY, *extra,
    ]  # fmt: skip


def _model(extra=()):
    cfg = compose_config(["model=stargan_v2", "data=domains", "data.crop_size=32", *TINY, *extra])
    return hydra.utils.instantiate(cfg.model)


def _batch(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"image": torch.rand(n, 3, 32, 32, generator=g) * 2 - 1, "domain": torch.tensor([0, 1, 2, 1][:n])}


def test_config_is_official():
    cfg = compose_config(["experiment=stargan_v2_afhq", "trainer=cpu"])
    m, opt = cfg.model, cfg.model.optimizer
    assert (m.num_domains, m.w_hpf, m.latent_dim, m.style_dim, m.ds_iter, m.ema_decay) == (
        3,
        0,
        16,
        64,
        100000,
        0.999,
    )
    assert (opt.lr, list(opt.betas), opt.weight_decay) == (1e-4, [0.0, 0.99], 1e-4)
    assert m.optimizer_overrides.mapping_network.lr == 1e-6 and m.scheduler is None
    assert (cfg.iters, cfg.data.batch_size, cfg.data.crop_size) == (100000, 8, 256)
    assert dict(cfg.loss.weights) == {"real": 1, "fake": 1, "r1": 1, "adv": 1, "sty": 1, "ds": 2, "cyc": 1}
    celeba = compose_config(["experiment=stargan_v2_celeba_hq", "trainer=cpu"])
    assert (celeba.model.num_domains, celeba.model.w_hpf, celeba.loss.weights.ds) == (2, 1, 1.0)
    assert celeba.model.fan._target_ == "imtrans.nets.stargan_v2.load_fan"
    assert list(celeba.data.domains) == ["female", "male"] and celeba.data.batch_size == 8
    for c in (cfg, celeba):  # the official training data (core/data_loader.py)
        d = c.data
        assert (d.preprocess, d.resample, d.balanced, d.references) == (
            "random_resized_crop",
            "bilinear",
            True,
            True,
        )


def test_r1_penalty_by_hand():
    # D(x) = sum(w * x) per image: dD/dx = w, so R1 = 0.5 * sum(w^2) for every image
    w = torch.randn(3, 4, 4)
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    out = (x * w).flatten(1).sum(1)
    torch.testing.assert_close(sg.r1_penalty(out, x), 0.5 * w.pow(2).sum())
    # a quadratic D: dD/dx_i = 2 x_i, R1 = 0.5 * mean_i sum 4 x_i^2
    out = x.pow(2).flatten(1).sum(1)
    r1 = sg.r1_penalty(out, x)
    torch.testing.assert_close(r1, 0.5 * (4 * x.detach().pow(2)).flatten(1).sum(1).mean())
    assert r1.requires_grad  # create_graph: the penalty trains D


def test_diversity_weight_decays_linearly_to_zero():
    model = _model(["loss.weights.ds=2", "model.ds_iter=10"])
    assert [model.lambda_ds(t) for t in (1, 2, 6, 11, 50)] == pytest.approx([2.0, 1.8, 1.0, 0.0, 0.0])


def test_generator_terms_and_the_diversity_sign():
    torch.manual_seed(0)
    model = _model(["loss.weights.ds=2", "model.ds_iter=10"])
    model._iteration.fill_(6)  # lambda_ds = 1
    b = _batch()
    x, y, y_trg = b["image"], b["domain"], torch.tensor([2, 2, 0, 1])
    s, s2 = torch.randn(4, 8), torch.randn(4, 8)
    fake = model.generator(x, s)
    terms = model.generator_terms(x, y, y_trg, s, fake, s2, None)
    with torch.no_grad():
        fake2 = model.generator(x, s2)
        logits = model.discriminator(fake, y_trg)
        rec = model.generator(fake, model.style_encoder(x, y))
    torch.testing.assert_close(terms["ds"], (fake - fake2).abs().mean())
    torch.testing.assert_close(terms["adv"], torch.nn.functional.softplus(-logits).mean())
    torch.testing.assert_close(terms["sty"], (model.style_encoder(fake, y_trg) - s).abs().mean())
    torch.testing.assert_close(terms["cyc"], (rec - x).abs().mean())
    model.log_dict = lambda *a, **k: None
    with model._weights(ds=-model.lambda_ds()):
        total = model.weigh(terms)
    expected = terms["adv"] + terms["sty"] - 1.0 * terms["ds"] + terms["cyc"]
    torch.testing.assert_close(total, expected)
    # the second output is detached: the diversity term's gradient flows through `fake` only
    (g_fake,) = torch.autograd.grad(terms["ds"], fake, retain_graph=True)
    torch.testing.assert_close(g_fake, torch.sign(fake - fake2) / fake.numel())
    model._iteration.fill_(11)  # lambda_ds = 0: the term (and its second translation) is left out
    assert "ds" not in model.generator_terms(x, y, y_trg, s, fake, s2, None)


def test_four_updates_step_the_official_networks(monkeypatch):
    torch.manual_seed(0)
    model = _model()
    steps = []
    original = model.optimize

    def optimize(name, fn, **kw):
        before = {n: [p.detach().clone() for p in getattr(model, n).parameters()] for n in NETS}
        loss = original(name, fn, **kw)
        moved = {
            n
            for n in NETS
            if any(not torch.equal(a, p) for a, p in zip(before[n], getattr(model, n).parameters()))
        }
        steps.append((name, moved))
        return loss

    model.optimize = optimize
    train_one_step(model, _batch())
    assert steps == [
        ("discriminator", {"discriminator"}),
        ("discriminator", {"discriminator"}),
        (
            ("generator", "mapping_network", "style_encoder"),
            {"generator", "mapping_network", "style_encoder"},
        ),
        ("generator", {"generator"}),
    ]
    lrs = {n: model.opt(n).param_groups[0]["lr"] for n in NETS}
    assert lrs == {"generator": 1e-4, "mapping_network": 1e-6, "style_encoder": 1e-4, "discriminator": 1e-4}


def test_references_drawn_from_the_batch():
    torch.manual_seed(0)
    model = _model()
    b = _batch()
    for _ in range(5):
        ref, ref2, y_trg = model.references(b)
        for i in range(4):
            j = next(k for k in range(4) if torch.equal(ref[i], b["image"][k]))
            k2 = next(k for k in range(4) if torch.equal(ref2[i], b["image"][k]))
            assert b["domain"][j] == y_trg[i] == b["domain"][k2]
            if y_trg[i] == 1:  # domain 1 has two images: the second reference is the other one
                assert k2 != j
    given = {**b, "ref": b["image"].flip(0), "ref2": b["image"], "ref_domain": torch.tensor([1, 2, 1, 0])}
    ref, ref2, y_trg = model.references(given)
    assert torch.equal(ref, given["ref"]) and torch.equal(y_trg, given["ref_domain"])


def test_ema_formula_from_iteration_0_and_default_init():
    torch.manual_seed(0)
    model = _model()
    (ema_cb,) = model.recipe_callbacks()
    assert isinstance(ema_cb, GeneratorEMA) and (ema_cb.decay, ema_cb.start_iter) == (0.999, 0)
    model.enable_ema()
    assert set(model.ema) == {"generator", "mapping_network", "style_encoder"}
    # the averages start from PyTorch's default init (kaiming-uniform a=sqrt 5, std 1/sqrt(3 fan_in)),
    # not the He-initialised weights (std sqrt(2 / fan_in))
    live, avg = model.mapping_network.shared[2].weight, model.ema["mapping_network"].shared[2].weight
    assert (live.std() / avg.std()).item() == pytest.approx(6**0.5, rel=0.15)
    before = {n: [p.clone() for p in m.parameters()] for n, m in model.ema.items()}
    model._iteration.fill_(1)  # the first iteration
    ema_cb.on_train_batch_end(None, model, None, None, 0)
    for name, averaged in model.ema.items():
        for p0, p, w in zip(before[name], averaged.parameters(), getattr(model, name).parameters()):
            torch.testing.assert_close(p, 0.999 * p0 + 0.001 * w)


OFFICIAL_DATA = ["data.preprocess=random_resized_crop", "data.resample=bilinear", "data.balanced=true",
                 "data.references=true"]  # fmt: skip


@pytest.mark.parametrize("precision", ["32", "bf16-mixed"])
def test_short_run_reloads_and_translates_both_ways(tmp_path, precision, monkeypatch):
    from imtrans.load import load_model

    extra = [f"trainer.precision={precision}", "callbacks.sample_grid.every_n_iters=100", "metrics=none"]
    if precision == "32":  # the official data pipeline: the reference pairs come with the batch
        extra += OFFICIAL_DATA
    refs_in_batch = []
    original = sg.StarGANv2.references
    monkeypatch.setattr(
        sg.StarGANv2, "references", lambda self, b: refs_in_batch.append("ref" in b) or original(self, b)
    )
    train(compose_config(run_overrides(tmp_path, 3, extra), output_dir=tmp_path / "run"))
    assert refs_in_batch == [precision == "32"] * 3
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    assert any(k.startswith("ema.mapping_network.") for k in ckpt["state_dict"])  # the recipe's EMA ran
    restored = load_model(tmp_path / "run")
    assert restored.iteration == 3 and restored.ema is not None
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    latent = restored.translate(x, target_domain=2, num_samples=3)
    assert latent.shape == (2, 3, 3, 32, 32) and torch.isfinite(latent).all()
    assert not torch.equal(latent[:, 0], latent[:, 1])  # sampled latents differ
    z = torch.randn(1, 16)
    torch.testing.assert_close(
        restored.translate(x, target_domain=1, style=z), restored.translate(x, target_domain=1, style=z)
    )
    ref = restored.translate(x, target_domain=0, reference=x.flip(0))
    assert ref.shape == (2, 3, 32, 32) and torch.isfinite(ref).all()
    with pytest.raises(ValueError, match="target_domain"):
        restored.translate(x, "a2b")
    # the grid (titled): a reference row (one image of each domain of the 2 fixed inputs, a and
    # b) above the 2 input rows; input + 6 styles x 3 domains + 2 references
    from imtrans.callbacks.images import title_band_height, title_band_width

    grid = Image.open(tmp_path / "run" / "samples" / "iter_0000003.png")
    top, left = title_band_height(32), title_band_width(["reference", "a", "b"], 32)
    assert grid.size == (left + 2 + (1 + 6 * 3 + 2) * 34, top + 2 + (1 + 2) * 34)


@pytest.mark.slow
def test_two_process_ddp_keeps_parameters_identical(tmp_path):
    from tests.test_run import SaveRankParams

    extra = ["trainer=ddp_cpu", "callbacks.sample_grid=null", "data.batch_size=2", "metrics=none"]
    train(
        compose_config(run_overrides(tmp_path, 3, extra), output_dir=tmp_path / "run"),
        extra_callbacks=[SaveRankParams(tmp_path)],
    )
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    init = torch.load(tmp_path / "init.pt")
    assert r0.keys() == r1.keys()
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
    assert r0.pop("iteration").item() == 3
    assert all(not torch.equal(r0[k], init[k]) for k in init if k.startswith("discriminator."))


@pytest.mark.slow
def test_cli_run_writes_the_grids(tmp_path):
    make_domains(tmp_path / "data", domains=("a", "b", "c"))
    args = ["model=stargan_v2", "data=domains", f"data.root={tmp_path}/data", "data.load_size=36", "data.crop_size=32",
            "data.batch_size=4", "data.num_workers=0", "trainer=cpu", "logger=csv", "metrics=none", "iters=2",
            *TINY, f"hydra.run.dir={tmp_path}/run"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "WANDB_MODE": "offline"}
    res = subprocess.run([sys.executable, "-m", "imtrans.run", *args], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=600)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    grids = sorted((tmp_path / "run" / "samples").glob("*.png"))
    assert grids
    # every grid: the title band, the reference row, then the 4 fixed inputs (a, b, c, a)
    from imtrans.callbacks.images import title_band_height

    assert all(Image.open(p).size[1] == title_band_height(32) + 2 + (1 + 4) * 34 for p in grids)
