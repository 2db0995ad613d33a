"""Every tool after training, on real photos of a held-out data set, as a user runs them.

Tiny runs (a few iterations, tiny widths) of DRIT, MUNIT, full U-GAT-IT, CUT and StarGAN v2 are
trained on the edges2handbags sample of ``../shared/data`` (edges -> handbag photos; StarGAN v2 on
the same images as two domain folders). Each then goes through the command-line tools in
subprocesses, exactly as typed by a user:

- ``imtrans translate`` with no key (every task), then with each option its ``inference_spec``
  declares (samples + grid, reference, interpolation, attention, target domain by name);
- ``imtrans export`` (TorchScript; ONNX when installed);
- ``imtrans evaluate ckpt=<run>`` (with the standard metric weights absent, as on this machine:
  FID/KID/LPIPS are announced as skipped and not computed; nothing is called FID without them).

The inputs are photos the runs never saw: Cityscapes street scenes (``cityscapes_sample/train_img``,
downsized to 512x256 and one odd crop) and the held-out edges2handbags test photos. Exit codes,
file counts, sizes and times go to ``experiments/results/tools_on_real_photos.md``.

    python -m experiments.tools_on_real_photos [--out /tmp/real_photos]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
RESULTS = REPO / "experiments" / "results" / "tools_on_real_photos.md"

TINY = {
    "drit": ["model.dim=4", "model.dis_dim=4", "model.dis_n_layer=2", "model.dis_scale=2", "model.mlp_dim=16"],
    "munit": [
        "model.generator.dim=4", "model.generator.n_res=1", "model.generator.mlp_dim=16",
        "model.discriminator.dim=4", "model.discriminator.n_layer=2", "model.discriminator.num_scales=2",
    ],
    "ugatit": [
        "model.generator.ngf=4", "model.generator.n_blocks=1", "model.generator.light=false",
        "model.global_discriminator.ndf=4", "model.local_discriminator.ndf=4",
    ],
    "cut": ["model.generator.ngf=4", "model.generator.n_blocks=5", "model.discriminator.ndf=4", "model.feature_net.nc=16"],
    "stargan_v2": [
        "model.generator.dim_in=4", "model.generator.max_conv_dim=8", "model.style_encoder.dim_in=4",
        "model.style_encoder.max_conv_dim=8", "model.discriminator.dim_in=4", "model.discriminator.max_conv_dim=8",
        "model.mapping_network.hidden_dim=16", "model.style_dim=8", "model.num_domains=2",
    ],
}  # fmt: skip


def run(cmd: list[str], log: list[str]) -> tuple[int, float, str]:
    """Run ``cmd`` (an imtrans command) in a subprocess; (exit code, seconds, last stderr line)."""
    env = {**os.environ, "OMP_NUM_THREADS": "2", "WANDB_MODE": "disabled", "PYTHONPATH": str(REPO)}
    start = time.time()
    done = subprocess.run(
        [sys.executable, "-m", "imtrans.cli", *cmd], cwd=REPO, env=env, capture_output=True, text=True
    )
    seconds = time.time() - start
    err = [line for line in done.stderr.splitlines() if line.strip() and "Warning" not in line]
    log.append(f"$ imtrans {' '.join(cmd)}\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.returncode, seconds, (err[-1] if err else "")


def photos(folder: Path) -> Path:
    """Held-out real photos: 3 Cityscapes scenes at 512x256, one odd crop (301x187), and the
    edges2handbags test photos (256x256)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, src in enumerate(sorted((SHARED / "cityscapes_sample" / "train_img").glob("*.png"))[:3]):
        with Image.open(src) as im:
            im.convert("RGB").resize((512, 256), Image.BICUBIC).save(folder / f"street_{i}.jpg", quality=95)
            if i == 0:
                im.convert("RGB").crop((700, 300, 1001, 487)).save(folder / "street_crop.png")
    for src in sorted((SHARED / "edges2handbags_sample" / "testB").glob("*.jpg"))[:3]:
        Image.open(src).save(folder / f"handbag_{src.stem}.jpg", quality=95)
    return folder


def domain_folders(root: Path) -> Path:
    """edges2handbags as one folder per domain (``edges``, ``handbags``), links to the sample."""
    for split, side in (("train", "train"), ("test", "test")):
        for name, letter in (("edges", "A"), ("handbags", "B")):
            target = root / split / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                target.symlink_to(SHARED / "edges2handbags_sample" / f"{side}{letter}")
    return root


def train(model: str, out: Path, data_root: Path, log: list[str]) -> tuple[int, float, str]:
    if model == "stargan_v2":
        data = [
            "data=domains",
            f"data.root={data_root}",
            "data.load_size=72",
            "data.crop_size=64",
            "data.batch_size=4",
        ]
    else:
        data = ["data=unpaired", f"data.root={SHARED / 'edges2handbags_sample'}", "data.load_size=72", "data.crop_size=64",
                "data.batch_size=2"]  # fmt: skip
    cmd = ["run", f"model={model}", *data, "data.num_workers=0", "trainer=cpu", "logger=csv", "iters=4", "task=fit",
           "callbacks.progress_bar=null", f"hydra.run.dir={out}", *TINY[model]]  # fmt: skip
    return run(cmd, log)


def options(model: str) -> list[list[str]]:
    """The options each model declares (see its inference_spec), as a user would type them."""
    ref = (
        SHARED
        / "edges2handbags_sample"
        / "testB"
        / sorted(os.listdir(SHARED / "edges2handbags_sample" / "testB"))[-1]
    )
    multimodal = [["num_samples=3", "grid=true"], [f"reference={ref}", "grid=true"], ["interpolate=4"]]
    return {
        "drit": multimodal,
        "munit": multimodal,
        "ugatit": [["attention=true"], ["fit=resize", "grid=true"]],
        "cut": [["grid=true"], ["fit=resize"]],
        "stargan_v2": [
            ["target_domain=handbags", "num_samples=3", "grid=true"],
            [f"reference={ref}", "target_domain=handbags", "grid=true"],
            ["interpolate=4", "target_domain=1"],
        ],  # fmt: skip
    }[model]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/imtrans_real_photos")
    parser.add_argument("--models", default="drit,munit,ugatit,cut,stargan_v2")
    args = parser.parse_args()
    out = Path(args.out)
    inputs = photos(out / "photos")
    data_root = domain_folders(out / "domains")
    log: list[str] = []
    rows = []
    for model in args.models.split(","):
        run_dir = out / "runs" / model
        rc, sec, err = train(model, run_dir, data_root, log)
        rows.append((model, "train (4 iterations, 64 px)", rc, sec, "", err))
        if rc:
            continue
        for k, keys in enumerate([[], *options(model)]):
            dest = out / "translated" / model / f"{k}"
            rc, sec, err = run(
                [
                    "translate",
                    f"ckpt={run_dir}",
                    f"input={inputs}",
                    f"output={dest}",
                    "progress=false",
                    *keys,
                ],
                log,
            )
            files = sorted(dest.rglob("*.*")) if dest.exists() else []
            sizes = sorted(
                {
                    Image.open(p).size
                    for p in files
                    if p.suffix == ".png"
                    and "grid" not in p.name
                    and "attention" not in p.name
                    and "interp" not in p.name
                }
            )
            rows.append((model, "translate " + (" ".join(k.split("=")[0] + "=" + Path(k.split("=", 1)[1]).name for k in keys) or "(no key)"), rc, sec, f"{len(files)} files, sizes {sizes[:4]}{'...' if len(sizes) > 4 else ''}", err))  # fmt: skip
        rc, sec, err = run(
            ["export", f"ckpt={run_dir}", f"out={out / 'export' / model}", "formats=torchscript"], log
        )
        files = sorted((out / "export" / model).glob("*.pt")) if (out / "export" / model).exists() else []
        rows.append((model, "export", rc, sec, ", ".join(p.name for p in files), err))
        rc, sec, err = run(["evaluate", f"ckpt={run_dir}", f"out={out / 'eval' / model}.json"], log)
        rows.append(
            (
                model,
                "evaluate ckpt=",
                rc,
                sec,
                "evaluation json written" if (out / "eval" / f"{model}.json").is_file() else "no json",
                err,
            )
        )
    lines = [
        "# Every tool on real photos of a held-out data set",
        "",
        f"`python -m experiments.tools_on_real_photos` on {time.strftime('%Y-%m-%d')}, this CPU (2 threads). Tiny runs trained on",
        "the edges2handbags sample (4 iterations, 64 px); inputs: 3 Cityscapes street photos at 512x256, one",
        "301x187 crop and 3 held-out edges2handbags test photos (never seen in training). The standard metric",
        "weights are absent here: evaluate announces FID/KID/LPIPS as skipped and computes none of them.",
        "",
        "| model | command | exit | seconds | outputs | last stderr line |",
        "|---|---|---:|---:|---|---|",
    ]
    for model, what, rc, sec, outputs, err in rows:
        lines.append(f"| {model} | `{what}` | {rc} | {sec:.1f} | {outputs} | {err[:140].replace('|', '/')} |")
    RESULTS.write_text("\n".join(lines) + "\n")
    (out / "log.txt").write_text("\n\n".join(log))
    print("\n".join(lines))
    print(f"full log: {out / 'log.txt'}")
    sys.exit(1 if any(r[2] for r in rows) else 0)


if __name__ == "__main__":
    main()
