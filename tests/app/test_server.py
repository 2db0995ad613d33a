"""The running web app through ``gradio_client`` (layer 2 of 3): one app, started once on a free
local port, serving a tiny MUNIT first and a tiny pix2pixHD after a load; translate, samples with
a seed, the style slider, label-map edits (new map, a painted stroke, a cluster per instance),
errors as messages (a text file, an image too large, a checkpoint that cannot load) after which the
server still answers; and no connection to any host but this machine while it starts and serves."""

from __future__ import annotations

import ipaddress
import re
import socket
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("gradio", reason="the app extra is not installed: pip install -e '.[app]'")
from gradio_client import Client, handle_file  # noqa: E402

from imtrans import app  # noqa: E402
from tests.app.models import CLUSTERS, untrained_run  # noqa: E402

#: the translate endpoints' options, in the page's order (app.build: option_inputs)
OPTIONS = {
    "task": "a2b", "samples": 1, "seed": 0, "reference": None, "interpolate": False, "t": 0.5,
    "style_from": None, "style_to": None, "attention": False, "ema": True, "fit": "pad",
}  # fmt: skip


def options(**changes) -> list:
    return list({**OPTIONS, **changes}.values())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def is_local(address) -> bool:
    """A Unix socket or a loopback address."""
    if not isinstance(address, tuple):
        return True
    host = address[0]
    return host == "localhost" or ipaddress.ip_address(host.split("%")[0]).is_loopback


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The app serving the tiny MUNIT, every socket connection of this process recorded."""
    root = tmp_path_factory.mktemp("app_server")
    runs = {name: untrained_run(name, root) for name in ("munit", "pix2pixhd")}
    connects: list = []
    with pytest.MonkeyPatch.context() as mp:
        original = socket.socket.connect

        def connect(sock, address):
            connects.append(address)
            return original(sock, address)

        mp.setattr(socket.socket, "connect", connect)
        port = free_port()
        demo = app.launch(app.AppServer(str(runs["munit"])), port=port, block=False)
        try:
            yield SimpleNamespace(url=f"http://127.0.0.1:{port}/", runs=runs, connects=connects)
        finally:
            demo.close()


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("app_inputs") / "photo.png"
    Image.fromarray(np.random.RandomState(0).randint(0, 256, (37, 45, 3), dtype=np.uint8)).save(path)
    return path


def pixels(gallery) -> list[np.ndarray]:
    return [np.asarray(Image.open(item["image"])).astype(int) for item in gallery]


def test_translate_samples_and_the_style_slider(served, photo):
    client = Client(served.url, verbose=False)
    gallery, status = client.predict(handle_file(photo), *options(), api_name="/translate")
    assert [item["caption"] for item in gallery] == ["a2b"] and Image.open(gallery[0]["image"]).size == (
        45,
        37,
    )
    assert re.fullmatch(r"1 image\(s\) in \d+ ms \(the model \d+ ms, the app -?\d+ ms\)", status), status
    first, _ = client.predict(
        handle_file(photo), *options(task="b2a", samples=3, seed=2), api_name="/translate"
    )
    again, _ = client.predict(
        handle_file(photo), *options(task="b2a", samples=3, seed=2), api_name="/translate"
    )
    assert [item["caption"] for item in first] == ["b2a 1", "b2a 2", "b2a 3"]
    assert all(np.array_equal(a, b) for a, b in zip(pixels(first), pixels(again)))
    assert not np.array_equal(*pixels(first)[:2])
    walked = [
        client.predict(handle_file(photo), *options(interpolate=True, t=t), api_name="/interpolate")[0]
        for t in (0.0, 1.0)
    ]
    assert [w[0]["caption"] for w in walked] == ["a2b t=0.00", "a2b t=1.00"]
    assert not np.array_equal(*[pixels(w)[0] for w in walked])


def test_errors_are_messages_and_the_server_goes_on(served, photo, tmp_path):
    client = Client(served.url, verbose=False)
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    _, status = client.predict(handle_file(text), *options(), api_name="/translate")
    assert status.startswith("**Error:** data error: notes.txt: not an image"), status
    big = tmp_path / "big.png"
    Image.new("L", (2100, 2100)).save(big)  # 4.4 megapixels: more than the default max_pixels
    _, status = client.predict(handle_file(big), *options(), api_name="/translate")
    assert "big.png: image is 2100x2100 (4.4 megapixels)" in status and "max_pixels=4194304" in status
    loaded = client.predict(str(text), api_name="/load")
    assert (
        "**Error:** checkpoint error: ckpt=" in loaded[1] and "not a readable PyTorch checkpoint" in loaded[1]
    )
    gallery, status = client.predict(handle_file(photo), *options(), api_name="/translate")
    assert len(gallery) == 1 and status.startswith("1 image(s)"), "the session keeps its model"


def test_label_map_new_paint_and_cluster(served, tmp_path):
    client = Client(served.url, verbose=False)
    loaded = client.predict(str(served.runs["pix2pixhd"]), api_name="/load")
    assert "**Pix2PixHD** translates label maps" in loaded[0] and "35 classes (cityscapes)" in loaded[0]
    canvas, table, _, gallery, status, width, height = client.predict(
        64, 32, 7, *options(), api_name="/new_map"
    )
    assert (width, height) == (64, 32) and table["data"] == [[7, "7 road", 2048, "random of 2"]]
    road = pixels(gallery)[0]
    assert road.shape == (32, 64, 3) and status.startswith("1 image(s)")
    stroke = np.zeros((32, 64, 4), np.uint8)
    stroke[8:24, 10:30] = (0, 0, 142, 255)  # what the canvas sends: the paint layer, RGBA
    Image.fromarray(stroke).save(tmp_path / "layer.png")
    editor = {"background": handle_file(canvas["background"]), "layers": [handle_file(tmp_path / "layer.png")],
              "composite": None, "id": None}  # fmt: skip
    canvas, table, _, gallery, status, _, _ = client.predict(editor, 26, *options(), api_name="/paint")
    assert table["data"] == [
        [7, "7 road", 2048 - 320, "random of 2"],
        [26000, "26 car", 320, f"random of {CLUSTERS[26]}"],
    ]
    assert np.asarray(Image.open(canvas["background"]))[12, 15].tolist()[:3] == [0, 0, 142]
    car = pixels(gallery)[0]
    assert not np.array_equal(car, road)
    _, table, _, gallery, _, _, _ = client.predict(26000, "cluster 2", *options(), api_name="/cluster")
    assert table["data"][1] == [26000, "26 car", 320, f"2 of {CLUSTERS[26]}"]
    other = client.predict(26000, "cluster 3", *options(), api_name="/cluster")[3]
    assert not np.array_equal(pixels(gallery)[0], pixels(other)[0])
    status = client.predict(26000, "cluster 9", *options(), api_name="/cluster")[4]
    assert (
        status
        == "**Error:** data error: instance 26000: its class car has 3 feature cluster(s); choose 1..3 or random"
    )


def test_nothing_leaves_the_machine(served, photo):
    """Run after the others (file order): the server started, answered and loaded models. (Nor
    does Gradio write a stub file into the package, as it does for a subclassed component.)"""
    assert not Path(app.__file__).with_suffix(".pyi").exists()
    Client(served.url, verbose=False).predict(handle_file(photo), *options(), api_name="/translate")
    assert served.connects, "the recorder saw the client's connections"
    assert all(is_local(a) for a in served.connects), [a for a in served.connects if not is_local(a)]
