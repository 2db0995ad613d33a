"""CUT / FastCUT: parameter counts, the PatchNCE loss by hand, patch ids, the update (F steps
with G from iteration 1), FastCUT's flip, the mode settings, the decay-epoch data switch and
short runs (fp32, bf16, 2-process DDP) that reload and translate."""

from __future__ import annotations

import math

import hydra
import pytest
import torch

from imtrans.losses import patch_nce_loss
from imtrans.nets.cut import BlurDownsample, BlurUpsample, PatchSampleF
from imtrans.run import train
from tests.helpers import TINY, compose_config, random_batch, tiny_run_overrides, train_one_step


def _model(extra=(), size=32):
    cfg = compose_config(["model=cut", "data=shapes", f"data.size={size}", *TINY["cut"], *extra])
    return hydra.utils.instantiate(cfg.model)


def _count(module):
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


@pytest.mark.parametrize("mode", ["cut", "fastcut"])
def test_parameter_counts_are_the_official_ones(mode):
    cfg = compose_config(["model=cut", "data=shapes", "data.size=256", f"model.mode={mode}"])
    model = hydra.utils.instantiate(cfg.model)
    assert (_count(model.G), _count(model.D), _count(model.F)) == (11_378_179, 2_764_737, 560_384)
    # plain junyanz layers: the same parameters (the blur kernels are buffers)
    plain = hydra.utils.instantiate(
        compose_config(["model=cut", "data=shapes", "data.size=256", "model.generator.antialias=false"]).model
    )
    assert (_count(plain.G), _count(plain.D)) == (11_378_179, 2_764_737)
    assert not any(isinstance(m, (BlurDownsample, BlurUpsample)) for m in plain.modules())


def test_nce_layers_are_the_official_feature_maps():
    model = _model(size=256, extra=["model.generator.ngf=64", "model.generator.n_blocks=9"])
    with torch.no_grad():
        feats = model.G.encode(torch.zeros(1, 3, 256, 256), model.nce_layers)
    # pad output, the two down convs before their norm and blur, resblocks 1 and 5
    assert [tuple(f.shape[1:]) for f in feats] == [(3, 262, 262), (128, 256, 256), (256, 128, 128),
                                                   (256, 64, 64), (256, 64, 64)]  # fmt: skip
    assert [type(model.G.model[i]).__name__ for i in model.nce_layers] == [
        "ReflectionPad2d", "Conv2d", "Conv2d", "ResBlock", "ResBlock"
    ]  # fmt: skip


def test_mode_settings():
    cut = compose_config(["model=cut", "data=shapes", "model.mode=cut"])
    fast = compose_config(["model=cut", "data=shapes", "model.mode=fastcut"])
    for cfg, nce, idt, flip, epochs in (
        (cut, 0.5, 0.5, False, (200, 200)),
        (fast, 10.0, 0.0, True, (150, 50)),
    ):
        w = cfg.loss.weights
        assert (w.gan, w.nce, w.nce_Y, w.D_real, w.D_fake) == (1.0, nce, idt, 0.5, 0.5)
        assert cfg.model.flip_equivariance is flip
        assert (cfg.model.scheduler.n_epochs, cfg.model.scheduler.n_epochs_decay) == epochs
        assert cfg.model.no_crop_from_epoch == epochs[0]
        opt = cfg.model.optimizer
        assert (opt.lr, list(opt.betas), cfg.model.init_type, cfg.model.init_gain) == (
            2e-4,
            [0.5, 0.999],
            "xavier",
            0.02,
        )
        assert (cfg.model.num_patches, cfg.model.nce_temperature, list(cfg.model.nce_layers)) == (
            256,
            0.07,
            [0, 4, 8, 12, 16],
        )
    model = hydra.utils.instantiate(fast.model)
    assert not model.nce_idt and model.flip_equivariance
    assert model.train_data_schedule() == [(150, {"load_size": 64})]  # shapes: crop = size = 64


def test_patch_nce_by_hand():
    """N=2 images, P=3 patches, D=2, tau=0.5: the logits written out one by one."""
    g = torch.Generator().manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(6, 2, generator=g), dim=1)
    k = torch.nn.functional.normalize(torch.randn(6, 2, generator=g), dim=1)
    got = patch_nce_loss(q, k, num_images=2, temperature=0.5)
    expected = []
    for n in range(2):
        for p in range(3):
            row = n * 3 + p
            logits = [float(q[row] @ k[row])]  # the positive: the same place
            for j in range(3):  # negatives: the patches of the same image; own place -> -10
                logits.append(-10.0 if j == p else float(q[row] @ k[n * 3 + j]))
            logits = [x / 0.5 for x in logits]
            expected.append(-logits[0] + math.log(sum(math.exp(x) for x in logits)))
    torch.testing.assert_close(got, torch.tensor(expected), rtol=0, atol=1e-6)
    # no gradient reaches the key side
    q.requires_grad_(True), k.requires_grad_(True)
    patch_nce_loss(q, k, 2).sum().backward()
    assert q.grad.abs().sum() > 0 and k.grad is None


def test_patch_ids_shared_by_query_and_key_fresh_per_layer(monkeypatch):
    torch.manual_seed(0)
    model = _model()
    calls = []
    forward = PatchSampleF.forward

    def record(self, feats, num_patches=256, patch_ids=None):
        out, ids = forward(self, feats, num_patches, patch_ids)
        calls.append((patch_ids, ids, [f.shape for f in feats]))
        return out, ids

    monkeypatch.setattr(PatchSampleF, "forward", record)
    b = random_batch(0, n=2, size=32)
    model.nce(b["A"], model.G(b["A"]))
    (key_given, key_ids, _), (query_given, query_ids, shapes) = calls
    assert key_given is None and query_given is key_ids  # the query reuses the key's ids
    assert all(torch.equal(a, b) for a, b in zip(key_ids, query_ids))
    # 256 of 38*38, 32*32, 16*16 locations, and all 64 of the 8x8 maps (a permutation)
    assert [len(i) for i in key_ids] == [256, 256, 256, 64, 64]
    assert sorted(key_ids[3].tolist()) == list(range(64))
    assert not torch.equal(key_ids[3], key_ids[4])  # layers 12 and 16: same size, new draw
    assert not torch.equal(key_ids[0], key_ids[1])


def test_terms_on_a_fixed_batch():
    torch.manual_seed(0)
    model = _model()
    b = random_batch(1, n=2, size=32)
    A, B = b["A"], b["B"]
    made = model.translations(A, B)
    with torch.no_grad():
        torch.testing.assert_close(made["fake_B"], model.G(A))  # CUT: G on cat(A, B) = per image
        torch.testing.assert_close(made["idt_B"], model.G(B))
    torch.manual_seed(5)
    terms = model.generator_terms(A, B, made)
    torch.manual_seed(5)  # the same patch draws, in the same order
    nce_x, nce_y = model.nce(A, made["fake_B"]), model.nce(B, made["idt_B"])
    assert set(terms) == {"gan", "nce", "nce_Y"}
    torch.testing.assert_close(terms["gan"], ((model.D(made["fake_B"]) - 1) ** 2).mean())
    torch.testing.assert_close(terms["nce"], nce_x)
    torch.testing.assert_close(terms["nce_Y"], nce_y)
    d = model.discriminator_terms(B, made["fake_B"])
    torch.testing.assert_close(d["D_real"], ((model.D(B) - 1) ** 2).mean())
    torch.testing.assert_close(d["D_fake"], (model.D(made["fake_B"]) ** 2).mean())
    # an NCE of a layer by hand: sampled, embedded, normalised features of layer 16
    torch.manual_seed(7)
    ids = torch.randperm(64)  # layer 16 at 32 px: 8 x 8 locations, all of them
    feat_k = model.G.encode(A, model.nce_layers)[4].permute(0, 2, 3, 1).flatten(1, 2)[:, ids].flatten(0, 1)
    emb = model.F.mlp_4(feat_k)
    unit = emb / (emb.norm(dim=1, keepdim=True) + 1e-7)
    f_single = PatchSampleF([model.G.feature_channels([16])[0]], nc=16)
    f_single.mlp_0.load_state_dict(model.F.mlp_4.state_dict())
    torch.manual_seed(7)
    (emb_f,), _ = f_single([model.G.encode(A, [16])[0]], 256)
    torch.testing.assert_close(emb_f, unit)


@pytest.mark.parametrize("mode", ["cut", "fastcut"])
def test_keys_come_from_the_generator_pass_not_a_second_encode(mode, monkeypatch):
    """PatchNCE's keys are G's features of the inputs: read on the way through the iteration's
    generator pass, they equal a separate encode of each input (the official code's second
    pass); only FastCUT's flipped iterations encode the unflipped input again."""
    torch.manual_seed(0)
    model = _model([f"model.mode={mode}"])
    b = random_batch(3, n=2, size=32)
    monkeypatch.setattr(torch, "rand", lambda *a, **k: torch.ones(()))  # the coin: no flip
    made = model.translations(b["A"], b["B"])
    monkeypatch.undo()
    with torch.no_grad():
        for name in ("A", "B") if mode == "cut" else ("A",):
            expected = model.G.encode(b[name], model.nce_layers)
            for got, want in zip(made[f"keys_{name}"], expected, strict=True):
                assert got.grad_fn is None
                if mode == "fastcut":  # the same batch through the same layers: bit for bit
                    assert torch.equal(got, want)
                else:  # CUT's pass runs A and B as one batch: float order only
                    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    encoded = []
    encode = model.G.encode
    monkeypatch.setattr(model.G, "encode", lambda x, layers: encoded.append(x) or encode(x, layers))
    model.generator_terms(b["A"], b["B"], made)
    # the queries only: fake_B (and idt_B for CUT), never the real images
    assert [x is made["fake_B"] or x is made["idt_B"] for x in encoded] == [True] * (
        2 if mode == "cut" else 1
    )
    if mode == "fastcut":  # a flipped iteration: no keys from the pass, A encoded for them
        monkeypatch.setattr(torch, "rand", lambda *a, **k: torch.zeros(()))
        flipped = model.translations(b["A"], b["B"])
        assert flipped["flipped"] and flipped["keys_A"] is None


def test_update_order_and_F_steps_from_the_first_iteration():
    torch.manual_seed(0)
    model = _model()
    order = []
    original = model.optimize

    def optimize(name, fn, **kw):
        order.append(name)
        return original(name, fn, **kw)

    model.optimize = optimize
    calls = []
    model.G.register_forward_hook(lambda *_: calls.append(1))
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    train_one_step(model, random_batch(0, n=1, size=32))
    assert order == ["D", ("G", "F")]
    assert len(calls) == 1  # one full generator pass for cat(A, B); the encodes stop early
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.F.parameters())
    changed = {
        k.split(".")[0]
        for k, v in model.state_dict().items()
        if v.is_floating_point() and not torch.equal(v, before[k])
    }
    assert changed == {"G", "D", "F"}
    assert [type(o).__name__ for o in model.trainer.strategy.optimizers] == ["Adam"] * 3
    assert len(model.trainer.strategy.optimizers[2].state) == len(list(model.F.parameters()))  # stepped


def test_fastcut_flips_the_input_and_the_query_features_back(monkeypatch):
    torch.manual_seed(0)
    model = _model(["model.mode=fastcut"])
    b = random_batch(2, n=2, size=32)
    monkeypatch.setattr(torch, "rand", lambda *a, **k: torch.zeros(()))  # the coin says: flip
    made = model.translations(b["A"], b["B"])
    monkeypatch.undo()
    assert made["flipped"] and made["idt_B"] is None
    with torch.no_grad():
        torch.testing.assert_close(made["fake_B"], model.G(b["A"].flip(3)))  # D sees the flipped fake
    seen = {}
    forward = PatchSampleF.forward

    def record(self, feats, num_patches=256, patch_ids=None):
        seen["key" if patch_ids is None else "query"] = [f.detach() for f in feats]
        return forward(self, feats, num_patches, patch_ids)

    monkeypatch.setattr(PatchSampleF, "forward", record)
    model.nce(b["A"], made["fake_B"], flipped=True)
    with torch.no_grad():
        queries = model.G.encode(made["fake_B"], model.nce_layers)
        keys = model.G.encode(b["A"], model.nce_layers)  # the unflipped input
    for got, q in zip(seen["query"], queries):
        torch.testing.assert_close(got, q.flip(3))
    for got, k in zip(seen["key"], keys):
        torch.testing.assert_close(got, k)


def test_blur_layers_keep_constants_and_sizes():
    x = torch.full((1, 2, 8, 6), 0.3)
    torch.testing.assert_close(BlurDownsample(2)(x), torch.full((1, 2, 4, 3), 0.3))
    torch.testing.assert_close(BlurUpsample(2)(x), torch.full((1, 2, 16, 12), 0.3))
    # the [1, 2, 1] blur: a single bright pixel spreads to its neighbours with those weights
    impulse = torch.zeros(1, 1, 5, 5)
    impulse[0, 0, 2, 2] = 16.0
    down = BlurDownsample(1)(impulse)
    torch.testing.assert_close(down[0, 0], torch.tensor([[0.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 0.0]]))


@pytest.mark.parametrize("precision", ["32", "bf16-mixed"])
def test_short_run_reloads_and_translates(tmp_path, precision):
    from imtrans.load import load_model

    extra = [f"trainer.precision={precision}", "metrics=none"]
    cfg = compose_config(tiny_run_overrides("cut", "shapes", iters=3, extra=extra), output_dir=tmp_path)
    train(cfg)
    restored = load_model(tmp_path)
    assert restored.iteration == 3
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    y = restored.translate(x, "a2b")
    assert y.shape == x.shape and torch.isfinite(y).all() and y.abs().max() <= 1
    with pytest.raises(ValueError, match="b2a"):
        restored.translate(x, "b2a")
    assert (tmp_path / "samples" / "iter_0000002.png").is_file()


def test_an_all_zero_embedding_keeps_gradients_finite():
    from imtrans.nets.cut import l2_normalize

    x = torch.zeros(3, 4)
    x[0] = torch.tensor([3.0, 4.0, 0.0, 0.0])
    x.requires_grad_(True)
    y = l2_normalize(x)
    torch.testing.assert_close(y[0].detach(), torch.tensor([0.6, 0.8, 0.0, 0.0]))
    assert torch.equal(y[1:].detach(), torch.zeros(2, 4))
    y.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_presets():
    def cfg(name):
        return compose_config([f"experiment={name}"])

    h2z, fast, city, cat = (
        cfg(n) for n in ("cut_horse2zebra", "fastcut_horse2zebra", "cut_cityscapes", "cut_cat2dog")
    )
    for c in (h2z, fast, city, cat):
        assert c.hydra.runtime.choices.model == "cut" and c.metrics.protocol == "cut"
        assert (c.data.load_size, c.data.crop_size, c.data.batch_size) == (286, 256, 1)
    assert (h2z.trainer.max_epochs, fast.trainer.max_epochs) == (400, 200)
    assert (h2z.model.mode, fast.model.mode, fast.loss.weights.nce) == ("cut", "fastcut", 10.0)
    assert city.data.direction == "BtoA" and city.data.name == "cityscapes_cut"
    assert list(cat.data.domains) == ["cat", "dog"] and cat.data.root.endswith("/afhq")
    assert h2z.model.no_crop_from_epoch == 200 and fast.model.no_crop_from_epoch == 150
