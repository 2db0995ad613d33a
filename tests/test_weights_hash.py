"""Standard weight files are checked against their published SHA-256 before use (imtrans.pretrained).

The real files are not on the test machines: a file written here under a standard name is the
"wrong file" of the issue, and a pass is shown by pointing the table of published digests at a
file the test writes. Each test removes ``IMTRANS_STAND_IN_WEIGHTS`` (tests/conftest.py), which
otherwise lets the suite's random-weight stand-ins through.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import pytest
import torch
from PIL import Image

from imtrans import pretrained as P
from imtrans.metrics import weights as W
from imtrans.pretrained import STAND_IN_ENV, WeightsMismatchError


@pytest.fixture(autouse=True)
def _checked(tmp_path, monkeypatch):
    """Hash checks on, an empty torch hub cache, no download."""
    monkeypatch.delenv(STAND_IN_ENV, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("IMTRANS_METRICS_DOWNLOAD", "0")
    monkeypatch.delenv("IMTRANS_WEIGHTS", raising=False)


def fake_file(path, content: bytes = b"not the published weights") -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return hashlib.sha256(content).hexdigest()


def assert_refusal_line(message: str, path, filename: str, expected: str, actual: str) -> None:
    assert "\n" not in message, message
    assert str(path) in message and filename in message, message
    assert expected[:8] in message and actual[:8] in message, message
    assert "download it again from" in message or "reinstall" in message, message


def test_expected_digests_come_from_the_names_or_published_sources():
    assert P.expected_sha256(W.INCEPTION.filename) == "6726825d"
    assert P.expected_sha256(W.TORCHVISION_INCEPTION.filename) == "0cc3c7bd"
    assert P.expected_sha256(W.ALEXNET.filename) == "7be5be79"
    assert P.expected_sha256("vgg19-dcbb9e9d.pth") == "dcbb9e9d"
    assert len(P.expected_sha256("alex.pth")) == 64  # LPIPS heads: the full published digest
    assert P.expected_sha256("wing.ckpt") is None  # StarGAN v2's FAN: none published


def test_metric_file_with_the_standard_name_but_other_content_is_refused(tmp_path):
    weights_dir = tmp_path / "w"
    actual = fake_file(weights_dir / W.INCEPTION.filename)
    with pytest.raises(WeightsMismatchError) as err:
        W.resolve_weights("inception", weights_dir)
    path = weights_dir / W.INCEPTION.filename
    assert_refusal_line(str(err.value), path, W.INCEPTION.filename, "6726825d", actual)
    assert W.INCEPTION.url in str(err.value)
    # the evaluator does not fall back to "FID skipped": it stops, for the user to fix
    from imtrans.metrics import Evaluator, get_protocol

    ev = Evaluator(get_protocol("quick"), weights_dir=weights_dir, lpips=False, notify=None)
    with pytest.raises(WeightsMismatchError):
        ev.prepare()
    assert ev.inception is None
    # and the network loader refuses it too, before reading it
    from imtrans.metrics.networks import AlexLPIPS, InceptionFeatures

    with pytest.raises(WeightsMismatchError):
        InceptionFeatures(path)
    fake_file(tmp_path / W.ALEXNET.filename)
    with pytest.raises(WeightsMismatchError, match="7be5be79"):
        AlexLPIPS(tmp_path / W.ALEXNET.filename)


def test_a_file_with_the_published_digest_passes_and_is_hashed_once(tmp_path, monkeypatch):
    path = tmp_path / "w" / W.INCEPTION.filename
    digest = fake_file(path, b"pretend these are the published bytes")
    monkeypatch.setitem(P.PUBLISHED_SHA256, W.INCEPTION.filename, digest)
    calls = []
    real_sha256 = hashlib.sha256
    monkeypatch.setattr(P.hashlib, "sha256", lambda *a: calls.append(1) or real_sha256(*a))
    assert W.resolve_weights("inception", tmp_path / "w") == path
    assert W.verify("inception", path) == "verified" and len(calls) == 1  # cached
    path.write_bytes(b"pretend these are the published bytes, now changed")
    os.utime(path, ns=(1, 1))
    with pytest.raises(WeightsMismatchError, match=digest[:16]):  # new size and time: hashed again
        W.verify("inception", path)
    assert len(calls) == 2


def test_the_installed_lpips_heads_match_their_published_digest():
    from imtrans.metrics.networks import default_lpips_heads

    assert W.verify(W.LPIPS_ALEX_HEADS, default_lpips_heads()) == "verified"


def test_a_download_is_checked_by_its_hash_prefix(tmp_path, monkeypatch):
    monkeypatch.setenv("IMTRANS_METRICS_DOWNLOAD", "1")
    monkeypatch.setattr(W, "_reachable", lambda url, timeout=5.0: True)
    prefixes = []

    def download(url, dst, hash_prefix=None, progress=True):  # a mirror that serves another file
        prefixes.append(hash_prefix)
        fake_file(Path(dst))

    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    with pytest.raises(WeightsMismatchError, match="download it again"):
        W.resolve_weights("alexnet")
    assert prefixes == ["7be5be79"]


def test_evaluate_cli_exits_2_with_one_line_and_no_scores(tmp_path, capsys):
    from imtrans import evaluate as E

    for name in ("fake", "real"):
        (tmp_path / name).mkdir()
        Image.new("RGB", (16, 16)).save(tmp_path / name / "0.png")
    actual = fake_file(tmp_path / "w" / W.INCEPTION.filename)
    out = tmp_path / "e.json"
    argv = [f"fake={tmp_path / 'fake'}", f"real={tmp_path / 'real'}", f"out={out}", "device=cpu"]
    with pytest.raises(SystemExit) as exit_info:
        E.main([*argv, f"metrics.weights_dir={tmp_path / 'w'}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("imtrans.evaluate: "), err
    path = tmp_path / "w" / W.INCEPTION.filename
    assert_refusal_line(err, path, W.INCEPTION.filename, "6726825d", actual)
    assert not out.exists()


def test_perceptual_loss_weights_are_checked_before_training(tmp_path):
    from imtrans.losses.perceptual import VGG16_FILE, load_vgg16_relu5_3, vgg16_weights_path
    from imtrans.run import _user_error

    actual = fake_file(vgg16_weights_path())
    with pytest.raises(WeightsMismatchError) as err:
        load_vgg16_relu5_3()
    assert_refusal_line(str(err.value), vgg16_weights_path(), VGG16_FILE, "397923af", actual)
    # a file given by path is held to the same published file, whatever its name
    fake_file(tmp_path / "my_vgg.pth")
    with pytest.raises(WeightsMismatchError, match=VGG16_FILE):
        load_vgg16_relu5_3(tmp_path / "my_vgg.pth")
    # imtrans.run reports it as the user's to fix (one line, exit 2), also when Hydra wraps it
    try:
        raise RuntimeError("Error in call to target") from err.value
    except RuntimeError as wrapped:
        label, cause = _user_error(wrapped)
    assert cause is err.value and label


def test_files_without_a_published_digest_are_used_with_a_warning(tmp_path, caplog):
    path = tmp_path / "wing.ckpt"
    fake_file(path)
    with caplog.at_level(logging.WARNING, logger="imtrans"):
        assert P.check_weights(path, "wing.ckpt") == "no published hash"
        assert P.check_weights(path, "wing.ckpt") == "no published hash"
    lines = [r.getMessage() for r in caplog.records if "without a hash check" in r.getMessage()]
    assert len(lines) == 1 and str(path) in lines[0] and "Dropbox" in lines[0]  # once per file


def test_stand_ins_are_declared_and_said_next_to_the_scores(tmp_path, monkeypatch):
    from imtrans.metrics import Evaluator, get_protocol

    fake_file(tmp_path / "w" / W.INCEPTION.filename)
    monkeypatch.setenv(STAND_IN_ENV, str(tmp_path / "w"))
    assert W.verify("inception", tmp_path / "w" / W.INCEPTION.filename) == "stand-in"
    ev = Evaluator(get_protocol("quick"), weights_dir=tmp_path / "w", lpips=False, notify=None)
    ev.prepare()
    assert ev.available == {"inception": True}
    (line,) = ev.notices
    assert "FID and KID from a stand-in" in line and "not the published scores" in line
    # and the training callback's record, written next to the numbers, says it too
    from imtrans.callbacks import Evaluation

    cb = Evaluation(protocol="quick", weights_dir=str(tmp_path / "w"), lpips=False)
    cb.evaluator.prepare()
    record = cb.protocol_record()
    assert record["weights"]["inception"] == str(tmp_path / "w" / W.INCEPTION.filename)
    assert set(record["stand_in_weights"]) == {"inception"}
    # outside the declared folder the same content is refused
    fake_file(tmp_path / "v" / W.INCEPTION.filename)
    with pytest.raises(WeightsMismatchError):
        W.resolve_weights("inception", tmp_path / "v")


def test_fid_lineage_files_are_checked_or_used_with_a_notice(tmp_path):
    """pytorch-fid's file carries its SHA-256 prefix in its name; clean-fid's TorchScript file has
    no published digest: it is used, and the evaluation says so in one line (not a refusal)."""
    from imtrans.metrics import Evaluator, get_protocol

    assert P.expected_sha256(W.PYTORCH_FID_INCEPTION.filename) == "6726825d"
    assert P.expected_sha256(W.CLEAN_FID_INCEPTION.filename) is None
    weights_dir = tmp_path / "w"
    actual = fake_file(weights_dir / W.PYTORCH_FID_INCEPTION.filename)
    ev = Evaluator(get_protocol("cut"), weights_dir=weights_dir, lpips=False, notify=None)
    with pytest.raises(WeightsMismatchError) as err:
        ev.prepare()
    path = weights_dir / W.PYTORCH_FID_INCEPTION.filename
    assert_refusal_line(str(err.value), path, W.PYTORCH_FID_INCEPTION.filename, "6726825d", actual)
    fake_file(weights_dir / W.CLEAN_FID_INCEPTION.filename)
    lines = []
    ev = Evaluator(
        get_protocol("cut", fid_impl="clean"), weights_dir=weights_dir, lpips=False, notify=lines.append
    )
    ev.prepare()
    assert ev.available == {W.CLEAN_FID_INCEPTION.key: True} and len(lines) == 1
    assert "without a hash check" in lines[0] and "NVIDIA" in lines[0]
    assert str(weights_dir / W.CLEAN_FID_INCEPTION.filename) in lines[0]
