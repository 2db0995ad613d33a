"""Benchmark: what ``imtrans reproduce cut_horse2zebra_cut`` costs after its downloads.

    OMP_NUM_THREADS=2 python experiments/bench_reproduce.py [--out FILE]

Runs the command's whole path offline on a stand-in of the same size: a full-size CUT generator
(ngf 64, 9 blocks, anti-aliased: the published architecture) with random weights, written in the
official file format where the zoo entry expects it; a horse2zebra-shaped test set (120 testA
and 140 testB 256x256 JPEGs, random content); random-weight stand-ins of pytorch-fid's and
clean-fid's Inception networks (the cost does not depend on the weight values; the numbers are
no FIDs of anything and the report says "not comparable"). Times the import, the translation of
the 120 inputs and the scoring in both lineages, and prints a Markdown table (written with
``--out``). The downloads a real run adds (the tar of the six CUT models, horse2zebra.zip, the
two Inception files) are not timed: they depend on the network.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def official_cut_generator(path: Path) -> int:
    """A full-size CUT generator (random init) saved with the official keys; returns its
    parameter count. Our ResBlock's ``body.{0,1}.1`` are the official ``conv_block.{1,5}``
    (the inverse of ``imtrans.official.formats.cut.generator_rules``)."""
    import hydra
    import torch

    from tests.helpers import compose_config

    module = hydra.utils.instantiate(compose_config(["model=cut", "data=horse2zebra"]).model)
    ours = module.G.state_dict()
    official = {}
    for key, value in ours.items():
        key = re.sub(r"^model\.(\d+)\.body\.0\.1\.", r"model.\1.conv_block.1.", key)
        key = re.sub(r"^model\.(\d+)\.body\.1\.1\.", r"model.\1.conv_block.5.", key)
        official[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(official, path)
    return sum(p.numel() for p in module.G.parameters())


def test_set(root: Path, counts: dict[str, int], seed: int = 0) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, n in counts.items():
        (root / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)  # smooth content, JPEG-sized files
            image = Image.fromarray(small).resize((256, 256), Image.BICUBIC)
            image.save(root / split / f"n{i:05d}.jpg", quality=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=None, help="append the Markdown table to this file")
    parser.add_argument("--work", default=None, help="a folder for the files (default: a temporary one)")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="imtrans_bench_reproduce_"))
    os.environ.setdefault("IMTRANS_STAND_IN_WEIGHTS", str(work))  # the random Inceptions below
    os.environ["IMTRANS_METRICS_DOWNLOAD"] = "0"

    import torch

    from imtrans import reproduce as rep
    from imtrans.official import zoo
    from tests.metrics.weights import write_clean_fid_inception, write_pytorch_fid_inception

    entry = copy.deepcopy(zoo.find("cut_horse2zebra_cut", zoo.load_zoo()))
    entry["name"] = "bench_cut_horse2zebra"
    entry["files"] = [{"url": "http://example.invalid/latest_net_G.pth", "path": entry["import_path"]}]
    entry["urls"] = [entry["files"][0]["url"]]
    count = official_cut_generator(work / "pretrained" / entry["name"] / entry["import_path"])
    test_set(work / "data" / "horse2zebra", {"trainA": 1, "trainB": 1, "testA": 120, "testB": 140})
    weights = work / "metric_weights"
    write_pytorch_fid_inception(weights / "pt_inception-2015-12-05-6726825d.pth")
    write_clean_fid_inception(weights / "inception-2015-12-05.pt")

    stages: dict[str, float] = {}
    timed = {
        "import_official": "import",
        "translate_test": "translate 120 inputs",
        "score": "score (each lineage)",
    }
    import imtrans.official as official

    for name, label in timed.items():  # wrap the three stages of reproduce() to time them
        owner = official if name == "import_official" else rep
        original = getattr(owner, name)

        def wrapper(*a, _original=original, _label=label, **k):
            start = time.perf_counter()
            try:
                return _original(*a, **k)
            finally:
                stages[_label] = stages.get(_label, 0.0) + time.perf_counter() - start

        setattr(owner, name, wrapper)
    start = time.perf_counter()
    report = rep.reproduce(
        entry["name"],
        {
            "root": str(work / "pretrained"),
            "data_root": str(work / "data"),
            "out": str(work / "out"),
            "weights_dir": str(weights),
            "device": "cpu",
        },
        entries=[entry],
    )
    total = time.perf_counter() - start
    lines = [
        f"### imtrans reproduce cut_horse2zebra_cut, after the downloads ({platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads)",
        "",
        f"Full-size CUT generator ({count:,} parameters, random weights), 120 testA inputs -> 256x256, "
        "scored against 140 testB images in the pytorch-fid and clean-fid lineages (stand-in Inceptions).",
        "",
        "| stage | seconds |",
        "| --- | ---: |",
    ]
    lines += [f"| {label} | {stages.get(label, 0.0):.1f} |" for label in timed.values()]
    lines += [f"| total (command) | {total:.1f} |", ""]
    verdicts = {n["lineage"]: n["verdict"] for n in report["numbers"]}
    lines.append(f"Verdicts (stand-in networks): {verdicts}")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "a") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
