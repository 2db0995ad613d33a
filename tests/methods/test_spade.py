"""SPADE / GauGAN (model=spade): the loss values of the official code on its own discriminator
outputs, the official update order and TTUR, translate (label maps of any size, instance maps,
the dontcare id, VAE styles, references, samples), the size and label checks before training, a
short run of each preset on tiny data sets in the official layouts, resume, 2-process DDP."""

from __future__ import annotations

import json
from pathlib import Path

import hydra
import numpy as np
import pytest
import torch
from PIL import Image

from imtrans.errors import ConfigError
from imtrans.load import load_model
from imtrans.official.formats import spade as fmt
from imtrans.run import train
from tests.conftest import count_params
from tests.helpers import compose_config, train_one_step

FIXTURES = Path(__file__).resolve().parents[1] / "official" / "fixtures" / "spade"
CITY = FIXTURES / "cityscapes_small"

#: tiny networks (G 2 filters at the end, SPADE hidden width 4, D 2 filters)
TINY = ["model.generator.ngf=2", "model.generator.nhidden=4", "model.discriminator.ndf=2"]
#: a 1 x 8 latent map grown to 32 x 256: small images, and the crop_size of 256 that the VAE
#: encoder needs (its 256 x 256 input is fixed whatever the crop)
WIDE = [
    "model.generator.crop_size=256",
    "model.generator.aspect_ratio=8",
    "model.generator.num_upsampling_layers=normal",
]
VAE = ["model.generator.use_vae=true"]


# ---------------------------------------------------------------------------- tiny data sets
def _blocks(rng: np.random.RandomState, h: int, w: int, ids: list[int], cell: int = 8) -> np.ndarray:
    """An h x w map of cell x cell blocks, each one of ``ids``."""
    grid = rng.choice(ids, size=(-(-h // cell), -(-w // cell)))
    return np.kron(grid, np.ones((cell, cell), dtype=grid.dtype))[:h, :w]


def _photo(rng: np.random.RandomState, label: np.ndarray) -> Image.Image:
    colours = rng.randint(0, 256, (256, 3), dtype=np.uint8)
    return Image.fromarray(colours[label.astype(np.int64)])


def write_cityscapes(root: Path, size=(256, 32), n_train=3, n_test=2) -> Path:
    """Cityscapes in pix2pixHD's folders (what data=cityscapes reads): ``labelIds`` 0..33,
    16-bit ``instanceIds`` (class * 1000 + k for the classes with instances), photos."""
    if (root / "train_label").is_dir():
        return root
    rng = np.random.RandomState(0)
    w, h = size
    for split, n in (("train", n_train), ("test", n_test)):
        for i in range(n):
            stem = f"city_{i:06d}_000019"
            label = _blocks(rng, h, w, [7, 8, 11, 21, 23, 24, 26]).astype(np.uint8)
            inst = np.where(
                label >= 24, label.astype(np.int32) * 1000 + rng.randint(0, 2, label.shape), label
            )
            for kind, image in (
                ("label", Image.fromarray(label)),
                ("inst", Image.fromarray(inst.astype(np.uint16))),
                ("img", _photo(rng, label)),
            ):
                (root / f"{split}_{kind}").mkdir(parents=True, exist_ok=True)
                suffix = {"label": "gtFine_labelIds", "inst": "gtFine_instanceIds", "img": "leftImg8bit"}[
                    kind
                ]
                image.save(root / f"{split}_{kind}" / f"{stem}_{suffix}.png")
    return root


def write_ade20k(root: Path, side=72) -> Path:
    """ADE20K as unpacked (ADEChallengeData2016): annotations/{training,validation}/ADE_*.png with
    ids 0 (other) .. 150, images/{training,validation}/ADE_*.jpg."""
    rng = np.random.RandomState(1)
    for split, n in (("training", 2), ("validation", 1)):
        for i in range(n):
            stem = f"ADE_{'train' if split == 'training' else 'val'}_{i + 1:08d}"
            label = _blocks(rng, side, side, [0, 1, 5, 17, 150]).astype(np.uint8)
            for folder, image, ext in (
                ("annotations", Image.fromarray(label), "png"),
                ("images", _photo(rng, label), "jpg"),
            ):
                (root / folder / split).mkdir(parents=True, exist_ok=True)
                image.save(root / folder / split / f"{stem}.{ext}")
    return root


def write_coco(root: Path, side=72) -> Path:
    """COCO-Stuff in SPADE's folders: {train,val}_{label,inst,img}/, ids 0..181 and 255
    (unlabelled), 8-bit instance maps."""
    rng = np.random.RandomState(2)
    for split, n in (("train", 2), ("val", 1)):
        for i in range(n):
            stem = f"{i:012d}"
            label = _blocks(rng, side, side, [0, 3, 95, 181, 255]).astype(np.uint8)
            inst = (label // 2 + rng.randint(0, 2, label.shape)).astype(np.uint8)
            for kind, image in (("label", Image.fromarray(label)), ("inst", Image.fromarray(inst))):
                (root / f"{split}_{kind}").mkdir(parents=True, exist_ok=True)
                image.save(root / f"{split}_{kind}" / f"{stem}.png")
            (root / f"{split}_img").mkdir(parents=True, exist_ok=True)
            _photo(rng, label).save(root / f"{split}_img" / f"{stem}.jpg")
    return root


def run_overrides(tmp_path: Path, iters: int = 2, extra: list[str] | None = None) -> list[str]:
    """A tiny run on a tiny Cityscapes-like set (32 x 256, 35 labels and instance maps), for
    every-method tests (``tests.helpers.method_overrides``)."""
    root = write_cityscapes(tmp_path / "spade_data")
    return [
        "model=spade",
        "data=cityscapes",
        f"data.root={root}",
        "data.load_size=256",
        "data.num_workers=0",
        "data.num_fixed=2",
        "data.val_size=2",
        "trainer=cpu",
        "logger=csv",
        f"iters={iters}",
        "callbacks.progress_bar=null",
        "trainer.enable_model_summary=false",
        *TINY,
        *WIDE,
        *(extra or []),
    ]


def _model(extra=(), data="cityscapes"):
    cfg = compose_config(["model=spade", f"data={data}", "loss.weights.vgg=0", *TINY, *WIDE, *extra])
    torch.manual_seed(0)
    return hydra.utils.instantiate(cfg.model)


def _batch(n=2, h=32, w=256, label_nc=35, seed=0):
    g = torch.Generator().manual_seed(seed)
    label = torch.randint(0, label_nc, (n, h // 8, w // 8), generator=g)
    label = label.repeat_interleave(8, 1).repeat_interleave(8, 2)
    inst = label * 1000 + torch.randint(0, 2, label.shape, generator=g)
    return {"label": label, "inst": inst, "B": torch.rand(n, 3, h, w, generator=g) * 2 - 1}


@pytest.fixture
def vgg19():
    """A random-weight VGG19 file where the perceptual loss looks for it."""
    from tests.methods.test_pix2pixhd import _write_vgg

    return _write_vgg(Path(torch.hub.get_dir()).parent)


# ---------------------------------------------------------------------------- losses
@pytest.mark.recorded
def test_loss_terms_give_the_official_values():
    """losses.pt: the official G and D losses (eval mode, no VGG) for a given fake/real pair;
    our terms through the method's own loss code and the loss group's weights, with the
    official discriminator loaded from the fixture."""
    imported = fmt.read(CITY)
    cfg = compose_config([*imported.overrides, "loss.weights.vgg=0"])
    model = hydra.utils.instantiate(cfg.model)
    model.netD.load_state_dict(torch.load(CITY / "latest_net_D.pth", weights_only=True))
    model.eval()
    w = model.loss_weights
    assert (w["gan"], w["feat"], w["vgg"], w["kld"], w["D_real"], w["D_fake"]) == (1, 10, 0, 0.05, 1, 1)
    ref = torch.load(CITY / "losses.pt", weights_only=True)
    sem = model.semantics(ref["label"], ref["inst"])
    with torch.no_grad():
        g = model.generator_losses(sem, ref["fake"], ref["real"])
        d = model.discriminator_losses(sem, ref["fake"], ref["real"])
    assert set(g) == {"gan", "feat"} and set(d) == {"D_fake", "D_real"}
    for ours, theirs in (
        (w["gan"] * g["gan"], ref["G_losses"]["GAN"]),
        (w["feat"] * g["feat"], ref["G_losses"]["GAN_Feat"]),
        (w["D_fake"] * d["D_fake"], ref["D_losses"]["D_Fake"]),
        (w["D_real"] * d["D_real"], ref["D_losses"]["D_real"]),
    ):
        assert abs(ours.item() - theirs.item()) < 1e-4, (ours.item(), theirs.item())


def test_update_order_ttur_and_vae_terms():
    """G (and E) step, then D step on the fake of the updated G made again in train mode: G, E
    and D run twice per iteration (the SPADE BatchNorms count two batches), D once per step on
    the fake and real pairs together; TTUR rates and betas; KL only with use_vae."""
    model = _model(VAE)
    assert model.netE is not None and model.is_multimodal
    calls = []
    for name in ("netE", "netG", "netD"):
        net = getattr(model, name)
        net.register_forward_hook(lambda m, args, out, n=name: calls.append((n, args[0].shape[0])))
    step = model.optimize
    model.optimize = lambda name, fn, **kw: calls.append(name) or step(name, fn, **kw)
    terms = {}
    weigh = model.weigh
    model.weigh = lambda t, **kw: terms.update(t) or weigh(t, **kw)
    batch = _batch(n=1)
    train_one_step(model, batch)
    assert calls == ["G", ("netE", 1), ("netG", 1), ("netD", 2), "D", ("netE", 1), ("netG", 1), ("netD", 2)]
    assert set(terms) == {"gan", "feat", "kld", "D_fake", "D_real"}
    assert int(model.netG.head_0.norm_0.param_free_norm.num_batches_tracked) == 2
    opts = model.trainer.strategy.optimizers
    (g,), (d,) = (o.param_groups for o in opts)
    assert (g["lr"], d["lr"], g["betas"], d["betas"]) == (1e-4, 4e-4, (0.0, 0.9), (0.0, 0.9))
    assert len(g["params"]) == len(list(model.netG.parameters())) + len(list(model.netE.parameters()))
    # no_TTUR: both at lr (the betas are the config's)
    plain = _model(["model.no_TTUR=true"])
    assert plain._optimizer_overrides == {} and plain.netE is None and not plain.is_multimodal


def test_init_is_xavier_with_gain_002_in_weight_orig():
    model = _model()
    w = model.netG.up_0.conv_0.weight_orig  # a spectral-norm conv: the init lands in weight_orig
    fan_in, fan_out = w.shape[1] * 9, w.shape[0] * 9
    assert w.std().item() == pytest.approx(0.02 * (2 / (fan_in + fan_out)) ** 0.5, rel=0.2)
    assert model.netG.fc.bias.abs().max() == 0


# ---------------------------------------------------------------------------- translate
def test_translate_label_maps_of_any_size_instances_and_dontcare():
    model = _model()
    spec = model.inference_spec()
    assert (spec.input_kind, spec.label_nc, spec.instance_maps, spec.samples, spec.style) == (
        "labels", 35, True, False, None,
    )  # fmt: skip
    assert spec.size_multiple == 1 and spec.task_names == ["a2b"]
    b = _batch()
    y = model.translate({"label": b["label"], "inst": b["inst"]})
    assert y.shape == (2, 3, 32, 256) and y.abs().max() <= 1
    # the generator's own size: no resampling (the identity), so equal to G on the semantic map
    with torch.no_grad(), model.generators_in_inference_mode():
        assert torch.equal(y, model.netG(model.semantics(b["label"], b["inst"])))
    # another size: the fixed-size output resized to the map's size; instances change the output
    odd = b["label"][:, :21, :37]
    assert model.translate(odd).shape == (2, 3, 21, 37)
    assert not torch.equal(model.translate(b["label"]), y)  # class boundaries only without inst
    assert model.translate(b["label"], num_samples=2).shape == (2, 2, 3, 32, 256)
    with pytest.raises(ValueError, match=r"label ids must lie in \[0, 35\), got 0..200"):
        model.translate(torch.tensor([[[0, 200]]]))
    with pytest.raises(ValueError, match="deterministic"):
        model.translate(b["label"], reference=b["B"])
    with pytest.raises(TypeError, match="label maps"):
        model.translate(b["B"])
    # COCO-like data: the raw 255 of a label file is the dontcare id label_nc
    coco = _model(["model.generator.ngf=1"], data="coco_stuff")
    assert coco.inference_spec().label_nc == 183
    raw = torch.full((1, 32, 256), 255)
    assert torch.equal(coco.translate(raw), coco.translate(torch.full((1, 32, 256), 182)))
    shown = coco.grid_inputs({"label": raw}, "a2b")[1]
    assert shown.shape == (1, 3, 32, 256)


def test_vae_styles_references_and_samples():
    model = _model(VAE)
    spec = model.inference_spec()
    assert spec.samples and spec.reference and spec.style.dim == 256 and spec.style.encodable
    b = _batch(n=1)
    x = {"label": b["label"], "inst": b["inst"]}
    # style = z, as test.py's netG(semantics, z)
    z = torch.randn(1, 256)
    with torch.no_grad(), model.generators_in_inference_mode():
        expected = model.netG(model.semantics(b["label"], b["inst"]), z)
    assert torch.equal(model.translate(x, style=z), expected)
    # reference: z = mu of the encoder (deterministic); the same as encode_reference + style
    ref = b["B"]
    with model.inference_mode():
        mu = model.encode_reference(ref)
    one = model.translate(x, reference=ref)
    assert torch.equal(one, model.translate(x, reference=ref)) and torch.equal(
        one, model.translate(x, style=mu)
    )
    # samples: draws from the posterior around the reference, or z ~ N(0, I) without one
    around = model.translate(x, reference=ref, num_samples=2)
    free = model.translate(x, num_samples=2)
    assert around.shape == free.shape == (1, 2, 3, 32, 256)
    assert not torch.equal(around[:, 0], around[:, 1]) and not torch.equal(free[:, 0], free[:, 1])


# ---------------------------------------------------------------------------- checks and presets
def test_parameter_counts_and_config_checks(tmp_path):
    model = _model()
    assert (count_params(model.netG), count_params(model.netD)) == (124_573, 8_390)
    vae = _model(VAE)
    # the VAE fc: Linear(256, 32 * 1 * 8) instead of Conv(36, 32, 3); E: six bias-free 3x3 convs
    # 3-2-4-8-16-16-16 (6,174) and fc_mu, fc_var Linear(256, 256) (131,584)
    assert count_params(vae.netG) == 124_573 - (36 * 32 * 9 + 32) + (256 * 256 + 256)
    assert count_params(vae.netE) == 9 * (6 + 8 + 32 + 128 + 256 + 256) + 2 * (256 * 256 + 256)
    for extra, message in (
        (
            ["model.generator.semantic_nc=37"],
            "model.generator.semantic_nc=37: label_nc 35 + dontcare 0 + instance",
        ),
        ([*VAE, "model.encoder=null"], "model.encoder=null: model.generator.use_vae=true trains G on the"),
        (
            ["model.discriminator.input_nc=40"],
            "model.discriminator.input_nc=40: D judges (semantic map, image)",
        ),
    ):
        with pytest.raises(Exception) as info:  # Hydra's InstantiationException around it
            _model(extra)
        assert isinstance(info.value.__cause__, ConfigError) and str(info.value.__cause__).startswith(message)
    # the data's label options and instance maps against the model's
    from types import SimpleNamespace

    for data, message in (
        (
            dict(label_nc=34, contain_dontcare_label=False, use_instance=True),
            "model.label_nc=35: the data has",
        ),
        (
            dict(label_nc=35, contain_dontcare_label=False, use_instance=False),
            "model.no_instance=false: the data",
        ),
    ):
        with pytest.raises(ConfigError, match=message):
            model.check_data(SimpleNamespace(**data))
    # training images of another size than the generator's: the keys to set, before training
    cfg = compose_config(
        run_overrides(tmp_path, extra=["model.generator.aspect_ratio=4", "loss.weights.vgg=0"]),
        output_dir=tmp_path / "run",
    )
    with pytest.raises(ConfigError, match=(
        r"=32x256: the SPADE generator makes 64x256 images only .*; set "
        r"model.generator.crop_size=256 model.generator.aspect_ratio=8, or make the training images 64x256"
    )):  # fmt: skip
        train(cfg)


def test_presets():
    city, ade, coco = (compose_config([f"experiment=spade_{n}"]) for n in ("cityscapes", "ade20k", "coco"))
    for cfg in (city, ade, coco):
        assert cfg.hydra.runtime.choices.model == "spade" and cfg.hydra.runtime.choices.loss == "spade"
        assert (
            cfg.model.scheduler.niter == 50
            and cfg.trainer.max_epochs == 50
            and cfg.trainer.accelerator == "gpu"
        )
        assert cfg.model.optimizer.lr == 2e-4 and list(cfg.model.optimizer.betas) == [0.0, 0.9]
    g = city.model.generator
    assert (g.semantic_nc, g.num_upsampling_layers, g.crop_size, g.aspect_ratio) == (36, "more", 512, 2.0)
    assert (city.data.load_size, city.data.batch_size) == (512, 16)
    g = ade.model.generator
    assert (g.semantic_nc, g.num_upsampling_layers, g.crop_size, ade.data.batch_size) == (
        151,
        "normal",
        256,
        1,
    )
    assert coco.model.generator.semantic_nc == 184 and coco.model.discriminator.input_nc == 187


PRESETS = {
    # name: (data writer, data overrides: tiny images of the preset's aspect)
    "cityscapes": (
        lambda p: write_cityscapes(p, size=(128, 64)),
        ["data.load_size=128", "data.batch_size=2"],
    ),
    "ade20k": (write_ade20k, ["data.load_size=72", "data.crop_size=64", "data.eval_load_size=64"]),
    "coco": (write_coco, ["data.load_size=72", "data.crop_size=64", "data.eval_load_size=64"]),
}


@pytest.mark.parametrize("name", PRESETS)
def test_short_run_of_each_preset(name, tmp_path, vgg19):
    """experiment=spade_<name> on a tiny set in the data set's official layout, with the VGG
    loss (random weights), 2 iterations on the CPU: the checkpoint translates."""
    write, data = PRESETS[name]
    root = write(tmp_path / "data")
    overrides = [
        f"experiment=spade_{name}", f"data.root={root}", *data, "data.num_workers=0", "data.num_fixed=2",
        "trainer=cpu", "logger=csv", "iters=2", "callbacks.progress_bar=null", "metrics=none",
        "trainer.enable_model_summary=false", *TINY,
    ]  # fmt: skip
    train(compose_config(overrides, output_dir=tmp_path / "run"))
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["iteration"] == 2
    assert (tmp_path / "run" / "samples" / "test.png").is_file()
    model = load_model(tmp_path / "run")
    size = model.netG.output_size
    assert size == ((64, 128) if name == "cityscapes" else (64, 64))
    label = torch.zeros(1, *size, dtype=torch.long)
    y = model.translate({"label": label, "inst": label if name != "ade20k" else None})
    assert y.shape == (1, 3, *size) and torch.isfinite(y).all()


# ---------------------------------------------------------------------------- resume, DDP
def test_resume_continues_exactly(tmp_path):
    """With the VAE (E draws eps) and a decaying rate: stopped after 4 of 6 iterations and
    resumed, the run ends with the uninterrupted run's losses, weights and optimizer states."""
    from tests.callbacks.test_resume import RecordLosses, assert_same_state

    def run(out, iters, ckpt=None):
        record = RecordLosses()
        extra = [
            *VAE, "loss.weights.vgg=0", "task=fit", "metrics=none", "callbacks.sample_grid=null", f"callbacks.last_checkpoint.every_n_iters={iters}",
            "model.scheduler.niter=0", "model.scheduler.niter_decay=3", *([f"ckpt_path={ckpt}"] if ckpt else []),
        ]  # fmt: skip
        train(compose_config(run_overrides(tmp_path, iters, extra), output_dir=out), extra_callbacks=[record])
        return record.losses, torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)

    whole, whole_ckpt = run(tmp_path / "whole", 6)
    run(tmp_path / "first", 4)
    resumed, resumed_ckpt = run(tmp_path / "resumed", 6, tmp_path / "first" / "checkpoints" / "last.ckpt")
    assert sorted(resumed) == [5, 6] and "train/kld" in resumed[6]
    for it in (5, 6):
        assert resumed[it] == whole[it], it
    assert_same_state(whole_ckpt, resumed_ckpt)
    assert whole_ckpt["optimizer_states"][0]["param_groups"][0]["lr"] < 1e-4  # the rate decayed


@pytest.mark.slow
def test_two_process_ddp_keeps_parameters_identical(tmp_path):
    from tests.test_run import SaveRankParams

    extra = ["trainer=ddp_cpu", "callbacks.sample_grid=null", "metrics=none", "loss.weights.vgg=0", *VAE]
    cfg = compose_config(run_overrides(tmp_path, 2, extra), output_dir=tmp_path / "run")
    train(cfg, extra_callbacks=[SaveRankParams(tmp_path)])
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    init = torch.load(tmp_path / "init.pt")
    assert r0.keys() == r1.keys() and all(torch.equal(r0[k], r1[k]) for k in r0)
    assert r0.pop("iteration").item() == 2
    assert sum(not torch.equal(r0[k], init[k]) for k in init) > len(init) // 2
