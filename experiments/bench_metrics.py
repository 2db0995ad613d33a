"""Benchmark: FID + KID + LPIPS on N images through imtrans and through the reference packages.

    OMP_NUM_THREADS=2 python experiments/bench_metrics.py --n 1000 --size 64

The same N "fake" and N "real" images (uint8, procedural shapes, B domain of two seeds) go
through

- imtrans: ``Evaluator.fid_kid`` (torch-fidelity's Inception, our FID/KID formulas) and
  ``Evaluator.lpips_pairs`` (our LPIPS-alex) on the N pairs (fake_i, real_i);
- the reference: ``torch_fidelity.calculate_metrics(fid=True, kid=True)`` on the same tensors and
  ``lpips.LPIPS(net="alex")`` on the same pairs.

Both use the same weight files: real ones when they are in ``--torch-home``/hub/checkpoints,
else random-weight stand-ins written there (the cost does not depend on the weight values, so
the timings hold; the values are not FIDs of anything). Prints a Markdown table (times, ratio,
agreement of the values) and writes it with ``--out``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def images(n: int, size: int, seed: int):
    import torch

    from imtrans.data.shapes import ShapesDataset
    from imtrans.metrics.networks import to_uint8

    data = ShapesDataset("test", n, size=size, seed=seed)
    return to_uint8(torch.stack([data[i]["B"] for i in range(n)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--torch-home", default="/tmp/imtrans_bench_torch")
    parser.add_argument("--out", default=None, help="append the Markdown table to this file")
    parser.add_argument("--order", default="reference,imtrans", help="which pipeline runs first")
    args = parser.parse_args()
    os.environ["TORCH_HOME"] = args.torch_home
    os.environ["IMTRANS_METRICS_DOWNLOAD"] = "0"

    import torch

    from imtrans.metrics import Evaluator, get_protocol
    from imtrans.metrics.weights import hub_checkpoints_dir
    from tests.metrics.weights import write_all

    paths = write_all(hub_checkpoints_dir())
    fake, real = images(args.n, args.size, 0), images(args.n, args.size, 1)
    threads = torch.get_num_threads()

    results = {}

    def run_imtrans():
        # ---------------------------------------------------------------- imtrans
        ev = Evaluator(
            get_protocol("quick", {"num_reference": None}), batch_size=args.batch_size, notify=print
        )
        ev.prepare()
        t0 = time.perf_counter()
        _ = ev.inception, ev.lpips  # load both networks
        t_load = time.perf_counter() - t0
        ev.fid_kid(fake[:2], real[:2]), ev.lpips_pairs(fake[:2], real[:2])  # warm-up (kernel selection)
        t0 = time.perf_counter()
        ours = ev.fid_kid(fake, real)
        t_fidkid = time.perf_counter() - t0
        t0 = time.perf_counter()
        ours_lpips = ev.lpips_pairs(fake, real).double()
        t_lpips = time.perf_counter() - t0
        results["imtrans"] = (t_load, t_fidkid, t_lpips, ours, ours_lpips)

    def run_reference():
        # ---------------------------------------------------------------- torch-fidelity + lpips
        import lpips
        import torch_fidelity

        class Tensors(torch.utils.data.Dataset):
            def __init__(self, x):
                self.x = x

            def __len__(self):
                return len(self.x)

            def __getitem__(self, i):
                return self.x[i]

        t0 = time.perf_counter()
        ref = torch_fidelity.calculate_metrics(
            input1=Tensors(fake),
            input2=Tensors(real),
            fid=True,
            kid=True,
            kid_subset_size=min(1000, args.n),
            batch_size=args.batch_size,
            cuda=False,
            save_cpu_ram=True,
            cache=False,
            verbose=False,
            feature_extractor_weights_path=str(paths["inception"]),
        )
        t_ref_fidkid = time.perf_counter() - t0  # includes loading Inception (~1 s), no warm-up
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False)
        backbone = torch.load(paths["alexnet"], weights_only=True)
        stage = {
            i: s
            for s, (a, b) in enumerate(((0, 2), (2, 5), (5, 8), (8, 10), (10, 12)), 1)
            for i in range(a, b)
        }
        for key, value in backbone.items():
            if key.startswith("features."):
                _, i, name = key.split(".")
                getattr(getattr(net.net, f"slice{stage[int(i)]}"), i).get_parameter(name).data.copy_(value)
        t_ref_load = time.perf_counter() - t0
        with torch.no_grad():
            net(fake[:2].float() / 127.5 - 1, real[:2].float() / 127.5 - 1)  # warm-up
        t0 = time.perf_counter()
        ref_lpips = []
        with torch.no_grad():
            for i in range(0, args.n, args.batch_size):
                a = fake[i : i + args.batch_size].float() / 127.5 - 1
                b = real[i : i + args.batch_size].float() / 127.5 - 1
                ref_lpips.append(net(a, b).flatten())
        ref_lpips = torch.cat(ref_lpips).double()
        t_ref_lpips = time.perf_counter() - t0
        results["reference"] = (t_ref_load, t_ref_fidkid, t_ref_lpips, ref, ref_lpips)

    for name in args.order.split(","):
        {"imtrans": run_imtrans, "reference": run_reference}[name]()
    t_load, t_fidkid, t_lpips, ours, ours_lpips = results["imtrans"]
    t_ref_load, t_ref_fidkid, t_ref_lpips, ref, ref_lpips = results["reference"]
    rows = [
        ("imtrans", t_load, t_fidkid, t_lpips),
        ("torch-fidelity + lpips", t_ref_load, t_ref_fidkid, t_ref_lpips),
    ]

    # ---------------------------------------------------------------- report
    fid_rel = abs(ours["fid"] - ref["frechet_inception_distance"]) / max(
        abs(ref["frechet_inception_distance"]), 1e-12
    )
    kid_abs = abs(ours["kid"] - ref["kernel_inception_distance_mean"])
    lpips_abs = float((ours_lpips - ref_lpips).abs().max())
    lines = [
        f"### {args.n} + {args.n} images at {args.size} px, batch {args.batch_size}, {threads} torch threads, "
        f"order {args.order}, {platform.processor() or platform.machine()}, torch {torch.__version__}",
        "",
        f"Weights: {', '.join(p.name for p in paths.values())} in {hub_checkpoints_dir()} "
        "(random-weight stand-ins written by tests/metrics/weights.py unless real files were placed there)",
        "",
        "| pipeline | load networks (s) | FID + KID (s) | LPIPS, N pairs (s) | total (s) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, t_l, t_fk, t_lp in rows:
        lines.append(f"| {name} | {t_l:.1f} | {t_fk:.1f} | {t_lp:.1f} | {t_l + t_fk + t_lp:.1f} |")
    (_, a_l, a_fk, a_lp), (_, b_l, b_fk, b_lp) = rows
    lines += [
        f"| ratio imtrans / reference | | {a_fk / b_fk:.2f} | {a_lp / b_lp:.2f} | "
        f"{(a_l + a_fk + a_lp) / (b_l + b_fk + b_lp):.2f} |",
        "",
        f"Agreement: FID {ours['fid']:.6g} vs {ref['frechet_inception_distance']:.6g} (rel. diff {fid_rel:.1e}); "
        f"KID {ours['kid']:.6g} vs {ref['kernel_inception_distance_mean']:.6g} (abs. diff {kid_abs:.1e}); "
        f"LPIPS max abs. diff over {args.n} pairs {lpips_abs:.1e} (mean {float(ours_lpips.mean()):.4f}).",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "a") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
