"""``imtrans reproduce`` end to end offline: the official CUT fixture (reduced width) in a zoo-like
entry, a tiny data set in the official testA/testB layout, placed files, stand-in metric weights.

The report must hold every field and mark numbers from stand-in weights "not comparable"; a
missing weight file or data set must be refused with one line naming what to place where."""

from __future__ import annotations

import hashlib
import json
import shutil
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from imtrans import reproduce as rep
from imtrans.official import zoo
from tests.metrics.weights import write_clean_fid_inception, write_pytorch_fid_inception
from tests.official.helpers import fixture

NAME = "cut_tiny"
G_PATH = "checkpoints/tiny_cut/latest_net_G.pth"


def _item(value, metric, lineage, **extra) -> dict:
    return {
        "value": value,
        "metric": metric,
        "lineage": lineage,
        "split": "test: the translated testA vs testB, 32x32",
        "weights": "paper",
        "source": f"a test table, {metric} {lineage}",
        "url": "https://example.org/table",
        **extra,
    }


def entry() -> dict:
    """A zoo entry as zoo.yaml writes them, for the CUT fixture at a 32x32 test size."""
    return {
        "name": NAME,
        "method": "cut",
        "repository": "taesungp/contrastive-unpaired-translation",
        "translates": "a -> b",
        "data": "tiny",
        "resolution": {"train": "64x64", "test": "32x32 (load_size = crop_size = 32; no crop)"},
        "manual": False,
        "files": [{"url": "http://example.invalid/tiny/latest_net_G.pth", "path": G_PATH}],
        "import_path": G_PATH,
        "official_test": "python test.py --dataroot ./datasets/tiny --name tiny_cut --load_size 32 --crop_size 32",
        "options": {"mode": "cut"},
        "overrides": [
            "data=unpaired",
            "data.name=tiny",
            "data.root=${paths.data_dir}/tiny",
            "data.load_size=32",
            "data.crop_size=32",
        ],
        "paper": "arXiv:2007.15651",
        "reported": [
            _item(45.51, "FID", "pytorch-fid"),
            _item(43.71, "FID", "clean-fid"),
            _item(62.111, "FID", "mmagic"),
            _item(0.45, "LPIPS", "stargan-v2", spread=0.01),
        ],
    }


def _images(folder: Path, count: int, size: tuple[int, int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(folder / f"{i}.jpg")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """Placed weights, a data set (inputs 48x40, resized to 32x32 as the official test does),
    stand-in metric weights (under the session's stand-in folder) and the zoo file."""
    base = tmp_path_factory.mktemp("reproduce")
    root = base / "pretrained"
    (root / NAME / G_PATH).parent.mkdir(parents=True)
    shutil.copy(fixture("cut") / "latest_net_G.pth", root / NAME / G_PATH)
    data = base / "data"
    _images(data / "tiny" / "testA", 3, (48, 40), seed=0)
    _images(data / "tiny" / "testB", 3, (32, 32), seed=1)
    weights = base / "metric_weights"
    write_pytorch_fid_inception(weights / "pt_inception-2015-12-05-6726825d.pth")
    write_clean_fid_inception(weights / "inception-2015-12-05.pt")
    zoo_file = base / "zoo.yaml"
    zoo_file.write_text(yaml.safe_dump({"version": 1, "models": [entry()]}))
    return {"base": base, "root": root, "data": data, "weights": weights, "zoo": zoo_file}


def _args(world: dict, out: Path, **extra) -> list[str]:
    args = {"zoo": world["zoo"], "root": world["root"], "data_root": world["data"], "out": out}
    args.update({"weights_dir": world["weights"], **extra})
    return [NAME, *(f"{k}={v}" for k, v in args.items())]


def test_reproduce_writes_the_report(world, tmp_path, capsys):
    out = tmp_path / "out"
    rep.main(_args(world, out))
    printed = capsys.readouterr().out
    report = json.loads((out / "reproduce.json").read_text())

    # the weight file, hashed
    placed = world["root"] / NAME / G_PATH
    assert report["weights"] == [
        {
            "file": str(placed),
            "url": entry()["files"][0]["url"],
            "sha256": hashlib.sha256(placed.read_bytes()).hexdigest(),
        }
    ]
    # every test input translated at the entry's test size, quantised as the official tensor2im
    t = report["translation"]
    assert (t["direction"], t["n_inputs"], t["size"]) == ("a2b", 3, "32x32")
    written = sorted((out / "translated").glob("*.png"))
    assert [p.name for p in written] == ["0_a2b.png", "1_a2b.png", "2_a2b.png"]
    from imtrans.inference import load_for_inference

    model, _ = load_for_inference(report["import"])
    x = rep.official_input(world["data"] / "tiny" / "testA" / "0.jpg", (32, 32))
    with model.inference_mode():
        y = model.translate(x[None], direction="a2b")[0]
    expected = np.floor((y.clamp(-1, 1) + 1).permute(1, 2, 0).numpy() / 2 * 255).astype(np.uint8)
    assert np.array_equal(np.asarray(Image.open(written[0])), expected)

    # both lineages measured with their stand-in networks, and therefore not comparable
    lineages = report["lineages"]
    assert sorted(lineages) == ["clean", "pytorch_fid"]
    for impl, run in lineages.items():
        assert run["metric_weights_status"] == "stand-in" and len(run["metric_weights_sha256"]) == 64
        assert np.isfinite(run["scores"]["fid"]) and run["scores"]["n_fake"] == 3, impl
    verdicts = {(n["metric"], n["lineage"]): n for n in report["numbers"]}
    fid = verdicts[("FID", "pytorch-fid")]
    assert fid["measured"] == lineages["pytorch_fid"]["scores"]["fid"] and fid["reported"] == 45.51
    assert fid["difference"] == pytest.approx(fid["measured"] - 45.51)
    assert fid["verdict"].startswith("not comparable: stand-in weights")
    assert verdicts[("FID", "clean-fid")]["verdict"].startswith("not comparable: stand-in weights")
    assert verdicts[("FID", "mmagic")]["verdict"].startswith("not comparable: lineage mmagic")
    assert verdicts[("LPIPS", "stargan-v2")]["verdict"].startswith(
        "not comparable: imtrans reproduce measures"
    )
    for n in report["numbers"]:
        assert {"split", "source", "url", "spread", "weights_scored_by_source", "fid_impl"} <= set(n)
    assert report["tolerance"] == rep.DEFAULT_TOLERANCE and report["protocol"] == "cut"
    assert report["data"]["n_real"] == 3 and report["weights_dir"] == str(world["weights"])

    # the same FID as `imtrans evaluate fake=DIR real=DIR` in that lineage
    from imtrans import evaluate

    scored = evaluate.main(
        [
            f"fake={out / 'translated'}",
            f"real={world['data'] / 'tiny' / 'testB'}",
            "metrics=cut",
            "metrics.fid_impl=pytorch_fid",
            f"metrics.weights_dir={world['weights']}",
            f"out={tmp_path / 'evaluation.json'}",
            "device=cpu",
        ]
    )
    assert scored["scores"]["fid"] == pytest.approx(fid["measured"], rel=1e-9)

    md = (out / "reproduce.md").read_text()
    assert md.startswith(f"# imtrans reproduce {NAME}") and "| FID | pytorch-fid | 45.51 |" in md
    assert report["weights"][0]["sha256"] in md and "0.45 ± 0.01" in md
    assert "FID (pytorch-fid): reported 45.51" in printed and "not comparable" in printed


def test_missing_weights_file_is_one_line_naming_it_and_its_place(world, tmp_path, monkeypatch, capsys):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(zoo, "urlopen", offline)
    empty = tmp_path / "empty"
    with pytest.raises(SystemExit) as stop:
        rep.main([*_args(world, tmp_path / "out"), f"root={empty}"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("imtrans: ")]  # not the progress
    assert stop.value.code == 2 and len(lines) == 1, err
    assert (
        lines[0].startswith("imtrans: missing weights: ") and "offline: cannot reach example.invalid" in err
    )
    assert f"place {entry()['files'][0]['url']} at {empty / NAME / G_PATH}" in err
    assert not (tmp_path / "out").exists()


def test_missing_data_set_is_one_line_with_the_layout(world, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        rep.main([*_args(world, tmp_path / "out"), f"data_root={tmp_path / 'nodata'}"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1, err
    folder = tmp_path / "nodata" / "tiny"
    assert err.startswith(f"imtrans: data error: {folder}: not found; place the tiny data set as ")
    assert f"{folder}/{{trainA,trainB,testA,testB}}" in err


def test_other_layouts_and_unknown_options_are_refused(tmp_path):
    with pytest.raises(ValueError, match="data=cityscapes .*LabelDataModule.*not label maps"):
        rep.reproduce(NAME, {}, entries=[{**entry(), "overrides": ["data=cityscapes"]}])
    with pytest.raises(ValueError, match="multi-domain entry without protocol"):
        rep.reproduce(NAME, {}, entries=[{**entry(), "overrides": ["data=afhq"]}])
    with pytest.raises(ValueError, match="^seeds=0: must be at least 1"):
        rep.reproduce(NAME, {"seeds": "0"}, entries=[entry()])
    cropped = {**entry(), "resolution": {"test": "216x216 (resize 256x256 bicubic, centre crop 216)"}}
    with pytest.raises(ValueError, match="the official test crops"):
        rep.reproduce(NAME, {}, entries=[cropped])
    with pytest.raises(ValueError, match="^colour=red: not an option"):
        rep.reproduce(NAME, {"colour": "red"}, entries=[entry()])


def test_verdicts():
    item = _item(40.0, "FID", "pytorch-fid")
    assert rep.verdict(item, 40.7, None, 0.02) == "within tolerance 0.02"
    assert rep.verdict(item, 41.0, None, 0.02) == "differs"
    assert rep.verdict({**item, "spread": 1.5}, 41.0, None, 0.02) == "within the reported spread"
    assert rep.verdict(item, 40.0, "stand-in weights", 0.02) == "not comparable: stand-in weights"
    # only the published network makes a number comparable
    run = {"metric_weights_status": "verified", "metric_weights": "w.pth", "notices": []}
    assert rep._not_comparable(item, run) is None
    assert rep._not_comparable(item, {**run, "metric_weights_status": "no published hash"}) is None
    assert rep._not_comparable(item, {**run, "metric_weights_status": "stand-in"}).startswith("stand-in")
    missing = {**run, "metric_weights_status": "missing", "notices": ["imtrans: place x at y"]}
    assert rep._not_comparable(item, missing) == "no pytorch-fid weights (imtrans: place x at y)"
    assert rep._not_comparable({**item, "split": "train: 1000"}, run).startswith("split")


def test_test_size_and_direction_of_an_entry():
    assert rep.official_size(entry()) == (32, 32)
    with pytest.raises(ValueError, match="resolution.test"):
        rep.official_size({**entry(), "resolution": {"test": "the official size"}})
    assert rep.direction_of({**entry(), "options": {"direction": "b2a"}}) == "b2a"


# ----------------------------------------------------------------------------- paired and multi-domain
def test_paired_entry_translates_one_half_and_scores_against_the_other(tmp_path, capsys):
    """pix2pix's side-by-side AB files with --direction BtoA: the right halves are translated
    (train-mode inference, one image at a time, as test.py), the left halves written as test.py
    saves real_B, both at the test size."""
    pix = {
        **entry(),
        "name": "pix_tiny",
        "method": "pix2pix",
        "resolution": {"test": "128x128 (load_size = crop_size = 128)"},
        "options": {},
        "overrides": ["data=paired", "data.name=ab_tiny", "data.root=${paths.data_dir}/ab_tiny", "data.layout=ab",
                      "data.direction=BtoA", "data.load_size=128", "data.crop_size=128"],
        "reported": [_item(119.1, "FID", "pytorch-fid")],
    }  # fmt: skip
    root = tmp_path / "pretrained"
    (root / "pix_tiny" / G_PATH).parent.mkdir(parents=True)
    shutil.copy(fixture("pix2pix") / "latest_net_G.pth", root / "pix_tiny" / G_PATH)
    rng = np.random.default_rng(3)
    for split, n in (("train", 1), ("test", 2)):
        (tmp_path / "data" / "ab_tiny" / split).mkdir(parents=True)
        for i in range(n):
            ab = rng.integers(0, 256, (40, 80, 3), dtype=np.uint8)
            Image.fromarray(ab).save(tmp_path / "data" / "ab_tiny" / split / f"{i}.png")
    weights = tmp_path / "w"
    write_pytorch_fid_inception(weights / "pt_inception-2015-12-05-6726825d.pth")
    out = tmp_path / "out"
    args = {"root": root, "data_root": tmp_path / "data", "out": out, "weights_dir": weights}
    report = rep.reproduce("pix_tiny", {k: str(v) for k, v in args.items()}, entries=[pix])

    test = sorted((tmp_path / "data" / "ab_tiny" / "test").glob("*.png"))
    real = sorted((out / "real").glob("*.png"))
    expected = [rep.official_input(rep.TestImage(p, "left"), (128, 128)) for p in test]
    for path, x in zip(real, expected, strict=True):
        want = np.floor((x + 1).permute(1, 2, 0).numpy() / 2 * 255).astype(np.uint8)
        assert np.array_equal(np.asarray(Image.open(path)), want)
    from imtrans.inference import load_for_inference

    model, _ = load_for_inference(report["import"])
    x = torch.stack([rep.official_input(rep.TestImage(p, "right"), (128, 128)) for p in test])
    torch.manual_seed(0)  # as translate_test: dropout draws from seed 0, image after image
    with model.inference_mode():
        y = model.translate(x, direction="a2b")
    for path, image in zip(sorted((out / "translated").glob("*.png")), y, strict=True):
        want = np.floor((image.clamp(-1, 1) + 1).permute(1, 2, 0).numpy() / 2 * 255).astype(np.uint8)
        assert np.array_equal(np.asarray(Image.open(path)), want)
    assert report["data"]["inputs"].endswith("(right halves)") and "real_B" in report["data"]["real_images"]
    (number,) = report["numbers"]
    assert number["verdict"].startswith("not comparable: stand-in weights") and np.isfinite(
        number["measured"]
    )


def test_multi_domain_entry_is_scored_by_its_protocol_per_seed(tmp_path, capsys):
    """StarGAN v2 (official fixture, 3 domains at 32x32) on a folder-per-domain data set: the
    entry's protocol runs once per seed; each reported number is the mean of its score key; a
    changed protocol and stand-in networks make every number "not comparable"."""
    from tests.metrics.weights import write_alexnet, write_torchvision_inception

    sg = {
        **entry(),
        "name": "sg_tiny",
        "method": "stargan_v2",
        "resolution": {"test": "32x32 (resize, no crop)"},
        "files": [{"url": "http://example.invalid/sg/000001_nets_ema.ckpt", "path": "000001_nets_ema.ckpt"}],
        "import_path": "000001_nets_ema.ckpt",
        "options": {},
        "overrides": ["data=domains", "data.name=dom_tiny", "data.root=${paths.data_dir}/dom_tiny",
                      "data.load_size=32", "data.crop_size=32"],
        "protocol": "stargan_v2",
        "reported": [
            _item(16.18, "FID", "stargan-v2", spread=0.15, score="latent/mean/fid"),
            _item(0.45, "LPIPS", "stargan-v2 (LPIPS v0.1 alex)", score="reference/mean/lpips_div"),
            _item(1.0, "FID", "stargan-v2"),
            _item(2.0, "FID", "stargan-v2", score="latent/mean/fidd"),
        ],
    }  # fmt: skip
    root = tmp_path / "pretrained"
    (root / "sg_tiny").mkdir(parents=True)
    shutil.copy(fixture("stargan_v2") / "w_hpf0" / "000001_nets_ema.ckpt", root / "sg_tiny")
    for split, n in (("train", 2), ("val", 1)):
        for k, domain in enumerate(("cat", "dog", "wild")):
            _images(tmp_path / "data" / "dom_tiny" / split / domain, n, (40, 40), seed=10 * k + n)
    weights = tmp_path / "w"
    write_torchvision_inception(weights / "inception_v3_google-0cc3c7bd.pth")
    write_alexnet(weights / "alexnet-owt-7be5be79.pth")
    out = tmp_path / "out"
    args = {"root": root, "data_root": tmp_path / "data", "out": out, "weights_dir": weights, "seeds": 2,
            "metrics.overrides.samples_per_input": 2, "metrics.overrides.fid_samples_per_input": 2,
            "metrics.overrides.image_size": 32}  # fmt: skip
    rep.main(["sg_tiny", *(f"{k}={v}" for k, v in args.items())] + [f"zoo={_zoo(tmp_path, sg)}"])
    printed = capsys.readouterr().out
    report = json.loads((out / "reproduce.json").read_text())

    assert report["protocol"] == "stargan_v2" and report["translation"]["seeds"] == [0, 1]
    assert report["protocol_changes"] == {
        "samples_per_input": 2,
        "fid_samples_per_input": 2,
        "image_size": 32,
    }
    assert report["data"]["domains"] == ["cat", "dog", "wild"] and report["data"]["n_inputs"] == 3
    runs = list(report["lineages"].values())
    assert [r["seed"] for r in runs] == [0, 1]
    fid, lpips, unkeyed, misspelt = report["numbers"]
    values = [r["scores"]["latent/mean/fid"] for r in runs]
    assert fid["measured"] == pytest.approx(np.mean(values)) and values[0] != values[1]  # the seeds differ
    assert fid["measured_std_over_seeds"] == pytest.approx(np.std(values))
    assert lpips["measured"] == pytest.approx(
        np.mean([r["scores"]["reference/mean/lpips_div"] for r in runs])
    )
    assert fid["verdict"].startswith("not comparable: stand-in weights")
    assert runs[0]["networks"]["LPIPS"]["status"] == "stand-in"
    assert (
        unkeyed["verdict"]
        == "not comparable: the entry names no score key for it (score: <mode>/mean/<score>)"
    )
    assert misspelt["verdict"].startswith(
        "not comparable: score latent/mean/fidd is not among the protocol's"
    )
    assert "latent/mean/fid, latent/mean/kid" in misspelt["verdict"]
    md = (out / "reproduce.md").read_text()
    assert "The protocol was changed (samples_per_input=2, fid_samples_per_input=2, image_size=32)" in md
    assert "inception_v3_google-0cc3c7bd.pth (FID, stand-in)" in md
    assert "3 test inputs translated (2 seeds)" in printed


def _zoo(tmp_path: Path, *entries: dict) -> Path:
    path = tmp_path / "zoo.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "models": list(entries)}))
    return path
