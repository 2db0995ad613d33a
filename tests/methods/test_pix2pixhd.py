"""pix2pixHD: loss terms and update order, schedule, feature clusters used by translate, runs
on the Cityscapes sample (real 2048x1024 labelIds and 16-bit instance maps) at 128x256, the
label-id error through the run, coarse-to-fine loading, 2-process DDP."""

from __future__ import annotations

from pathlib import Path

import hydra
import lightning as L
import numpy as np
import pytest
import torch
from PIL import Image

from imtrans.load import load_model
from imtrans.losses.perceptual import VGG19_FILE, vgg19_features
from imtrans.methods.pix2pixhd import Pix2PixHDDecay, kmeans
from imtrans.nets import LocalEnhancer
from imtrans.run import train
from tests.conftest import SHARED_DATA
from tests.helpers import compose_config, run_imtrans

REPO = Path(__file__).resolve().parents[2]
CITYSCAPES = SHARED_DATA / "cityscapes_sample"
TINY = [
    "model.generator.ngf=4",
    "model.generator.n_blocks=1",
    "model.generator.n_blocks_local=1",
    "model.discriminator.ndf=4",
    "model.encoder.nef=4",
]
needs_sample = pytest.mark.skipif(not CITYSCAPES.is_dir(), reason="../shared/data/cityscapes_sample missing")


@pytest.fixture
def vgg19(tmp_path_factory):
    """A random-weight VGG19 file where the loss looks for it ($TORCH_HOME of the tests)."""
    return _write_vgg(Path(torch.hub.get_dir()).parent)


def run_overrides(iters: int = 2, extra: list[str] | None = None) -> list[str]:
    return [
        "model=pix2pixhd",
        "data=cityscapes",
        f"data.root={CITYSCAPES}",
        "data.load_size=256",  # 2048x1024 -> 256x128
        "data.num_workers=0",
        "data.num_fixed=2",
        "data.val_size=2",
        "trainer=cpu",
        "logger=csv",
        f"iters={iters}",
        "callbacks.progress_bar=null",
        "trainer.enable_model_summary=false",
        *TINY,
        *(extra or []),
    ]


def _tiny(extra=(), vgg=False):
    cfg = compose_config(
        ["model=pix2pixhd", "data=cityscapes", *TINY, *([] if vgg else ["loss.weights.vgg=0"]), *extra]
    )
    return hydra.utils.instantiate(cfg.model)


def _batch(n=1, h=32, w=64, label_nc=35):
    g = torch.Generator().manual_seed(0)
    label = (
        torch.randint(0, label_nc, (n, h // 8, w // 8), generator=g)
        .repeat_interleave(8, 1)
        .repeat_interleave(8, 2)
    )
    inst = label * 1000 + torch.randint(0, 2, label.shape, generator=g)
    return {"label": label, "inst": inst, "B": torch.rand(n, 3, h, w, generator=g) * 2 - 1}


def test_loss_terms_and_weights_on_a_fixed_batch(vgg19):
    torch.manual_seed(0)
    model = _tiny(vgg=True)
    w = model.loss_weights
    assert (w["gan"], w["feat"], w["vgg"], w["D_real"], w["D_fake"]) == (1, 10, 10, 0.5, 0.5)
    batch = _batch()
    f = model.forward_pass(batch)
    assert f["inp"].shape == (1, 36, 32, 64)  # 35 one-hot + 1 boundary channel
    assert torch.equal(f["inp"][:, :35].argmax(1), batch["label"]) and f["inp"][:, :35].sum(1).eq(1).all()
    terms = model.generator_terms(f)
    assert set(terms) == {"gan", "feat", "vgg"}
    pred_fake = model.D(torch.cat([f["inp"], f["fake"]], 1))
    assert len(pred_fake) == 2 and len(pred_fake[0]) == 5
    lsgan = sum(((p[-1] - 1) ** 2).mean() for p in pred_fake)
    assert torch.allclose(terms["gan"], lsgan)
    fm = sum(
        0.5 * (a - b).abs().mean()
        for pf, pr in zip(pred_fake, f["pred_real"])
        for a, b in zip(pf[:-1], pr[:-1])
    )
    assert torch.allclose(terms["feat"], fm)
    d_terms = model.discriminator_terms(f)
    assert torch.allclose(d_terms["D_fake"], sum((p[-1] ** 2).mean() for p in f["pred_fake_D"]))


def test_generator_steps_before_the_discriminator_from_one_forward():
    torch.manual_seed(0)
    model = _tiny()
    opts = {n: torch.optim.Adam(list(p), lr=1e-3) for n, p in model.optimizer_groups().items()}
    model._optimizer_names = list(opts)
    model.optimizers = lambda: list(opts.values())
    model.manual_backward = lambda loss: loss.backward()
    model.log_dict = lambda *a, **k: None
    d_before = [p.detach().clone() for p in model.D.parameters()]
    calls = []
    real_forward = model.G.forward
    model.G.forward = lambda x: calls.append("G") or real_forward(x)
    step = model.optimize

    def spy(name, fn, **kw):
        calls.append(name)
        return step(name, fn, **kw)

    model.optimize = spy
    model.training_step(_batch(), 0)
    assert calls == ["G", "G", "D"]  # one generator forward, then the G step, then the D step
    assert any(not torch.equal(a, b) for a, b in zip(d_before, model.D.parameters()))


def test_schedule_constant_then_linear_to_zero():
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=2e-4)
    sched = Pix2PixHDDecay(opt, niter=3, niter_decay=4)
    lrs = []
    for _ in range(8):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([2e-4] * 4 + [1.5e-4, 1e-4, 0.5e-4, 0.0])


def test_kmeans_finds_separated_clusters():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0, 0.0], [5.0, 5.0, 5.0], [-5.0, 5.0, 0.0]])
    x = torch.cat([c + 0.01 * torch.randn(20, 3, generator=g) for c in centres])
    found = kmeans(x, 3)
    assert found.shape == (3, 3)
    assert torch.cdist(found, centres).min(0).values.max() < 0.05
    assert kmeans(x[:2], 10).shape == (2, 3)  # fewer points than clusters: one centre each


def test_feature_clusters_are_stored_and_used_by_translate(tmp_path):
    torch.manual_seed(0)
    model = _tiny(["model.instance_feat=true", "data.use_instance=true", "model.n_clusters=2"])
    assert model.is_multimodal and model.G.model[0][1].in_channels == 39
    items = []
    for seed in range(3):
        b = _batch(h=32, w=32)
        b["inst"][:] = 7  # class 7 everywhere, ...
        b["inst"][:, :, 16:] = 26000 + seed  # ... and one class-26 instance on the right half
        b["B"] = b["B"] * 0 + (seed - 1) * 0.5  # three different photos
        items.append({"B": b["B"][0], "inst": b["inst"][0]})
    found = model.cluster_features(items)
    assert found == {7: 2, 26: 2}
    assert model.feat_counts[7] == 2 and model.feat_counts[26] == 2 and model.feat_counts.sum() == 4
    assert {"feat_centers", "feat_counts"} <= set(model.state_dict())

    seen = []
    generate = model.generate
    model.generate = lambda x, d, style=None: seen.append(style) or generate(x, d, style)
    inst = items[0]["inst"][None]
    out = model.translate({"label": inst // 1000 % 35, "inst": inst}, num_samples=4)
    assert out.shape == (1, 4, 3, 32, 32)
    for style in seen:
        assert style.shape == (1, 3, 32, 32)
        for cls, region in ((7, (slice(None), slice(0, 16))), (26, (slice(None), slice(16, None)))):
            vals = style[0][:, region[0], region[1]].reshape(3, -1).T
            assert torch.allclose(vals, vals[:1].expand_as(vals))  # one centre per instance
            assert torch.cdist(vals[:1], model.feat_centers[cls, :2]).min() < 1e-6
    # unknown classes (no centres) get zeros
    zero = model.sample_features(torch.full((1, 4, 4), 3))
    assert zero.abs().sum() == 0
    # reference: the encoder's features of the reference photo, the same for every sample
    seen.clear()
    ref = items[2]["B"][None]
    out = model.translate({"label": inst // 1000 % 35, "inst": inst}, reference=ref, num_samples=2)
    with torch.no_grad():
        expected = model.E(ref, inst)
    assert torch.allclose(seen[0], expected) and torch.equal(out[:, 0], out[:, 1])


def test_translate_takes_label_maps_only():
    model = _tiny()
    label = torch.randint(0, 35, (2, 32, 64))
    assert model.translate(label).shape == (2, 3, 32, 64)
    assert model.translate({"label": label, "inst": label * 1000}, num_samples=2).shape == (2, 2, 3, 32, 64)
    with pytest.raises(TypeError, match="label maps"):
        model.translate(torch.rand(2, 3, 32, 64))
    with pytest.raises(ValueError, match="deterministic"):
        model.translate(label, reference=torch.rand(2, 3, 32, 64))


@pytest.fixture(scope="module")
def global_run(tmp_path_factory):
    """One short run at 128x256 on the Cityscapes sample, default metrics and callbacks."""
    if not CITYSCAPES.is_dir():
        pytest.skip("../shared/data/cityscapes_sample missing")
    out = tmp_path_factory.mktemp("p2phd_global")
    mp = pytest.MonkeyPatch()
    mp.setenv("TORCH_HOME", str(out / "torch_home"))
    try:
        _write_vgg(out / "torch_home")
        cfg = compose_config(
            run_overrides(iters=2, extra=["callbacks.sample_grid.every_n_iters=1"]), output_dir=out
        )
        train(cfg)
    finally:
        mp.undo()
    return out


def _write_vgg(torch_home: Path) -> Path:
    """Random VGG19 weights (seeded) as ``<torch_home>/hub/checkpoints/vgg19-dcbb9e9d.pth``."""
    path = torch_home / "hub" / "checkpoints" / VGG19_FILE
    if not path.is_file():
        g = torch.Generator().manual_seed(0)
        state = {
            f"features.{k}": torch.randn(v.shape, generator=g) * 0.05
            for k, v in vgg19_features().state_dict().items()
            if int(k.split(".")[0]) < 30
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, path)
    return path


@needs_sample
def test_short_run_on_the_cityscapes_sample(global_run):
    for name in (
        "config.yaml",
        "checkpoints/last.ckpt",
        "metrics.json",
        "samples/iter_0000002.png",
        "samples/test.png",
    ):
        assert (global_run / name).is_file(), name
    grid = Image.open(global_run / "samples" / "test.png")
    assert grid.size[0] > 2 * 256 and grid.size[1] > 2 * 128  # label, output per row; 2 rows
    restored = load_model(global_run)
    assert restored.iteration == 2
    label = torch.randint(0, 35, (1, 128, 256))
    y = restored.translate(label)
    assert y.shape == (1, 3, 128, 256) and y.min() >= -1 and y.max() <= 1


@needs_sample
def test_feature_run_stores_centres_in_the_checkpoint(tmp_path, vgg19):
    cfg = compose_config(
        run_overrides(
            iters=3, extra=["model.instance_feat=true", "callbacks.sample_grid=null", "metrics=none"]
        ),
        output_dir=tmp_path,
    )
    train(cfg)
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    counts = ckpt["state_dict"]["feat_counts"]
    assert counts.sum() > 0 and counts.max() <= 10
    restored = load_model(tmp_path)
    assert torch.equal(restored.feat_counts, counts)
    ds = hydra.utils.instantiate(cfg.data).dataset("train")
    item = ds[0]
    out = restored.translate({"label": item["label"][None], "inst": item["inst"][None]}, num_samples=3)
    assert out.shape == (1, 3, 3, 128, 256)


@needs_sample
def test_local_enhancer_loads_the_global_run_and_fixes_it_first(global_run, tmp_path, vgg19):
    """netG=local with load_pretrain: the trunk starts from the 512p G, D scales 0-1 from its
    D; with niter_fix_global=1 the trunk stays as loaded for the first epoch (8 images)."""
    src = torch.load(global_run / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    seen = {}

    class Snap(L.Callback):
        def on_train_start(self, trainer, module):
            seen["init"] = {k: v.detach().clone() for k, v in module.state_dict().items()}

        def on_train_epoch_end(self, trainer, module):
            seen[trainer.current_epoch] = {k: v.detach().clone() for k, v in module.state_dict().items()}

    extra = [
        "model.netG=local",
        "model.generator.ngf=2",  # its trunk has 2 x 2 = 4 filters, as the global run's G
        "model.discriminator.num_D=3",
        "model.niter_fix_global=1",
        f"model.load_pretrain={global_run}",
        "callbacks.sample_grid=null",
        "metrics=none",
        "task=fit",
    ]
    cfg = compose_config(run_overrides(iters=9, extra=extra), output_dir=tmp_path)
    model = hydra.utils.instantiate(cfg.model)
    trunk = [k for k in model.state_dict() if k.startswith("G.model.")]
    assert trunk and all(torch.equal(model.state_dict()[k], src[k]) for k in trunk)
    assert torch.equal(
        model.state_dict()["D.scales.1.stages.0.0.weight"], src["D.scales.1.stages.0.0.weight"]
    )
    train(cfg, extra_callbacks=[Snap()])
    first = seen[0]
    assert all(torch.equal(first[k], src[k]) for k in trunk)  # fixed during epoch 0
    assert not all(torch.equal(first[k], seen["init"][k]) for k in first if k.startswith("G.model1_"))
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    assert not all(torch.equal(last[k], src[k]) for k in trunk)  # trained in epoch 1
    assert bool(last["_global_released"])
    # the checkpoint rebuilds without the pretrain file
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["imtrans_config"]["model"]["load_pretrain"] is None
    assert isinstance(load_model(tmp_path).G, LocalEnhancer)


def test_label_id_out_of_range_fails_before_training_with_one_line(tmp_path):
    root = tmp_path / "labels"
    for split in ("train", "test"):
        for kind in ("label", "img"):
            (root / f"{split}_{kind}").mkdir(parents=True)
        ids = np.zeros((32, 64), dtype=np.uint8)
        if split == "train":
            ids[3, 5] = 40
        Image.fromarray(ids).save(root / f"{split}_label" / "a.png")
        Image.new("RGB", (64, 32)).save(root / f"{split}_img" / "a.png")
    res = run_imtrans(
        [
            "model=pix2pixhd",
            "data=labels",
            f"data.root={root}",
            "logger=none",
            f"hydra.run.dir={tmp_path}/run",
        ],
        cwd=tmp_path,
        timeout=300,
    )
    assert res.returncode == 2, res.stderr[-2000:]
    errors = [line for line in res.stderr.splitlines() if line.startswith("imtrans: data error:")]
    assert len(errors) == 1, res.stderr[-2000:]
    assert str(root / "train_label" / "a.png") in errors[0] and "40" in errors[0]
    assert "Traceback" not in res.stderr and not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.slow
@needs_sample
def test_two_process_ddp_keeps_parameters_identical(tmp_path, vgg19):
    class Save(L.Callback):
        def on_train_start(self, trainer, module):
            if trainer.global_rank == 0:
                torch.save(
                    {k: v.detach().clone() for k, v in module.named_parameters()}, tmp_path / "init.pt"
                )

        def on_train_end(self, trainer, module):
            state = {k: v.detach().cpu() for k, v in module.named_parameters()}
            torch.save(state, tmp_path / f"rank{trainer.global_rank}.pt")

    extra = ["trainer=ddp_cpu", "callbacks.sample_grid=null", "metrics=none", "model.instance_feat=true"]
    cfg = compose_config(run_overrides(iters=2, extra=extra), output_dir=tmp_path)
    train(cfg, extra_callbacks=[Save()])
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    init = torch.load(tmp_path / "init.pt")
    assert r0.keys() == r1.keys() and all(torch.equal(r0[k], r1[k]) for k in r0)
    assert sum(not torch.equal(r0[k], init[k]) for k in init) > len(init) // 2


@needs_sample
def test_translate_command_takes_label_and_instance_maps(global_run, tmp_path):
    """``imtrans translate`` on label maps (+ instance maps): outputs equal ``module.translate``
    on the same ids, at the input's size; the grid shows the coloured labels."""
    from imtrans.callbacks.images import to_uint8
    from imtrans.translate import translate

    ids = {}
    for kind in ("label", "inst"):
        folder = tmp_path / kind
        folder.mkdir()
        for src in sorted((CITYSCAPES / f"test_{kind}").glob("*.png"))[:2]:
            # 2048x1024 -> 256x128, nearest: ids stay ids (16-bit instance ids too)
            small = Image.open(src).resize((256, 128), Image.NEAREST)
            small.save(folder / src.name)
            ids.setdefault(kind, []).append(torch.from_numpy(np.asarray(small).astype(np.int64)))
    out = tmp_path / "out"
    result = translate([f"ckpt={global_run}", f"input={tmp_path / 'label'}", f"inst={tmp_path / 'inst'}",
                        f"output={out}", "grid=true", "progress=false", "ema=false"])  # fmt: skip
    assert len(result.inputs) == 2 and len(result.written) == 4
    model = load_model(global_run)
    expected = model.translate({"label": torch.stack(ids["label"]), "inst": torch.stack(ids["inst"])})
    for i, path in enumerate(result.inputs):
        with Image.open(out / f"{path.stem}_a2b.png") as im:
            assert im.size == (256, 128)
            written = torch.from_numpy(np.asarray(im)).permute(2, 0, 1)
        assert torch.equal(written, to_uint8(expected[i])), path.name
        with Image.open(out / f"{path.stem}_a2b_grid.png") as im:  # input | output under a title band
            assert im.size[0] == 2 * 256 + 6 and im.size[1] > 128 + 4
    # a wrong pairing and ids outside the classes are clear errors; export takes label maps
    with pytest.raises(ValueError, match=r"label ids must lie in \[0, 35\), got 0..200"):
        model.translate(torch.tensor([[[0, 200]]]))
    from imtrans.export import export

    info = export(global_run, out=tmp_path / "export", formats="torchscript", log=lambda *a: None)
    assert [(f["file"], f["ok"]) for f in info["files"]] == [("generator_a2b.pt", True)]
    assert list(info["files"][0]["inputs"]) == ["label", "inst"]
    with pytest.raises(ValueError, match="1 instance map"):
        translate([f"ckpt={global_run}", f"input={tmp_path / 'label'}",
                   f"inst={sorted((tmp_path / 'inst').glob('*.png'))[0]}", f"output={out}", "progress=false"])  # fmt: skip
