"""pix2pixHD networks and losses: official parameter counts, boundary map, instance pooling,
discriminator features and scale order, feature matching and VGG19 weights on fixed tensors."""

from __future__ import annotations

import gc
from pathlib import Path

import hydra
import pytest
import torch
import torch.nn.functional as F

from imtrans.losses import feature_matching_loss
from imtrans.losses.perceptual import (
    VGG19_FILE,
    MissingWeightsError,
    VGG19PerceptualLoss,
    vgg19_features,
)
from imtrans.nets import (
    FeatureEncoder,
    GlobalGenerator,
    LocalEnhancer,
    MultiscaleDiscriminator,
    instance_edges,
    instance_mean,
)
from tests.conftest import count_params
from tests.helpers import compose_config

NO_VGG = ["loss.weights.vgg=0", "model.load_pretrain=null"]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        # (G, D, E, total), ../shared/REFERENCE.md (counted on the official classes)
        (["experiment=pix2pixhd_cityscapes_512p"], (182_546_755, 5_603_202, 0, 188_149_957)),
        (["experiment=pix2pixhd_cityscapes_feat"], (182_556_163, 5_603_202, 788_803, 188_948_168)),
        (["experiment=pix2pixhd_cityscapes_1024p"], (182_857_059, 8_404_803, 0, 191_261_862)),
    ],
    ids=["512p", "feat", "1024p"],
)
def test_parameter_counts(overrides, expected):
    """Each full-size model is built once (about 190 M parameters each)."""
    cfg = compose_config([*overrides, *NO_VGG])
    model = hydra.utils.instantiate(cfg.model)
    got = (
        count_params(model.G),
        count_params(model.D),
        count_params(model.E) if model.E is not None else 0,
        count_params(model),
    )
    del model
    gc.collect()
    assert got == expected


def test_instance_edges_on_a_hand_made_map():
    inst = torch.tensor(
        [
            [1, 1, 1, 2],
            [1, 1, 1, 2],
            [3, 3, 1, 2],
            [3, 3, 1, 1],
        ]
    )[None]
    expected = torch.tensor(
        [
            [0, 0, 1, 1],
            [1, 1, 1, 1],
            [1, 1, 1, 1],
            [0, 1, 1, 1],
        ],
        dtype=torch.float32,
    )
    edges = instance_edges(inst)
    assert edges.shape == (1, 1, 4, 4)
    assert torch.equal(edges[0, 0], expected)
    assert instance_edges(torch.full((2, 5, 5), 7)).sum() == 0  # one instance: no boundary


def test_instance_mean_per_image_and_its_gradient():
    feat = torch.arange(2 * 2 * 2 * 3, dtype=torch.float32).reshape(2, 2, 2, 3).requires_grad_()
    inst = torch.tensor([[[0, 0, 5], [5, 5, 5]], [[0, 1, 1], [1, 1, 1]]])
    out = instance_mean(feat, inst)
    for b in range(2):
        for i in inst[b].unique():
            m = inst[b] == i
            for c in range(2):
                assert torch.allclose(out[b, c][m], feat[b, c][m].mean())
    out[0, 0, 0, 0].backward()  # the mean of instance 0 in image 0: 2 pixels
    grad = feat.grad[0, 0]
    assert torch.allclose(grad[inst[0] == 0], torch.full((2,), 0.5)) and grad[inst[0] != 0].abs().sum() == 0


def test_discriminator_features_padding_and_scale_order():
    torch.manual_seed(0)
    D = MultiscaleDiscriminator(input_nc=5, ndf=4, n_layers=3, num_D=2)
    x = torch.randn(1, 5, 64, 128)
    outs = D(x)
    assert len(outs) == 2 and all(len(o) == 5 for o in outs)  # n_layers + 2 stages per scale
    # kernel 4, padding 2: 64 -> 33 -> 17 -> 9 -> 10 -> 11 on the full-resolution scale
    assert [o.shape[-2] for o in outs[0]] == [33, 17, 9, 10, 11]
    assert outs[0][-1].shape[1] == 1 and outs[0][2].shape[1] == 16
    # scales[-1] judges the full resolution, scales[0] the pooled copy (official order)
    assert torch.equal(outs[0][-1], D.scales[1](x)[-1])
    pooled = F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
    assert torch.equal(outs[1][-1], D.scales[0](pooled)[-1])


def test_local_enhancer_reuses_the_global_generator_keys_and_sizes():
    g = GlobalGenerator(6, 3, ngf=8, n_downsample=2, n_blocks=1)
    local = LocalEnhancer(6, 3, ngf=4, n_downsample=2, n_blocks=1, n_blocks_local=1)
    gk, lk = g.state_dict(), local.state_dict()
    trunk = {k for k in lk if k.startswith("model.")}
    assert trunk and trunk <= set(gk) and all(gk[k].shape == lk[k].shape for k in trunk)
    assert set(gk) - trunk == {k for k in gk if k.startswith(f"model.{len(g.model) - 1}.")}
    x = torch.randn(2, 6, 32, 64)
    assert local(x).shape == (2, 3, 32, 64) and g(x).shape == (2, 3, 32, 64)
    assert {id(p) for p in local.local_parameters()}.isdisjoint({id(p) for p in local.global_parameters()})


def test_feature_encoder_output_is_constant_per_instance():
    E = FeatureEncoder(3, feat_num=3, nef=4, n_downsample=2)
    inst = torch.zeros(1, 32, 32, dtype=torch.long)
    inst[:, 8:20, 4:30] = 26001
    out = E(torch.rand(1, 3, 32, 32) * 2 - 1, inst)
    assert out.shape == (1, 3, 32, 32)
    for i in (0, 26001):
        vals = out[0].permute(1, 2, 0)[inst[0] == i]
        assert torch.allclose(vals, vals[:1].expand_as(vals))


def test_feature_matching_weights_on_fixed_tensors():
    # 2 scales x (4 intermediate stages + scores); fake = 0, real stage j = j + 1 everywhere.
    shapes = [(1, 2, 4, 4)] * 5
    real = [[torch.full(s, float(j + 1), requires_grad=True) for j, s in enumerate(shapes)] for _ in range(2)]
    fake = [[torch.zeros(s, requires_grad=True) for s in shapes] for _ in range(2)]
    loss = feature_matching_loss(fake, real, n_layers_D=3)
    # per layer (4 / (3 + 1)) * (1 / 2) * |0 - (j + 1)|, j = 0..3 (the scores are skipped), 2 scales
    assert loss.item() == pytest.approx(2 * 0.5 * (1 + 2 + 3 + 4))
    loss.backward()
    assert all(t.grad is None for scale in real for t in scale)  # real features are detached
    assert fake[0][-1].grad is None and fake[0][0].grad is not None
    # n_layers_D defaults to stages - 2
    assert feature_matching_loss(fake, real).item() == pytest.approx(loss.item())


def _write_random_vgg19(path: Path) -> dict:
    torch.manual_seed(1)
    feats = vgg19_features()
    state = {
        f"features.{k}": torch.randn_like(v) * 0.05
        for k, v in feats.state_dict().items()
        if int(k.split(".")[0]) < 30
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state


def test_vgg19_loss_weights_and_no_normalisation(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(MissingWeightsError, match=VGG19_FILE):
        VGG19PerceptualLoss(download=False)
    state = _write_random_vgg19(tmp_path / "hub" / "checkpoints" / VGG19_FILE)
    loss_fn = VGG19PerceptualLoss()
    assert sum(p.numel() for p in loss_fn.vgg.parameters()) == 12_944_960
    assert not list(loss_fn.parameters()) and not loss_fn.state_dict()  # frozen, outside checkpoints

    torch.manual_seed(0)
    img = (torch.rand(1, 3, 32, 32) * 2 - 1).requires_grad_()
    target = torch.rand(1, 3, 32, 32) * 2 - 1

    def relus(x):
        # VGG19 written out: conv3x3+relu, max pools after relu1_2, 2_4, 3_4, 4_4 (fed raw [-1, 1])
        outs, conv = [], 0
        taps = {0: 0, 2: 1, 4: 2, 8: 3, 12: 4}  # conv index -> relu{k+1}_1
        pools = {2, 4, 8, 12}
        for i in range(13):
            if i in pools:
                x = F.max_pool2d(x, 2)
            idx = [k for k in sorted({int(k.split(".")[1]) for k in state})][conv]
            x = F.relu(F.conv2d(x, state[f"features.{idx}.weight"], state[f"features.{idx}.bias"], padding=1))
            conv += 1
            if i in taps:
                outs.append(x)
        return outs

    expected = sum(
        w * (a - b).abs().mean()
        for w, a, b in zip((1 / 32, 1 / 16, 1 / 8, 1 / 4, 1), relus(img), relus(target))
    )
    got = loss_fn(img, target)
    assert torch.allclose(got, expected, rtol=1e-5), (got, expected)
    got.backward()
    assert img.grad is not None and img.grad.abs().sum() > 0
