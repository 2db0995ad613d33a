"""FID lineages (``metrics.fid_impl``) give the numbers of pytorch-fid and clean-fid themselves.

The packages run unmodified on the same folders (PNG fakes, JPEG references, as CUT's fake_B and
testB), with random-weight stand-ins of their weight files (tests/metrics/weights.py; declared
through ``IMTRANS_STAND_IN_WEIGHTS``, so imtrans says they are not the published scores).

- pytorch-fid finds its file in the torch hub cache, where it looks: its FID end to end.
- clean-fid hard-wires ``/tmp/inception-2015-12-05.pt``, which a test must not write: its loader
  class reads the stand-in's folder instead, and the rest is its own. KID end to end; FID stage by
  stage: its features of the folders (file list, decoding, resize, network) equal imtrans's, and
  its formula equals imtrans's (on 256 of the 2048 dimensions: each package's ``sqrtm`` of a
  2048 x 2048 matrix costs ~20 s on one thread, paid once, by the pytorch-fid test, whose formula
  is the same code as clean-fid's).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from imtrans import evaluate as E
from imtrans.errors import ConfigError
from imtrans.metrics import Evaluator, fid_from_features, fid_impl_of, get_protocol
from imtrans.metrics.lineages import FID_IMPLS, pil_float_resize
from imtrans.metrics.weights import CLEAN_FID_INCEPTION, PYTORCH_FID_INCEPTION
from imtrans.translate import save_image

N, SIZE = 12, 64  # 12 + 12 images: Inception at 299 costs ~0.2 s an image on one thread


def _write(folder, images, ext: str) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        path = folder / f"{i:03d}.{ext}"
        Image.fromarray(image).save(path, quality=90)
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Translated-like PNGs (brighter, noisier) and JPEG references of smooth random images."""
    root = tmp_path_factory.mktemp("lineages")
    rng = np.random.default_rng(0)
    images = [
        np.asarray(Image.fromarray((s * 255).astype(np.uint8)).resize((SIZE, SIZE), Image.BICUBIC))
        for s in rng.random((2 * N, 8, 8, 3))
    ]
    noise = rng.integers(0, 120, (N, SIZE, SIZE, 3))
    fake = [np.clip(im // 2 + 60 + n, 0, 255).astype(np.uint8) for im, n in zip(images[:N], noise)]
    _write(root / "fake", fake, "png")
    _write(root / "real", images[N:], "jpg")
    return root / "fake", root / "real"


def _evaluate(fake, real, tmp_path, fid_impl: str) -> dict:
    out = tmp_path / f"{fid_impl}.json"
    return E.main([f"fake={fake}", f"real={real}", f"metrics.fid_impl={fid_impl}", "metrics.lpips=false",
                   f"out={out}", "device=cpu"])  # fmt: skip


@pytest.fixture
def clean_fid_stand_in(monkeypatch, metric_weights):
    """clean-fid's own TorchScript loader, reading the stand-in's folder instead of /tmp."""
    from cleanfid import features
    from cleanfid.inception_torchscript import InceptionV3W

    folder = str(metric_weights[CLEAN_FID_INCEPTION.key].parent)

    def loader(path, download=True, resize_inside=False):
        return InceptionV3W(folder, download=False, resize_inside=resize_inside)

    monkeypatch.setattr(features, "InceptionV3W", loader)


@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")  # sqrtm: fewer images than dimensions
def test_pytorch_fid_equals_the_package_on_folders(folders, tmp_path, metric_weights):
    from pytorch_fid.fid_score import calculate_fid_given_paths

    fake, real = folders
    ours = _evaluate(fake, real, tmp_path, "pytorch_fid")
    # pytorch-fid loads pt_inception-2015-12-05-6726825d.pth from $TORCH_HOME/hub/checkpoints
    expected = calculate_fid_given_paths([str(real), str(fake)], 50, "cpu", 2048, num_workers=0)
    assert expected > 1 and ours["scores"]["fid"] == pytest.approx(expected, rel=1e-3)
    assert ours["scores"]["n_fake"] == ours["scores"]["n_reference"] == N
    assert ours["fid_impl"] == ours["protocol"]["fid_impl"] == "pytorch_fid"
    assert ours["fid_weights"] == str(metric_weights[PYTORCH_FID_INCEPTION.key])
    assert ours["protocol"]["fid"]["weights"] == PYTORCH_FID_INCEPTION.filename
    assert any("stand-in" in line for line in ours["notices"])  # never passes for the published FID


def test_clean_fid_equals_the_package_on_folders(folders, tmp_path, clean_fid_stand_in):
    from cleanfid import fid as cleanfid
    from cleanfid.features import build_feature_extractor

    fake, real = folders
    ours = _evaluate(fake, real, tmp_path, "clean")
    cpu = torch.device("cpu")
    # KID end to end; as many images a side as the subset size, so every subset is the whole set
    # and the draws (clean-fid's are unseeded) do not matter
    expected_kid = cleanfid.compute_kid(str(fake), str(real), mode="clean", num_workers=0, batch_size=8,
                                        device=cpu, verbose=False, use_dataparallel=False)  # fmt: skip
    assert expected_kid > 1e-3 and ours["scores"]["kid"] == pytest.approx(expected_kid, rel=1e-3)
    # FID: clean-fid's features of the folders ...
    model = build_feature_extractor("clean", cpu, use_dataparallel=False)
    theirs = [
        cleanfid.get_folder_features(
            str(d), model, num_workers=0, batch_size=8, device=cpu, mode="clean", verbose=False
        )  # fmt: skip
        for d in (fake, real)
    ]
    ev = Evaluator(get_protocol("quick", fid_impl="clean"), lpips=False, notify=None)
    ev.prepare()
    for folder, features in zip((fake, real), theirs):
        images = torch.stack([E.read_image(p) for p in E.list_images(folder)])
        assert np.allclose(
            ev.features(ev.quantize(ev.signed(images))).numpy(), features, rtol=1e-4, atol=1e-5
        )
    # ... give imtrans's number, and clean-fid's formula is imtrans's
    fake_f, real_f = (torch.from_numpy(f) for f in theirs)
    assert ours["scores"]["fid"] == pytest.approx(fid_from_features(fake_f, real_f), rel=1e-5)
    part = cleanfid.fid_from_feats(theirs[0][:, :256], theirs[1][:, :256])
    assert part > 1 and fid_from_features(fake_f[:, :256], real_f[:, :256]) == pytest.approx(part, rel=1e-4)
    assert ours["fid_impl"] == "clean" and ours["protocol"]["fid"]["weights"] == CLEAN_FID_INCEPTION.filename


def test_clean_resize_is_clean_fids():
    from cleanfid.resize import build_resizer

    resize = build_resizer("clean")
    g = torch.Generator().manual_seed(0)
    for h, w in ((64, 64), (320, 400), (299, 299)):  # enlarged, shrunk (antialiased), unchanged
        image = (torch.rand(3, h, w, generator=g) * 255).to(torch.uint8)
        expected = resize(image.permute(1, 2, 0).numpy())
        ours = pil_float_resize(image[None], 299)[0].permute(1, 2, 0).numpy()
        assert ours.dtype == expected.dtype == np.float32
        assert np.array_equal(ours, expected)


@pytest.mark.parametrize("fid_impl", ["pytorch_fid", "clean"])
def test_in_memory_outputs_equal_the_package_on_the_saved_pngs(fid_impl, tmp_path, clean_fid_stand_in):
    """The callback's path (float outputs -> quantize -> the lineage's network) gives the features
    the package computes from the PNGs ``imtrans translate`` writes of the same outputs (shrunk
    to 299 here, where an antialiased resize would differ; the folder tests enlarge)."""
    outputs = (
        torch.rand(4, 3, 320, 320, generator=torch.Generator().manual_seed(2)) * 2.2 - 1.1
    )  # clamped too
    files = []
    for i, image in enumerate(outputs):
        save_image(image, tmp_path / f"{i}.png")
        files.append(str(tmp_path / f"{i}.png"))
    ev = Evaluator(get_protocol("quick", fid_impl=fid_impl), lpips=False, notify=None)
    ev.prepare()
    ours = ev.features(ev.quantize(outputs))
    if fid_impl == "pytorch_fid":
        from pytorch_fid.fid_score import get_activations
        from pytorch_fid.inception import InceptionV3

        expected = get_activations(files, InceptionV3([3]), batch_size=4, num_workers=0)
    else:
        from cleanfid.features import build_feature_extractor
        from cleanfid.fid import get_files_features

        model = build_feature_extractor("clean", torch.device("cpu"), use_dataparallel=False)
        expected = get_files_features(files, model, num_workers=0, batch_size=4, device="cpu", verbose=False)
    assert float(ours.std(0).mean()) > 1e-3  # the stand-ins give features that differ between images
    assert np.allclose(ours.numpy(), expected, rtol=1e-4, atol=1e-5)


def test_cut_references_are_read_from_their_files(folders, metric_weights):
    """The cut protocol scores against the target test files, as ``python -m pytorch_fid testB``
    reads them, not the data set's transformed images."""
    from pytorch_fid.fid_score import get_activations
    from pytorch_fid.inception import InceptionV3

    _, real = folders
    paths = sorted(real.glob("*.jpg"))[:2]

    class Unpaired(torch.utils.data.Dataset):  # a data set whose images are not its files'
        paths_b = paths

        def __len__(self):
            return len(paths)

        def __getitem__(self, i):
            return {"B": torch.zeros(3, SIZE, SIZE)}

    protocol = get_protocol("cut", {"image_size": SIZE})
    assert protocol.fid_impl == "pytorch_fid" and protocol.image_source == "files"
    ev = Evaluator(protocol, lpips=False, notify=None)
    ev.prepare()
    expected = get_activations(paths, InceptionV3([3]), batch_size=2, num_workers=0)
    assert np.allclose(ev.reference_features(Unpaired(), "B").numpy(), expected, rtol=1e-4, atol=1e-5)
    # the data set's images where the protocol says so
    ev = Evaluator(
        get_protocol("cut", {"image_size": SIZE, "image_source": "dataset"}), lpips=False, notify=None
    )
    ev.prepare()
    assert not np.allclose(ev.reference_features(Unpaired(), "B").numpy(), expected, atol=1e-3)


def test_each_protocol_names_its_lineage_and_weights():
    expected = {"cut": "pytorch_fid", "stargan_v2": "stargan_v2", "munit": "torch_fidelity",
                "bicyclegan": "torch_fidelity", "quick": "torch_fidelity"}  # fmt: skip
    for name, lineage in expected.items():
        record = get_protocol(name).record()
        assert record["fid_impl"] == record["fid"]["impl"] == lineage
        assert record["fid"]["weights"] == FID_IMPLS[lineage].weights.filename
        assert record["fid_features"] == FID_IMPLS[lineage].features  # the older name, for old readers
        assert record["overrides"] == {}
    clean = get_protocol("cut", fid_impl="clean").record()
    assert clean["fid_impl"] == "clean" and clean["overrides"] == {"fid_impl": "clean"}
    assert "none published" in clean["fid"]["weights_sha256"]
    assert get_protocol("cut", {"fid_impl": "clean"}, fid_impl="pytorch_fid").overrides == {}


def test_records_and_overrides_from_before_fid_impl_are_read():
    assert get_protocol("cut", {"fid_features": "torchvision_inception_v3"}).fid_impl == "stargan_v2"
    assert fid_impl_of({"fid_features": "torch_fidelity_inception"}) == "torch_fidelity"
    assert fid_impl_of(get_protocol("cut").record()) == "pytorch_fid"
    with pytest.raises(ConfigError, match=r"^metrics.fid_impl=tf: not a FID lineage .*; use one of"):
        get_protocol("cut", fid_impl="tf")
    with pytest.raises(ConfigError, match="fid_features=clean_fid"):
        get_protocol("cut", {"fid_features": "clean_fid"})


def test_metrics_fid_impl_reaches_the_callback_and_evaluate(metric_weights):
    from omegaconf import OmegaConf

    from imtrans.callbacks import Evaluation
    from tests.helpers import compose_config

    cfg = compose_config(["+metrics=quick"] if "metrics" not in compose_config([]) else [])
    node = OmegaConf.merge(cfg.metrics, {"fid_impl": "clean", "best_checkpoint": None})
    assert E.build_evaluator(node, "cpu").protocol.fid_impl == "clean"
    callback = Evaluation(protocol="quick", fid_impl="pytorch_fid", lpips=False)
    callback.evaluator.prepare()
    record = callback.protocol_record()
    assert record["fid_impl"] == "pytorch_fid" and record["overrides"] == {"fid_impl": "pytorch_fid"}
    assert record["weights"][PYTORCH_FID_INCEPTION.key] == str(metric_weights[PYTORCH_FID_INCEPTION.key])
