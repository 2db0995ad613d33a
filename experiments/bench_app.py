"""The web app's latency (``imtrans app``): the time from a request to its image, against the
model's own time in ``module.translate``.

    PYTHONPATH=. python experiments/bench_app.py --threads 2 --reps 7 --warmup 2

Models at their paper sizes with random weights (the time does not depend on the weights):
CycleGAN (ResNet, 9 blocks, ngf 64) and MUNIT on a 256x256 photo; pix2pixHD's 512p generator
(global, ngf 64, 9 blocks, 4 down-samplings, instance maps) on a 512x256 Cityscapes label map (the
sample's first test map and its instance map, resized nearest-neighbour; random blocks of ids
where the sample is missing). Three ways, interleaved in every repetition so that the shared
machine's load falls on all three alike:

- ``translate``: ``module.translate`` on the tensor the app would pass (the model alone);
- ``function``: the app's own function (``app.translate_image`` / ``translate_labels``) on the file:
  reading, fitting to the generator, the model, restoring, the uint8 image;
- ``request``: ``imtrans app`` in its own process on a local port, sent the requests its page sends
  (:class:`PageClient`): the upload, the queue's join, the handler, the output PNGs written to
  Gradio's cache, the event stream, the download of the images. This is what a user waits for,
  less the browser's drawing. Image models: Translate with
  the photo; pix2pixHD: a painted stroke (the canvas's background and paint layer go up, the
  repainted canvas and the photo come back), after the label map was uploaded once.

Reports the median and the fastest repetition of each, and what the app adds to
``module.translate``: each request's time less the model's time inside that same request (the
status line the page shows), so that the machine's load, which moves the medians by more than
that, cancels; as a share of the model's time (the target is under 10 %).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from PIL import Image

if __package__ in (None, ""):  # run as a file (python experiments/<name>.py): find the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments.benchlib import environment, run_config, write_report
from imtrans import app
from imtrans.run import _config_dict

CITYSCAPES = Path(__file__).resolve().parents[2] / "shared" / "data" / "cityscapes_sample"
MODELS = {
    "CycleGAN 256x256": ["model=cyclegan", "data=unpaired", "data.crop_size=256"],
    "MUNIT 256x256": ["model=munit", "data=unpaired", "data.crop_size=256"],
    "pix2pixHD 512x256": ["model=pix2pixhd", "data=cityscapes", "data.load_size=512", "loss.weights.vgg=0"],
}
#: the translate endpoint's options in the page's order (app.build: option_inputs)
OPTIONS = ["a2b", 1, 0, None, False, 0.5, None, None, False, True, "pad"]


def save_run(overrides: list[str], folder: Path) -> Path:
    """A run folder holding the untrained model of ``overrides``, as a run writes it."""
    cfg = run_config(overrides, folder)
    model = hydra.utils.instantiate(cfg.model)
    model.imtrans_config = _config_dict(cfg)
    ckpt = {"state_dict": model.state_dict()}
    model.on_save_checkpoint(ckpt)
    (folder / "checkpoints").mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, folder / "checkpoints" / "last.ckpt")
    return folder


def inputs(folder: Path) -> dict[str, Path]:
    """A 256x256 photo, and a 512x256 label map with its instance map."""
    rng = np.random.RandomState(0)
    files = {"photo": folder / "photo.png", "label": folder / "label.png", "inst": folder / "inst.png"}
    Image.fromarray(rng.randint(0, 256, (256, 256, 3), dtype=np.uint8)).save(files["photo"])
    labels = sorted((CITYSCAPES / "test_label").glob("*.png"))
    if labels:
        insts = sorted((CITYSCAPES / "test_inst").glob("*.png"))
        Image.open(labels[0]).resize((512, 256), Image.NEAREST).save(files["label"])
        Image.open(insts[0]).resize((512, 256), Image.NEAREST).save(files["inst"])
    else:
        blocks = rng.randint(0, 34, (16, 32)).repeat(16, 0).repeat(16, 1).astype(np.uint8)
        Image.fromarray(blocks).save(files["label"])
        Image.fromarray(blocks.astype(np.uint16)).save(files["inst"])
    return files


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


class PageClient:
    """The requests the app's page makes for one event, nothing else: the uploads, the queue's
    join, the event stream until the event completes, then the output image. (``gradio_client``
    polls its stream every 50 ms and would add its own waiting to the app's.)"""

    def __init__(self, url: str):
        import httpx

        self.url = url.rstrip("/") + "/"
        self.http = httpx.Client(timeout=None)
        self.session = secrets.token_hex(8)
        config = self.http.get(self.url + "config").json()
        self.kinds = {c["id"]: c["type"] for c in config["components"]}
        self.events = {d["api_name"]: d for d in config["dependencies"] if d.get("api_name")}

    def upload(self, path: Path) -> dict:
        with open(path, "rb") as f:
            server = self.http.post(self.url + "gradio_api/upload", files={"files": (path.name, f)}).json()[0]
        return {"path": server, "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}

    def call(self, api_name: str, *values) -> dict[str, Any]:
        """The outputs of event ``api_name`` by component type (``gallery``, ``markdown``, ...);
        ``values``: the inputs without the session state, files as Paths."""
        event = self.events[api_name]
        given = iter(values)
        data = [None if self.kinds[i] == "state" else next(given) for i in event["inputs"]]
        data = [self.upload(v) if isinstance(v, Path) else v for v in data]
        if isinstance(data[1], dict) and "layers" in data[1]:  # the canvas: its files
            editor = dict(data[1])
            editor["background"] = self.upload(editor["background"])
            editor["layers"] = [self.upload(layer) for layer in editor["layers"]]
            data[1] = editor
        payload = {
            "data": data,
            "fn_index": event["id"],
            "session_hash": self.session,
            "trigger_id": event["id"],
        }
        event_id = self.http.post(self.url + "gradio_api/queue/join", json=payload).json()["event_id"]
        params = {"session_hash": self.session}
        with self.http.stream("GET", self.url + "gradio_api/queue/data", params=params) as stream:
            buffer = ""
            for chunk in stream.iter_text():
                buffer += chunk
                while "\n\n" in buffer:
                    line, buffer = buffer.split("\n\n", 1)
                    message = json.loads(line[5:]) if line.startswith("data:") else {}
                    if message.get("event_id") == event_id and message.get("msg") == "process_completed":
                        outputs = message["output"]["data"]
                        return {self.kinds[i]: v for i, v in zip(event["outputs"], outputs)}
        raise RuntimeError(f"{api_name}: the event stream ended without its result")

    def fetch(self, file: dict) -> bytes:
        return self.http.get(file["url"]).content


def serve(run: Path, port: int, threads: int) -> subprocess.Popen:
    """``imtrans app ckpt=<run>`` in its own process, once it answers."""
    import httpx

    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(threads),
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "imtrans.cli", "app", f"ckpt={run}", f"port={port}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    for _ in range(1200):
        try:
            httpx.get(f"http://127.0.0.1:{port}/config", timeout=1)
            return proc
        except httpx.HTTPError:
            if proc.poll() is not None:
                raise RuntimeError(f"imtrans app ended: {proc.stderr.read()[-2000:]}") from None
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("imtrans app did not answer within 120 s")


def model_ms(status: str) -> float:
    """The model's time inside one request, from the page's status line."""
    found = re.search(r"the model (\d+) ms", status)
    assert found, status
    return float(found.group(1))


def bench_model(name: str, run: Path, files: dict[str, Path], reps: int, warmup: int, threads: int) -> dict:
    loaded = app.load(run)
    port = free_port()
    server = serve(run, port, threads)
    inside: list[float] = []
    try:
        page = PageClient(f"http://127.0.0.1:{port}/")
        if loaded.spec.input_kind == "labels":
            label_map = app.read_label_map(loaded, files["label"], files["inst"])
            x = {
                "label": torch.from_numpy(label_map.label.astype(np.int64))[None],
                "inst": torch.from_numpy(label_map.inst.astype(np.int64))[None],
            }
            # the session's label map, then strokes as the canvas sends them: its background and a
            # paint layer (RGBA) with a 40x20 stroke, car and road in turn
            canvas = page.call("label_map", files["label"], files["inst"], *OPTIONS)["imageeditor"]
            layer = files["label"].with_name("layer.png")
            stroke = np.zeros((*label_map.label.shape, 4), np.uint8)
            stroke[100:120, 200:240] = 255
            Image.fromarray(stroke).save(layer)
            strokes = iter(range(10**6))

            def function():
                app.translate_labels(loaded, app.read_label_map(loaded, files["label"], files["inst"]))

            def request():
                nonlocal canvas
                background = files["label"].with_name("background.png")
                background.write_bytes(page.fetch(canvas["background"]))  # the canvas the page holds
                editor = {"background": background, "layers": [layer], "composite": None, "id": None}
                out = page.call("paint", editor, (26, 7)[next(strokes) % 2], *OPTIONS)
                assert out["gallery"], out["markdown"]
                page.fetch(out["gallery"][0]["image"])
                page.fetch(out["imageeditor"]["background"])
                canvas = out["imageeditor"]
                inside.append(model_ms(out["markdown"]))
        else:
            photo = torch.from_numpy(np.array(Image.open(files["photo"]))).permute(2, 0, 1)
            x = photo[None].float() / 127.5 - 1

            def function():
                app.translate_image(loaded, files["photo"])

            def request():
                out = page.call("translate", files["photo"], *OPTIONS)
                assert out["gallery"], out["markdown"]
                page.fetch(out["gallery"][0]["image"])
                inside.append(model_ms(out["markdown"]))

        def translate():
            loaded.model.translate(x)

        times: dict[str, list[float]] = {"translate": [], "function": [], "request": [], "added": []}
        for rep in range(warmup + reps):
            for way, fn in (("translate", translate), ("function", function), ("request", request)):
                ms = timed(fn)
                if rep >= warmup:
                    times[way].append(ms)
            if rep >= warmup:
                times["added"].append(times["request"][-1] - inside[-1])
    finally:
        server.terminate()
        server.wait(30)
    params = sum(p.numel() for m in loaded.model.generator_modules().values() for p in m.parameters())
    return {"name": name, "params": params, "times": times}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "bench_app.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        files = inputs(Path(tmp))
        for name in args.models:
            run = save_run(MODELS[name], Path(tmp) / name.split()[0])
            results.append(bench_model(name, run, files, args.reps, args.warmup, args.threads))
            print(name, {k: round(statistics.median(v)) for k, v in results[-1]["times"].items()}, flush=True)
    lines = [
        "# The web app's latency: request to image, against `module.translate`",
        "",
        f"`PYTHONPATH=. python experiments/bench_app.py --threads {args.threads} --reps {args.reps} "
        f"--warmup {args.warmup}`",
        "",
        f"{environment(args.threads, 'cpu')}; random weights at the paper sizes; {args.reps} repetitions after "
        f"{args.warmup} warm-up(s), the three ways interleaved in each. `translate`: `module.translate` on the "
        "input tensor. `function`: the app's function on the file (read, fit, translate, restore, uint8). "
        "`request`: `imtrans app` in its own process on a local port, sent the requests its page sends, what a "
        "user waits for: the upload, the queue, the handler, the output PNGs, the event stream, the download "
        "(image models: Translate with a 256x256 photo; the label-map model: a painted stroke, which sends the "
        "canvas's background and paint layer and fetches the repainted canvas and the photo). `the app adds`: "
        "each request's time less the model's time inside that same request (the page's status line), median "
        "over the repetitions, and as a share of the median and of the fastest `translate` time. The machine's 2 cores are shared "
        "with other jobs: the three time columns move with their load (and the app's process and this one "
        "differ by a few hundred ms run to run), the app's addition hardly does.",
        "",
        "| model | generator parameters | translate ms (median / best) | function ms | request ms | "
        "the app adds (median) | share of the model's time (median / fastest) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        t = r["times"]
        med = {k: statistics.median(v) for k, v in t.items()}
        best = {k: min(v) for k, v in t.items()}
        lines.append(
            f"| {r['name']} | {r['params']:,} | {med['translate']:.0f} / {best['translate']:.0f} | "
            f"{med['function']:.0f} / {best['function']:.0f} | {med['request']:.0f} / {best['request']:.0f} | "
            f"{med['added']:.0f} ms | {100 * med['added'] / med['translate']:.1f} % / "
            f"{100 * med['added'] / best['translate']:.1f} % |"
        )
    write_report(args.out, lines)


if __name__ == "__main__":
    main()
