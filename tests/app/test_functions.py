"""The web app's functions called directly (layer 1 of 3; tests/app/test_server.py drives the
running app through gradio_client, tests/app/test_browser.py through Chromium): the page's
controls follow each model's declaration, image translation equals ``imtrans translate`` with the
same keys (samples with a seed, EMA), references, the style slider, attention maps, target domains
by name; label maps: the Cityscapes classes, painting (new instances for countable classes),
per-instance feature clusters, the checks that become messages in the page."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from imtrans import app, cli
from imtrans import inference as inf
from imtrans.data.errors import DataError
from imtrans.data.label_sets import label_set, voc_colour
from imtrans.errors import CheckpointError
from imtrans.translate import translate
from tests.app.models import CLUSTERS, DOMAINS, untrained_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("app_models")
    return {name: untrained_run(name, root) for name in ("munit", "stargan_v2", "ugatit", "pix2pixhd")}


@pytest.fixture(scope="module")
def loaded(runs):
    return {name: app.load(run) for name, run in runs.items()}


@pytest.fixture
def photo(tmp_path):
    """An RGBA image of odd size (composited on white when read)."""
    path = tmp_path / "photo.png"
    Image.fromarray(np.random.RandomState(0).randint(0, 256, (37, 45, 4), dtype=np.uint8)).save(path)
    return path


def _pixels(outcome: app.Outcome) -> list[np.ndarray]:
    return [image.astype(int) for image, _ in outcome.images]


# ---------------------------------------------------------------------- the declaration
def test_controls_follow_each_declaration(loaded):
    c = {name: app.controls(m) for name, m in loaded.items()}
    assert c["munit"] | {} == {
        "input": "image", "task_label": "direction", "tasks": ["a2b", "b2a"], "samples": True, "reference": True,
        "interpolate": True, "style_images": True, "attention": [], "ema": True, "instance_maps": False,
        "clusters": False, "fixed_size": None,
    }  # fmt: skip
    assert c["stargan_v2"]["task_label"] == "target domain" and c["stargan_v2"]["tasks"] == list(DOMAINS)
    assert c["stargan_v2"]["interpolate"] and not c["stargan_v2"]["style_images"]  # E's codes are not z's
    assert c["ugatit"]["attention"] == ["G", "D_global", "D_local"]
    assert not (
        c["ugatit"]["samples"] or c["ugatit"]["reference"] or c["ugatit"]["interpolate"] or c["ugatit"]["ema"]
    )
    p = c["pix2pixhd"]
    assert (p["input"], p["instance_maps"], p["clusters"], p["interpolate"]) == ("labels", True, True, False)
    assert set(loaded["pix2pixhd"].clusters) == set(CLUSTERS)
    assert [len(v) for _, v in sorted(loaded["pix2pixhd"].clusters.items())] == [
        CLUSTERS[k] for k in sorted(CLUSTERS)
    ]
    assert "35 classes (cityscapes)" in app.describe(loaded["pix2pixhd"])


def test_cityscapes_classes_and_generic_ones():
    cs = label_set("cityscapes", 35)
    assert (cs.names[7], cs.colours[7], cs.names[26], cs.colours[26]) == (
        "road",
        (128, 64, 128),
        "car",
        (0, 0, 142),
    )
    assert cs.things == frozenset(range(24, 34)) and cs.names[34] == "unused 34" and len(cs) == 35
    other = label_set(None, 5)
    assert (
        other.names[3] == "class 3" and other.colours[1] == voc_colour(1) == (128, 0, 0) and not other.things
    )


# ---------------------------------------------------------------------- images
def test_samples_equal_imtrans_translate_with_the_same_keys(loaded, runs, photo, tmp_path):
    m = loaded["munit"]
    outcome = app.translate_image(m, photo, app.Options(task="b2a", num_samples=3, seed=4))
    assert [cap for _, cap in outcome.images] == ["b2a 1", "b2a 2", "b2a 3"]
    assert all(image.shape == (37, 45, 3) for image, _ in outcome.images)
    out = tmp_path / "cli"
    translate([f"ckpt={runs['munit']}", f"input={photo}", f"output={out}", "direction=b2a", "num_samples=3",
               "seed=4", "progress=false"])  # fmt: skip
    cli = [np.asarray(Image.open(out / f"photo_b2a_{j}.png")).astype(int) for j in range(3)]
    assert all(np.array_equal(a, b) for a, b in zip(_pixels(outcome), cli))
    again = app.translate_image(m, photo, app.Options(task="b2a", num_samples=3, seed=4))
    other = app.translate_image(m, photo, app.Options(task="b2a", num_samples=3, seed=5))
    assert all(np.array_equal(a, b) for a, b in zip(_pixels(outcome), _pixels(again)))
    assert not np.array_equal(_pixels(outcome)[0], _pixels(other)[0])
    assert not np.array_equal(_pixels(outcome)[0], _pixels(outcome)[1])
    assert outcome.total_ms >= outcome.model_ms > 0 and "ms (the model" in outcome.summary()


def test_ema_choice_reference_and_the_style_slider(loaded, runs, photo, tmp_path):
    m = loaded["munit"]
    ema = _pixels(app.translate_image(m, photo, app.Options(ema=True)))[0]
    raw = _pixels(app.translate_image(m, photo, app.Options(ema=False)))[0]
    assert not np.array_equal(ema, raw)
    cli = tmp_path / "raw"
    translate([f"ckpt={runs['munit']}", f"input={photo}", f"output={cli}", "ema=false", "progress=false"])
    assert np.array_equal(raw, np.asarray(Image.open(cli / "photo_a2b.png")).astype(int))
    ref = app.translate_image(m, photo, app.Options(reference=photo))
    assert [cap for _, cap in ref.images] == ["a2b (reference)"]
    other = tmp_path / "other.png"
    Image.fromarray(np.random.RandomState(1).randint(0, 256, (20, 30, 3), dtype=np.uint8)).save(other)

    def at(t, a, b):
        opts = app.Options(interpolate=True, t=t, style_from=a, style_to=b)
        outcome = app.translate_image(m, photo, opts)
        assert [cap for _, cap in outcome.images] == [f"a2b t={t:.2f}"]
        return _pixels(outcome)[0]

    assert np.array_equal(at(0.0, photo, other), at(1.0, other, photo))
    assert not np.array_equal(at(0.5, photo, other), at(0.0, photo, other))
    sampled = app.Options(interpolate=True, t=0.25, seed=3)  # two codes drawn with the seed
    assert np.array_equal(*[_pixels(app.translate_image(m, photo, sampled))[0] for _ in range(2)])


def test_attention_maps_and_target_domains_by_name(loaded, photo, tmp_path):
    wide = tmp_path / "wide.png"  # U-GAT-IT's global D (6 layers here) needs 64 px
    Image.fromarray(np.random.RandomState(2).randint(0, 256, (61, 75, 3), dtype=np.uint8)).save(wide)
    outcome = app.translate_image(loaded["ugatit"], wide, app.Options(task="b2a", attention=True))
    titles = ["b2a", "G on input", "D_global on output", "D_local on output"]
    assert [cap for _, cap in outcome.images] == titles
    assert all(image.shape == (61, 75, 3) for image, _ in outcome.images)
    dog = app.translate_image(loaded["stargan_v2"], photo, app.Options(task="dog", num_samples=2, seed=1))
    assert [cap for _, cap in dog.images] == ["dog 1", "dog 2"]
    with pytest.raises(inf.UsageError, match="translates cat, dog, wild"):
        app.translate_image(loaded["stargan_v2"], photo, app.Options(task="bird"))
    with pytest.raises(inf.UsageError, match="no attention maps"):
        app.translate_image(loaded["munit"], photo, app.Options(attention=True))


def test_what_the_page_refuses(loaded, runs, photo, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    with pytest.raises(DataError, match=r"^notes.txt: not an image"):
        app.translate_image(loaded["munit"], text)
    with pytest.raises(DataError, match=r"photo.png: image is 45x37 \(0.0 megapixels\).*max_pixels=1000"):
        app.translate_image(loaded["munit"], photo, max_pixels=1000)
    with pytest.raises(DataError, match="none given; upload or drop one first"):
        app.translate_image(loaded["munit"], None)
    with pytest.raises(inf.UsageError, match="translates label maps"):
        app.translate_image(loaded["pix2pixhd"], photo)
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        app.load(text)
    assert app.user_message(CheckpointError("ckpt=x: broken")) == "checkpoint error: ckpt=x: broken"
    assert app.user_message(RuntimeError("DefaultCPUAllocator: can't allocate memory")).startswith(
        "not enough memory"
    )
    assert app.user_message(KeyError("boom")).startswith("internal error (KeyError")


# ---------------------------------------------------------------------- label maps
def test_painting_makes_instances_of_countable_classes(loaded):
    cs = label_set("cityscapes", 35)
    m = loaded["pix2pixhd"]
    labels = app.LabelMap(np.full((20, 30), 7, dtype=np.int32))  # all road
    first = np.zeros((20, 30), bool)
    first[2:6, 2:8] = True
    second = np.zeros((20, 30), bool)
    second[10:14, 10:20] = True
    labels = app.paint(app.paint(labels, first, 26, cs), second, 26, cs)
    assert [(i.id, i.cls, i.pixels) for i in app.instances(labels)] == [
        (7, 7, 600 - 24 - 40), (26000, 26, 24), (26001, 26, 40)
    ]  # fmt: skip
    labels = app.choose_cluster(m, app.choose_cluster(m, labels, 26000, 2), 26001, 1)
    with pytest.raises(DataError, match="its class car has 3 feature cluster\\(s\\); choose 1..3 or random"):
        app.choose_cluster(m, labels, 26001, 3)
    with pytest.raises(DataError, match="instance 5: not in this label map"):
        app.choose_cluster(m, labels, 5, 0)
    road = np.zeros((20, 30), bool)
    road[:, :9] = True  # paints road over the first car
    labels = app.paint(labels, road, 7, cs)
    assert {i.id for i in app.instances(labels)} == {7, 26001} and labels.choices == {26001: 1}
    assert app.colourise(labels.label, cs)[12, 12].tolist() == [0, 0, 142]
    soft = np.zeros((20, 30, 4), np.uint8)
    soft[5, 5, 3], soft[6, 6, 3] = 255, 60  # an opaque pixel and a brush's soft rim
    assert np.argwhere(app.stroke_mask([soft], (30, 20))).tolist() == [[5, 5]]


def test_each_instance_gets_its_chosen_cluster(loaded):
    m = loaded["pix2pixhd"]
    cs = m.label_set
    labels = app.blank_label_map(m, 64, 32, 7)
    for box in ((slice(4, 12), slice(4, 20)), (slice(16, 28), slice(30, 60))):
        mask = np.zeros((32, 64), bool)
        mask[box] = True
        labels = app.paint(labels, mask, 26, cs)
    label, inst = (
        torch.from_numpy(labels.label.astype(np.int64)),
        torch.from_numpy(labels.inst.astype(np.int64)),
    )
    centres = m.clusters[26]
    for k in range(len(centres)):
        style = app.cluster_style(m, label, inst, {26000: k}, seed=0)[0]
        assert torch.equal(style[:, 5, 5], centres[k])  # the chosen centre over the first car
        assert torch.equal(style[:, 20, 40], centres[app.random_cluster(0, 26001, len(centres))])
    assert torch.equal(
        app.cluster_style(m, label, inst, {}, 0)[0][:, 20, 0], m.clusters[7][app.random_cluster(0, 7, 2)]
    )
    outs = [_pixels(app.translate_labels(m, app.choose_cluster(m, labels, 26000, k)))[0] for k in range(2)]
    assert outs[0].shape == (32, 64, 3)
    assert not np.array_equal(outs[0], outs[1])  # (the generator sees the whole map: no locality here)
    two = app.translate_labels(m, labels, app.Options(num_samples=2, seed=9))
    assert [cap for _, cap in two.images] == ["a2b 1", "a2b 2"]


def test_label_map_files(loaded, tmp_path):
    m = loaded["pix2pixhd"]
    ids = np.random.RandomState(0).randint(0, 35, (21, 30)).astype(np.uint8)
    inst = ids.astype(np.uint16) * 1000
    Image.fromarray(ids).save(tmp_path / "label.png")
    Image.fromarray(inst).save(tmp_path / "inst.png")  # 16-bit
    labels = app.read_label_map(m, tmp_path / "label.png", tmp_path / "inst.png")
    assert np.array_equal(labels.label, ids) and np.array_equal(labels.inst, inst)
    out = app.translate_labels(m, labels)
    assert out.images[0][0].shape == (21, 30, 3)  # padded to multiples of 16 and cropped back
    Image.fromarray(np.full((21, 30), 40, np.uint8)).save(tmp_path / "high.png")
    with pytest.raises(
        DataError, match=r"^high.png: label map holds ids 40..40; this model takes class ids 0..34"
    ):
        app.read_label_map(m, tmp_path / "high.png")
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "small.png")
    with pytest.raises(DataError, match="instance map is"):
        app.read_label_map(m, tmp_path / "small.png", tmp_path / "inst.png")
    Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(DataError, match="rgb.png: map has mode RGB"):
        app.read_label_map(m, tmp_path / "rgb.png")


def test_the_first_blank_map_has_the_training_shape(loaded):
    # data=cityscapes scales by width: 2:1 street scenes; load_size 128 in the tiny run
    assert app.default_canvas(loaded["pix2pixhd"]) == (128, 64)
    with pytest.raises(DataError, match="new label map"):
        app.blank_label_map(loaded["pix2pixhd"], 0, 10)


def test_a_file_path_loads_as_its_run(runs):
    run = Path(runs["ugatit"])
    assert app.load(run / "checkpoints" / "last.ckpt").name == app.load(run).name == "UGATIT"


def test_the_command_refuses_a_checkpoint_in_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(sys, "argv", ["imtrans", "app", f"ckpt={tmp_path / 'missing'}", "port=7999"])
    with pytest.raises(SystemExit) as stop:
        cli.main()
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1
    assert err.startswith(f"imtrans app: checkpoint error: ckpt={tmp_path / 'missing'}: no such file")
