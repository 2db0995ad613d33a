"""The web app in a real browser (layer 3 of 3): Debian's Chromium, headless, driven by
Playwright. One app (a tiny MUNIT first, a tiny pix2pixHD loaded from the page) and one browser
for the module: upload an image, press Translate, wait for the outputs and check their size; a
text file gives a message in the page; load the label-map model, paint a stroke on the canvas and
see the photo change. Every request the page makes goes to the local server. Screenshots are left
in the test's temporary folder.

Chromium comes from the Debian packages (``make browser``, which CI runs); without it these tests
skip, saying so in one line."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlparse

import numpy as np
import pytest
from PIL import Image

CHROMIUM = Path(os.environ.get("IMTRANS_CHROMIUM", "/usr/bin/chromium"))
if not CHROMIUM.is_file():
    pytest.skip(
        f"no Chromium at {CHROMIUM}: `make browser` installs Debian's chromium", allow_module_level=True
    )
pytest.importorskip("gradio", reason="the app extra is not installed: pip install -e '.[app]'")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the dev extra)")

from imtrans import app  # noqa: E402
from tests.app.models import untrained_run  # noqa: E402
from tests.app.test_server import free_port  # noqa: E402

TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def browser_app(tmp_path_factory):
    """(the page, the app's address, the runs, every URL the page requested, a screenshot folder)."""
    root = tmp_path_factory.mktemp("app_browser")
    runs = {name: untrained_run(name, root) for name in ("munit", "pix2pixhd")}
    port = free_port()
    demo = app.launch(app.AppServer(str(runs["munit"])), port=port, block=False)
    requests: list[str] = []
    args = ["--no-sandbox"] if os.geteuid() == 0 else []  # Chromium's sandbox refuses root
    try:
        with playwright.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.set_default_timeout(TIMEOUT_MS)
            page.on("request", lambda r: requests.append(r.url))
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("#translate")
            yield SimpleNamespace(
                page=page, port=port, runs=runs, requests=requests, shots=root / "screenshots"
            )
            browser.close()
    finally:
        demo.close()


def _status(page) -> str:
    return page.locator("#status").inner_text().strip()


def _wait_status(page, start: str) -> str:
    page.wait_for_function(
        "s => (document.querySelector('#status')?.innerText || '').trim().startsWith(s)", arg=start
    )
    return _status(page)


def _loaded_sizes(page, n: int) -> list[list[int]]:
    """[width, height] of the gallery's images once ``n`` of them have finished loading (an image
    element exists before its file has arrived: its natural size is 0 until then)."""
    page.wait_for_function(
        "n => { const imgs = [...document.querySelectorAll('#outputs img')];"
        " return imgs.length >= n && imgs.every(i => i.complete && i.naturalWidth > 0); }",
        arg=n,
    )
    return page.locator("#outputs img").evaluate_all(
        "imgs => imgs.map(e => [e.naturalWidth, e.naturalHeight])"
    )


def _first_output(page) -> str:
    return page.locator("#outputs img").first.get_attribute("src")


def test_upload_translate_and_a_wrong_file(browser_app, tmp_path):
    page = browser_app.page
    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.RandomState(0).randint(0, 256, (70, 90, 3), dtype=np.uint8)).save(photo)
    page.locator("#image input[type=file]").set_input_files(str(photo))
    page.wait_for_selector("#image img")
    page.locator("#samples input[type=number]").fill("2")
    page.locator("#samples input[type=number]").press("Enter")
    page.click("#translate")
    assert _wait_status(page, "2 image(s) in").endswith(" ms)")
    sizes = _loaded_sizes(page, 2)
    assert sizes == [[90, 70], [90, 70]]
    browser_app.shots.mkdir(exist_ok=True)
    page.screenshot(path=str(browser_app.shots / "image_model.png"), full_page=True)
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    page.locator("#image input[type=file]").set_input_files(str(text))
    page.wait_for_selector("text=Invalid file type: notes.txt")  # the page's own check, before any upload
    page.click("[data-testid=toast-close]")  # the message box would cover the Load button for 10 s
    fake = tmp_path / "fake.png"  # named as an image: uploaded, then refused by the app
    fake.write_text("not an image either")
    page.locator("#image input[type=file]").set_input_files(str(fake))
    page.wait_for_function("() => !document.querySelector('#image img')?.src?.includes('photo')")
    page.click("#translate")
    assert "fake.png: not an image" in _wait_status(page, "Error:")


def test_paint_a_stroke_and_the_photo_changes(browser_app):
    page = browser_app.page
    page.locator("#ckpt textarea").fill(str(browser_app.runs["pix2pixhd"]))
    page.click("#load")
    _wait_status(page, "loaded")
    page.wait_for_selector("#canvas canvas")
    page.click("#new_map")
    _wait_status(page, "1 image(s) in")
    before = _first_output(page)
    canvas = page.locator("#canvas canvas").first
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    x, y = box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.5
    page.mouse.move(x, y)
    page.mouse.down()
    for i in range(1, 4):  # few moves: each one redraws the canvas (software WebGL, about 1 s)
        page.mouse.move(x + 50 * i, y + 8 * i)
    page.mouse.up()
    page.wait_for_function(
        "s => { const i = document.querySelector('#outputs img'); return i && i.getAttribute('src') !== s; }",
        arg=before,
    )
    assert "24000" in page.locator("#instances").inner_text()  # a stroke of a countable class: a new instance
    size = _loaded_sizes(page, 1)[0]
    assert size == [128, 64]  # the first blank map: the tiny run's training shape
    page.screenshot(path=str(browser_app.shots / "label_model.png"), full_page=True)


def test_every_request_went_to_the_local_server(browser_app):
    """Run last (file order): the page loaded, uploaded, translated, loaded a model and painted."""
    hosts = {
        urlparse(u).netloc
        for u in browser_app.requests
        if urlparse(u).scheme in ("http", "https", "ws", "wss")
    }
    assert hosts == {f"127.0.0.1:{browser_app.port}"}, hosts
