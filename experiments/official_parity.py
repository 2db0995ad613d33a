"""Official checkpoints through ``imtrans import``: the largest difference from the official
outputs, per method and case.

    python experiments/official_parity.py [--fixtures ../shared/official_fixtures]

Each fixture folder holds checkpoint files written by the official code (random weights,
reduced width) and ``cases.pt`` with the official outputs on fixed inputs and codes. Every
folder is imported with ``imtrans.official.import_official``, reloaded with
``imtrans.load.load_model`` and translated as each case says (``style=`` the explicit code,
``reference=`` the reference image: ``tests.official.helpers.translate_case``, as the tests do). Writes ``experiments/results/official_parity.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a file: python experiments/official_parity.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments.benchlib import environment, write_report
from imtrans.load import load_model
from imtrans.official import import_official
from tests.official.helpers import translate_case

REPO = Path(__file__).resolve().parents[1]
#: method, fixture folder, Hydra overrides (pix2pix's cases are eval mode: the official --eval)
FORMATS = [
    ("cyclegan", "cyclegan", []),
    ("cyclegan", "cyclegan/legacy_2018_pretrained/latest_net_G.pth", []),
    ("pix2pix", "pix2pix", ["model.test_mode=eval"]),
    ("bicyclegan", "bicyclegan", []),
    ("munit", "munit", []),
    ("munit", "munit/legacy_pytorch03/gen_00000001.pt", []),
    ("unit", "unit", []),
    ("drit", "drit", []),
    ("pix2pixhd", "pix2pixhd", []),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fixtures", type=Path, default=REPO / "tests" / "official" / "fixtures")
    parser.add_argument("--out", type=Path, default=REPO / "experiments" / "results" / "official_parity.md")
    args = parser.parse_args()
    torch.set_num_threads(2)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, (method, source, overrides) in enumerate(FORMATS):
            path = args.fixtures / source
            folder = path if path.is_dir() else path.parents[1] if "legacy" in source else path.parent
            cases = torch.load(folder / "cases.pt", weights_only=True)
            module = load_model(import_official(method, path, Path(tmp) / str(k), overrides=overrides))
            for name, case in cases.items():
                if case["direction"] not in module.directions:
                    continue  # a single-direction file
                out = translate_case(module, case)
                diff = (out - case["output"]).abs().max().item()
                rows.append(f"| {method} | `{source}` | {name} | {diff:.2e} |")
    lines = [
        "# Official checkpoints imported: max |diff| from the official outputs",
        "",
        f"`python experiments/official_parity.py --fixtures {os.path.relpath(args.fixtures, REPO)}`",
        "",
        environment(2, "cpu"),
        "",
        "| method | official files | case | max abs diff |",
        "| --- | --- | --- | ---: |",
        *rows,
        "",
        "Outputs are in [-1, 1]; the fixtures' own reproducibility across thread counts is about 1e-6 "
        "(their README), so anything below 1e-5 is equality.",
    ]
    write_report(args.out, lines)


if __name__ == "__main__":
    main()
