"""The official pix2pix training iteration: junyanz/pytorch-CycleGAN-and-pix2pix.

Checkout: as for ``cyclegan`` (rebuilt from the code index, ``models/pix2pix_model.py`` at
48ced5e; see that module's docstring and the checkout's ``PROVENANCE.md``).

``Pix2PixModel(opt)`` of ``models/pix2pix_model.py`` with the official options of
``train.py --model pix2pix --netG unet_<size> --direction AtoB`` (the options of
``scripts/train_pix2pix.sh`` less its facades-specific ``--direction BtoA``; imtrans translates
A -> B): ``modify_commandline_options`` sets BatchNorm, pool_size 0, vanilla GAN, lambda_L1 100;
dropout 0.5 on (no ``--no_dropout``); conditional basic D on concat(A, B); Adam 2e-4
(0.5, 0.999); N(0, 0.02) init. The U-Net follows the size as imtrans's preset does:
``unet_128`` at 128 px, ``unet_256`` at 256 px (the official code has no other depth). The
step is the body of ``train.py``'s loop: ``model.set_input(data)``,
``model.optimize_parameters()`` (forward, D step, then G step with D frozen);
``update_learning_rate`` and visualisation/saving are left out.

Input: imtrans's paired ``A`` / ``B`` as ``{"A", "B", "A_paths", "B_paths"}``. Nothing is
shimmed; ``--gpu_ids -1`` on the CPU. The official constructor's ``cudnn.benchmark = True``
holds only while the official step runs.
"""

from __future__ import annotations

from pathlib import Path

from experiments.official import OfficialStep

UNETS = {128: "unet_128", 256: "unet_256"}


def build(checkout: Path, batch: dict, *, size: int, device: str) -> OfficialStep:
    from experiments.official import _junyanz as J

    if size not in UNETS:
        raise ValueError(
            f"the official pix2pix has U-Nets for 128 and 256 px only (unet_128/unet_256), not {size}"
        )
    J.import_checkout(checkout)
    argv = [
        "--dataroot", "unused", "--model", "pix2pix", "--netG", UNETS[size], "--direction", "AtoB",
        *J.shape_args(batch, size, device),
    ]  # fmt: skip
    model, opt, benchmark = J.build_model("pix2pix_model", "Pix2PixModel", argv)

    # train.py (loop body): model.set_input(data); model.optimize_parameters()
    step = J.loop_step(model, benchmark, device)

    networks = {name: J.unwrap(getattr(model, "net" + name)) for name in ("G", "D")}
    notes = (
        f"train.py {' '.join(argv)}; netG {opt.netG}, netD {opt.netD}, norm {opt.norm}, gan_mode {opt.gan_mode}, "
        f"lambda_L1 {opt.lambda_L1}, dropout {not opt.no_dropout}, pool {opt.pool_size}; "
        f"cudnn.benchmark {benchmark} during the official step only"
    )
    return OfficialStep(step=step, networks=networks, notes=notes)
