"""The ``stargan_v2`` protocol: FID with torchvision's ImageNet Inception-v3 exactly as StarGAN v2
defines it, per (source, target) task and guidance mode, averaged over the tasks.

The reference computation here is written from the description of the official code
(metrics/fid.py, metrics/eval.py, core/data_loader.py ``get_eval_loader``): images read from
files with PIL, ``transforms.Resize([256, 256])``, ``transforms.Resize([299, 299])``,
``ToTensor``, ImageNet ``Normalize``; torchvision's ``inception_v3`` forward up to its average
pool (``fc`` replaced by the identity); ``np.cov`` and ``scipy.linalg.sqrtm`` in the Fréchet
distance. Generated images are saved as PNG the way ``torchvision.utils.save_image`` rounds.
The weights are random (seeded), under a temporary TORCH_HOME: the plumbing and the definition
are tested, never the published numbers.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image
from torch import nn

from imtrans.callbacks import Evaluation
from imtrans.data import DomainsDataModule
from imtrans.methods.base import TranslationModule
from imtrans.methods.spec import InferenceSpec, domain_tasks
from imtrans.metrics import PROTOCOLS, Evaluator, get_protocol
from imtrans.metrics import weights as W
from imtrans.metrics.evaluator import evaluate_domain_tasks, module_domain_names, reference_choices
from imtrans.metrics.lineages import FID_IMPLS
from imtrans.metrics.networks import InceptionFeatures, TorchvisionInceptionFeatures

DOMAINS = ("cat", "dog", "wild")
SMALL = {"samples_per_input": 3, "fid_samples_per_input": 3}  # 3 outputs per input: Inception on few images


# ---------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def sg_home(tmp_path_factory, metric_weights):
    """A TORCH_HOME of this module's own: the random torchvision Inception, plus links to the
    shared random AlexNet and torch-fidelity and pytorch-fid Inceptions (other tests never see this
    file)."""
    home = tmp_path_factory.mktemp("sg2_torch_home")
    hub = home / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    for key in ("inception", "alexnet", W.TORCHVISION_INCEPTION.key, W.PYTORCH_FID_INCEPTION.key):
        (hub / metric_weights[key].name).symlink_to(metric_weights[key])
    return home


@pytest.fixture
def sg_env(sg_home, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(sg_home))
    return sg_home / "hub" / "checkpoints" / W.TORCHVISION_INCEPTION.filename


def save_png(image: torch.Tensor, path: Path) -> None:
    """A [-1, 1] 3 x H x W image saved as the official ``utils.save_image`` does:
    (x + 1) / 2 clamped to [0, 1], then ``mul(255).add_(0.5).clamp_(0, 255)`` to uint8."""
    x = ((image.detach().float() + 1) / 2).clamp(0, 1)
    u8 = x.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    Image.fromarray(u8).save(path)


def random_pngs(folder: Path, n: int, size: tuple[int, int], seed: int, low: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    paths = []
    for k in range(n):
        # a smooth random field plus noise: varied content, not only noise
        base = torch.rand(3, 4, 4, generator=g)
        field = torch.nn.functional.interpolate(base[None], size=size[::-1], mode="bilinear")[0]
        img = (field * (200 - low) + low + torch.rand(3, size[1], size[0], generator=g) * 55).clamp(0, 255)
        paths.append(folder / f"{k:03d}.png")
        Image.fromarray(img.round().to(torch.uint8).permute(1, 2, 0).numpy()).save(paths[-1])
    return paths


# ---------------------------------------------------------------------------------------------- reference
class OfficialFID:
    """FID as StarGAN v2's ``calculate_fid_given_paths`` defines it, written from its description."""

    def __init__(self, weights: Path, img_size: int = 256):
        from torchvision import transforms
        from torchvision.models import inception_v3

        net = inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=False)
        net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        net.fc = nn.Identity()  # eval-mode forward then ends with the 2048-d average pool (dropout off)
        self.net = net.eval()
        self.transform = transforms.Compose(
            [
                transforms.Resize([img_size, img_size]),
                transforms.Resize([299, 299]),
                transforms.ToTensor(),
                transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
            ]
        )

    @torch.no_grad()
    def features(self, paths: list[Path]) -> np.ndarray:
        x = torch.stack([self.transform(Image.open(p).convert("RGB")) for p in paths])
        return self.net(x).double().numpy()

    def __call__(self, fake: list[Path], real: list[Path]) -> float:
        return self.frechet(self.features(fake), self.features(real))

    @staticmethod
    def frechet(f1: np.ndarray, f2: np.ndarray) -> float:
        """|mu1 - mu2|^2 + tr(C1 + C2 - 2 sqrtm(C1 C2)), ``np.cov`` and ``scipy.linalg.sqrtm``.

        With fewer images than dimensions both covariances live in the span of the centred
        features; sqrtm is taken in an orthonormal basis Q of that span (C1 C2 = Q (Q'C1Q)(Q'C2Q) Q',
        the same non-zero spectrum), an r x r matrix instead of 2048 x 2048 (15 s and singular).
        """
        mu1, mu2 = f1.mean(0), f2.mean(0)
        c1, c2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
        q, _ = np.linalg.qr(np.concatenate([f1 - mu1, f2 - mu2]).T)
        covmean = scipy.linalg.sqrtm((q.T @ c1 @ q) @ (q.T @ c2 @ q))
        return float(np.sum((mu1 - mu2) ** 2) + np.trace(c1) + np.trace(c2) - 2 * np.trace(covmean).real)


def read_u8(paths: list[Path]) -> list[torch.Tensor]:
    return [torch.from_numpy(np.array(Image.open(p).convert("RGB"))).permute(2, 0, 1) for p in paths]


# ---------------------------------------------------------------------------------------------- FID
def test_fid_equals_the_official_definition(tmp_path, sg_env):
    """Images of several sizes (resized to 256 then 299 as the official loader does): the
    protocol's FID equals the reference computation."""
    fake = random_pngs(tmp_path / "fake", 5, (32, 32), seed=1)
    real = random_pngs(tmp_path / "real", 4, (48, 40), seed=2, low=40)
    ev = Evaluator(get_protocol("stargan_v2"), batch_size=4, notify=None)
    ev.prepare()
    assert isinstance(ev.inception, TorchvisionInceptionFeatures)
    # nothing skipped; the random weights are a declared stand-in (imtrans.pretrained), and said so
    assert ev.notices and all("from a stand-in" in line for line in ev.notices), ev.notices
    ours = ev.fid_kid(read_u8(fake), read_u8(real))["fid"]
    official = OfficialFID(sg_env)
    expected = official(fake, real)
    assert ours == pytest.approx(expected, rel=1e-6)
    # the features themselves, not only their statistics
    feats = ev.features(ev.quantize(ev.signed(torch.stack(read_u8(fake)))))
    np.testing.assert_allclose(feats.double().numpy(), official.features(fake), rtol=1e-4, atol=1e-4)


def test_other_protocols_keep_their_network(sg_env):
    for name, protocol in PROTOCOLS.items():
        ev = Evaluator(protocol, notify=None)
        ev.prepare()
        record = protocol.record()
        lineage = FID_IMPLS[protocol.fid_impl]
        if name == "stargan_v2":
            assert protocol.fid_impl == "stargan_v2"
            assert protocol.fid_features == "torchvision_inception_v3"
            assert isinstance(ev.inception, TorchvisionInceptionFeatures)
            assert record["fid"]["weights"] == "inception_v3_google-0cc3c7bd.pth"
            assert record["resize_filter"].startswith("PIL BILINEAR")
        elif name == "cut":  # CUT's README scores with pytorch-fid (tests/metrics/test_lineages.py)
            assert protocol.fid_impl == "pytorch_fid"
            assert set(ev.needs) == {"pytorch_fid_inception", "alexnet"}
        else:
            assert protocol.fid_impl == "torch_fidelity"
            assert protocol.fid_features == "torch_fidelity_inception"
            assert isinstance(ev.inception, InceptionFeatures) and set(ev.needs) == {"inception", "alexnet"}
            assert record["fid"]["weights"] == W.INCEPTION.filename
            assert record["quantization"] == "uint8, rounded as when written to PNG, before every metric"
        assert isinstance(ev.inception, lineage.network)
        assert record["fid_impl"] == record["fid"]["impl"] == protocol.fid_impl
        assert record["fid_features"] == protocol.fid_features == lineage.features
        assert record["fid"]["network"] == lineage.record["network"]
    # a protocol setting, like the others; overrides of older runs name the network
    assert get_protocol("cut", {"fid_features": "torchvision_inception_v3"}).record()["fid_features"] == (
        "torchvision_inception_v3"
    )
    with pytest.raises(ValueError, match="fid_features"):
        get_protocol("cut", {"fid_features": "clean_fid"})


def test_missing_file_notice_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    lines = []
    ev = Evaluator(get_protocol("stargan_v2"), lpips=False, notify=lines.append)
    ev.prepare()
    assert ev.inception is None and len(lines) == 1 and ev.notices == lines
    line = lines[0]
    assert W.TORCHVISION_INCEPTION.filename in line and W.TORCHVISION_INCEPTION.url in line
    assert str(tmp_path / "empty" / "hub" / "checkpoints") in line and "metrics.weights_dir" in line
    assert "weights-inception" not in line  # the torch-fidelity file is not asked for
    cb = Evaluation(protocol="stargan_v2", lpips=False)
    cb.evaluator.settle(cb.evaluator.find_weights(), notify=False)
    assert cb.protocol_record()["weights"] == {"torchvision_inception": "missing: metrics skipped"}


# ---------------------------------------------------------------------------------------------- tasks
class ToyDomains(TranslationModule):
    """A multi-domain toy with drit_multi's inference API: output = tanh(conv(x) + colour of the
    target domain + style), the style k / S in latent mode (no random state: the test recomputes
    the outputs) or the reference image's mean colour in reference mode."""

    is_multimodal = True
    directions = ()
    num_domains = len(DOMAINS)

    def __init__(self):
        super().__init__(loss={}, optimizer=torch.optim.SGD)
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.register_buffer("colours", torch.tensor([[0.5, -0.3, 0.0], [-0.4, 0.4, 0.2], [0.1, 0.1, -0.6]]))

    def generator_modules(self):
        return {"conv": self.conv}

    def inference_spec(self) -> InferenceSpec:
        names = tuple(DOMAINS[: self.num_domains])  # tests may narrow ``num_domains``
        return replace(
            super().inference_spec(), tasks=domain_tasks(names), domains=names, samples=True, reference=True
        )

    @torch.no_grad()
    def translate(self, x, direction=None, *, target_domain=None, style=None, reference=None, num_samples=1):
        x = x.to(self.device)
        base = self.conv(x) + self.colours[target_domain][None, :, None, None]
        if reference is not None:
            return torch.tanh(base + reference.mean((2, 3), keepdim=True))
        outs = [torch.tanh(base + k / num_samples) for k in range(num_samples)]
        return outs[0] if num_samples == 1 else torch.stack(outs, 1)


def make_domain_tree(root: Path) -> Path:
    for d, domain in enumerate(DOMAINS):
        random_pngs(root / "train" / domain, 3, (40, 40), seed=10 + d, low=30 * d)
        random_pngs(root / "test" / domain, 2, (40, 40), seed=20 + d, low=30 * d)
    return root


@pytest.fixture(scope="module")
def domain_data(tmp_path_factory):
    root = make_domain_tree(tmp_path_factory.mktemp("domains"))
    dm = DomainsDataModule(root, load_size=32, crop_size=32, flip=False, verify="none")
    return root, dm


def test_reference_choices_walk_the_pool():
    pool, samples, inputs = 4, 3, 5
    flat = list(range(inputs * samples))
    chosen = reference_choices(flat, pool, seed=0, source=0, target=1)
    for epoch in range(0, len(flat) - pool + 1, pool):  # every full pass uses each image once
        assert sorted(chosen[epoch : epoch + pool]) == list(range(pool))
    # by flat number only: any split into blocks gives the same choices
    assert reference_choices(flat[7:], pool, 0, 0, 1) == chosen[7:]
    assert chosen != reference_choices(flat, pool, 0, 1, 0)  # another task, another order


def test_tasks_and_means_on_a_toy_multi_domain_model(domain_data, sg_env, tmp_path):
    root, dm = domain_data
    model = ToyDomains()
    inputs, reference = dm.dataset("test"), dm.dataset("train")
    names = module_domain_names(model, dm, inputs)
    assert names == list(DOMAINS)
    ev = Evaluator(get_protocol("stargan_v2", SMALL), batch_size=4, notify=None)
    ev.prepare()
    scores = evaluate_domain_tasks(ev, model, inputs, reference, names, "train")
    tasks = [f"{s}2{t}" for t in DOMAINS for s in DOMAINS if s != t]
    for mode in ("latent", "reference"):
        for task in tasks:
            for score in ("fid", "kid", "kid_std", "lpips_div"):
                assert np.isfinite(scores[f"{mode}/{task}/{score}"]), (mode, task, score)
            assert scores[f"{mode}/{task}/n_inputs"] == 2  # every test image of the source
            assert scores[f"{mode}/{task}/n_reference"] == 3  # every training image of the target
            assert scores[f"{mode}/{task}/lpips_div"] > 0
        assert scores[f"{mode}/mean/n_tasks"] == 6
        for score in ("fid", "kid", "lpips_div"):
            assert scores[f"{mode}/mean/{score}"] == pytest.approx(
                np.mean([scores[f"{mode}/{task}/{score}"] for task in tasks]), rel=1e-12
            )
    assert scores["latent/cat2dog/fid"] != scores["reference/cat2dog/fid"]

    # one latent task recomputed the official way: inputs read and resized by PIL (256), the
    # outputs saved as PNG, FID against the target's training files
    from torchvision import transforms

    load = transforms.Compose(
        [transforms.Resize([256, 256]), transforms.ToTensor(), transforms.Normalize([0.5] * 3, [0.5] * 3)]
    )
    src = sorted((root / "test" / "wild").glob("*.png"))
    x = torch.stack([load(Image.open(p).convert("RGB")) for p in src])
    out = model.translate(x, target_domain=DOMAINS.index("dog"), num_samples=3)
    fakes = []
    for i in range(len(src)):
        for k in range(3):
            fakes.append(tmp_path / f"{i:04d}_{k:02d}.png")
            save_png(out[i, k], fakes[-1])
    official = OfficialFID(sg_env)
    expected = official(fakes, sorted((root / "train" / "dog").glob("*.png")))
    assert scores["latent/wild2dog/fid"] == pytest.approx(expected, rel=1e-6)


def test_run_writes_the_feature_network_next_to_the_scores(tmp_path, sg_env):
    """A tiny DRIT++ multi-domain run with ``metrics=stargan_v2``: metrics.json holds the task
    scores and names the feature network."""
    from tests.helpers import compose_config, method_overrides
    from tests.metrics.conftest import without_group_metrics

    extra = ["callbacks.sample_grid=null", *without_group_metrics()]
    cfg = compose_config(
        method_overrides("drit_multi", tmp_path, iters=1, extra=extra), output_dir=tmp_path / "run"
    )
    callback = Evaluation(
        protocol="stargan_v2",
        overrides={"samples_per_input": 2, "fid_samples_per_input": 2, "image_size": 32, "num_inputs": 2},
        every_n_iters=0,
        batch_size=4,
        kid=False,
    )
    from imtrans.run import train

    train(cfg, extra_callbacks=[callback])
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for mode in ("latent", "reference"):
        assert metrics[f"test/{mode}/cat2dog/fid"] > 0 and metrics[f"test/{mode}/dog2cat/n_inputs"] == 2
        assert metrics[f"test/{mode}/mean/fid"] == pytest.approx(
            (metrics[f"test/{mode}/cat2dog/fid"] + metrics[f"test/{mode}/dog2cat/fid"]) / 2
        )
        assert metrics[f"test/{mode}/mean/lpips_div"] >= 0
    record = metrics["metrics_protocol"]
    assert record["fid_features"] == metrics["fid_features"] == "torchvision_inception_v3"
    assert record["fid"]["weights"] == W.TORCHVISION_INCEPTION.filename
    assert record["weights"]["torchvision_inception"] == str(sg_env)


# ---------------------------------------------------------------------------------------------- DDP
def _ddp_worker(out: str, root: str, rank: int, world: int) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    if world > 1:
        torch.distributed.init_process_group(
            "gloo", init_method=f"file://{out}/pg", rank=rank, world_size=world
        )
    dm = DomainsDataModule(root, load_size=32, crop_size=32, flip=False, verify="none")
    ev = Evaluator(get_protocol("stargan_v2", {**SMALL, "image_size": 64}), batch_size=1, notify=None)
    ev.prepare()
    scores = evaluate_domain_tasks(
        ev, ToyDomains(), dm.dataset("test"), dm.dataset("train"), list(DOMAINS), "t"
    )
    Path(out, f"rank{rank}_of{world}.json").write_text(json.dumps(scores))
    if world > 1:
        torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_tasks_one_and_two_processes_agree(domain_data, sg_env, tmp_path):
    root, _ = domain_data
    _ddp_worker(str(tmp_path), str(root), 0, 1)
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_ddp_worker, args=(str(tmp_path), str(root), r, 2)) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    assert [p.exitcode for p in procs] == [0, 0]
    one = json.loads((tmp_path / "rank0_of1.json").read_text())
    assert "reference/dog2cat/fid" in one
    for r in range(2):
        two = json.loads((tmp_path / f"rank{r}_of2.json").read_text())
        assert two.keys() == one.keys()
        for key in one:
            assert two[key] == pytest.approx(one[key], rel=1e-6, abs=1e-9), key
