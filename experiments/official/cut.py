"""The official CUT training iteration: taesungp/contrastive-unpaired-translation (checked against
b3ac297, 2023-09-05). ``fastcut`` uses the same code with ``--CUT_mode FastCUT``.

``CUTModel(opt)`` of ``models/cut_model.py`` with the official options of
``train.py --model cut --CUT_mode CUT`` (``FastCUT`` for fastcut), nothing else: the defaults are
imtrans's ``model=cut`` preset (resnet_9blocks G and basic D, both anti-aliased, InstanceNorm,
no dropout, xavier 0.02 init; PatchSampleF ``mlp_sample`` with 256-d MLPs, nce_layers
0,4,8,12,16, 256 patches, nce_T 0.07; lsgan, lambda_GAN 1, Adam 2e-4 (0.5, 0.999); CUT:
lambda_NCE 1 with the identity NCE, FastCUT: lambda_NCE 10, no identity NCE,
flip-equivariance). ``CUT_mode`` is read by ``modify_commandline_options`` from ``sys.argv``, so
``sys.argv`` is the official command line while the options are parsed.

At the first iteration ``train.py`` (lines 40-44) runs ``model.data_dependent_initialize(data)``
(one forward, D and G losses backward without steps: netF's MLPs are created at that first
pass, then its Adam), ``model.setup(opt)`` (schedulers; no loading, nothing printed but the
networks) and ``model.parallelize()``; ``build`` does the same on the given batch.
``parallelize`` wraps G, F and D in ``DataParallel(gpu_ids)``; it is skipped on the CPU (there
``DataParallel`` is a pass-through on a machine without CUDA and fails with empty ``gpu_ids`` on
one with CUDA). The step is the loop body: ``model.set_input(data)``,
``model.optimize_parameters()``: forward (G once on cat(A, B) for CUT, on the maybe-flipped A
for FastCUT), the D step, then G and F stepped together with D frozen.
``update_learning_rate``, evaluation and visualisation/saving are left out.

Input: ``{"A", "B", "A_paths", "B_paths"}``. Nothing is shimmed; ``--gpu_ids -1`` on the CPU.
The official constructor's ``cudnn.benchmark = True`` holds only while the official step runs.
"""

from __future__ import annotations

from pathlib import Path

from experiments.official import OfficialStep


def build_cut(checkout: Path, batch: dict, *, size: int, device: str, mode: str) -> OfficialStep:
    """``CUTModel`` in ``mode`` (``CUT`` or ``FastCUT``), initialised on ``batch``, and its step."""
    from experiments.official import _junyanz as J

    J.import_checkout(checkout)
    argv = [
        "--dataroot", "unused", "--model", "cut", "--CUT_mode", mode,
        *J.shape_args(batch, size, device),
    ]  # fmt: skip
    opt = J.train_options(argv)
    CUTModel = J.import_model("cut_model", "CUTModel")
    with J.building() as built:
        model = CUTModel(opt)
        # train.py:40-44, at the first iteration
        model.data_dependent_initialize(J.official_input(batch))
        model.setup(opt)
        if opt.gpu_ids:
            model.parallelize()
    benchmark = built["cudnn_benchmark"]

    # train.py:45-46 (loop body): model.set_input(data); model.optimize_parameters()
    step = J.loop_step(model, benchmark, device)

    networks = {name: J.unwrap(getattr(model, "net" + name)) for name in ("G", "D", "F")}
    notes = (
        f"train.py {' '.join(argv)}; lambda_NCE {opt.lambda_NCE}, nce_idt {opt.nce_idt}, "
        f"flip_equivariance {opt.flip_equivariance}, netF {opt.netF} ({opt.netF_nc}), nce_layers {opt.nce_layers}, "
        f"num_patches {opt.num_patches}, antialias {not opt.no_antialias}/{not opt.no_antialias_up}; "
        "data_dependent_initialize + setup on the given batch in build"
        + ("" if opt.gpu_ids else ", parallelize skipped on the CPU")
        + f"; cudnn.benchmark {benchmark} during the official step only"
    )
    return OfficialStep(step=step, networks=networks, notes=notes)


def build(checkout: Path, batch: dict, *, size: int, device: str) -> OfficialStep:
    return build_cut(checkout, batch, size=size, device=device, mode="CUT")
