"""The README's two screenshots of ``imtrans app``: a multimodal model sampling styles, and a
label-map model with an edited label map. Headless Debian Chromium driven by Playwright, as the
browser tests do.

    PYTHONPATH=. python experiments/app_screenshots.py --multimodal <MUNIT run> --labels <pix2pixHD run>

The README's pictures came from ``make demo``'s MUNIT (``experiment=munit_quickstart``, 2,000
iterations on the procedural shapes, 64 px) and a small pix2pixHD with instance features trained
for 800 iterations on the 8 Cityscapes images of the sample (256x128; ngf 16, 3 blocks, no VGG
loss)::

    python -m imtrans.run model=pix2pixhd data=cityscapes data.root=<sample> data.load_size=256 \\
        model.instance_feat=true loss.weights.vgg=0 model.generator.ngf=16 model.generator.n_blocks=3 \\
        model.discriminator.ndf=16 model.encoder.nef=8 iters=800 metrics=none

The multimodal page gets a shapes outline (domain A, 64 px) and draws 4 styles; the label-map page
gets the sample's first test label and instance maps (resized to 256x128), then a painted car.
Each picture is scaled to ``--width`` and reduced to 256 colours (small PNGs for the repository).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

if __package__ in (None, ""):  # run as a file (python experiments/<name>.py): find the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imtrans import app
from imtrans.data.shapes import render_a, sample_layout

CITYSCAPES = Path(__file__).resolve().parents[2] / "shared" / "data" / "cityscapes_sample"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_status(page, start: str) -> None:
    page.wait_for_function(
        "s => (document.querySelector('#status')?.innerText || '').trim().startsWith(s)", arg=start
    )


def save_small(page, path: Path, width: int, height: int) -> None:
    """A screenshot of the page's top ``height`` CSS pixels, scaled to ``width``, 256 colours."""
    raw = path.with_suffix(".raw.png")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(raw), full_page=True, clip={"x": 0, "y": 0, "width": 1280, "height": height})
    image = Image.open(raw).convert("RGB")
    image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
    image.quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    raw.unlink()
    print(f"{path}: {path.stat().st_size / 1024:.0f} KB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--multimodal", required=True, help="a multimodal image model's run folder")
    parser.add_argument("--labels", required=True, help="a label-map model's run folder")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs")
    parser.add_argument("--width", type=int, default=960)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp())
    outline = tmp / "shapes.png"
    Image.fromarray(render_a(sample_layout(np.random.default_rng(3), 64), 64)).save(outline)
    label, inst = tmp / "label.png", tmp / "inst.png"
    Image.open(sorted((CITYSCAPES / "test_label").glob("*.png"))[0]).resize((256, 128), Image.NEAREST).save(
        label
    )
    Image.open(sorted((CITYSCAPES / "test_inst").glob("*.png"))[0]).resize((256, 128), Image.NEAREST).save(
        inst
    )
    port = free_port()
    demo = app.launch(app.AppServer(args.multimodal), port=port, block=False)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=args.chromium,
                headless=True,
                args=["--no-sandbox"] if os.geteuid() == 0 else [],
            )
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.set_default_timeout(120_000)
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("#translate")
            page.locator("#image input[type=file]").set_input_files(str(outline))
            page.wait_for_selector("#image img")
            page.locator("#samples input[type=number]").fill("4")
            page.locator("#samples input[type=number]").press("Enter")
            page.locator("#seed input").fill("1")
            page.click("#translate")
            wait_status(page, "4 image(s)")
            time.sleep(1)
            save_small(page, args.out / "app_multimodal.png", args.width, 900)

            page.locator("#ckpt textarea").fill(args.labels)
            page.click("#load")
            wait_status(page, "loaded")
            page.get_by_text("label map files").click()
            page.locator("#label_file input[type=file]").set_input_files(str(label))
            page.locator("#inst_file input[type=file]").set_input_files(str(inst))
            time.sleep(1)
            page.click("#use_files")
            wait_status(page, "1 image(s)")
            page.locator("#cls input").fill("26 car")
            page.keyboard.press("Enter")
            page.get_by_text("label map files").click()  # closed again
            canvas = page.locator("#canvas canvas").first
            box = canvas.bounding_box()
            before = page.locator("#outputs img").first.get_attribute("src")
            x, y = box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.68
            page.mouse.move(x, y)
            page.mouse.down()
            for i in range(1, 5):
                page.mouse.move(x + 14 * i, y + 3 * (i % 2))
            page.mouse.up()
            shown = "s => { const i = document.querySelector('#outputs img'); return i && i.getAttribute('src') !== s && i.complete && i.naturalWidth > 0; }"
            page.wait_for_function(shown, arg=before)
            page.wait_for_function(
                "() => !document.querySelector('#outputs .eta-bar, #outputs .progress-text')"
            )
            time.sleep(2)
            save_small(page, args.out / "app_labels.png", args.width, 1000)
            browser.close()
    finally:
        demo.close()


if __name__ == "__main__":
    main()
