"""The official BicycleGAN training iteration: junyanz/BicycleGAN (checked against 40b9d52, 2020-08-04).

``BiCycleGANModel(opt)`` of ``models/bicycle_gan_model.py`` with the official options of
``train.py --model bicycle_gan --use_dropout --nz 8`` (``scripts/train_edges2shoes.sh``, whose
``--input_nc 1`` is the edge maps' channel count: here the channels are the batch's) and the
networks for the size, as imtrans's ``model=bicyclegan`` preset resolves them: ``unet_<size>``
G with z added to every down block (``--where_add all``, the default), ``basic_<size>_multi``
D and D2 (2 scales), ``resnet_<size>`` E, where size is 128 or 256 (the official nets have no
other sizes: ``resnet_*`` ends with a fixed AvgPool2d(8), ``unet_*`` has 7 or 8 levels).
InstanceNorm, lsgan, lambda_L1 10, lambda_kl 0.01, lambda_z 0.5, lambda_GAN = lambda_GAN2 = 1,
4 Adams 2e-4 (0.5, 0.999), xavier init (gain 0.02).

The step is the body of ``train.py``'s loop (lines 45-50): ``model.set_input(data)``, skip the
batch unless ``model.is_train()`` (its size must be ``opt.batch_size``), then
``model.optimize_parameters()`` (forward; G and E on GAN + GAN2 + L1 + KL, then the z
regression with E frozen, E and G steps; then D on the encoded half and D2 on the random half).
``update_learning_rate`` and visualisation/saving are left out.

Batch size: the official code asserts an even ``--batch_size`` (the first half is encoded, the
second half gives D2 its real images). imtrans runs a batch of 1 with that one pair as both
halves; the official step then gets the pair twice (``--batch_size 2``), which is the same
compute (G twice on one A, E on one B and on one fake, D and D2 on one real and one fake each).
An odd batch > 1 is refused by both. Input: ``{"A", "B", "A_paths", "B_paths"}``. Nothing is
shimmed; ``--gpu_ids -1`` on the CPU. The official constructor's ``cudnn.benchmark = True``
holds only while the official step runs.
"""

from __future__ import annotations

from pathlib import Path

import torch

from experiments.official import OfficialStep

SIZES = (128, 256)


def build(checkout: Path, batch: dict, *, size: int, device: str) -> OfficialStep:
    from experiments.official import _junyanz as J

    if size not in SIZES:
        raise ValueError(f"the official BicycleGAN nets exist for 128 and 256 px only, not {size}")
    n = batch["A"].shape[0]
    if n > 1 and n % 2:
        raise ValueError(f"BicycleGAN needs an even batch (the official code asserts it), got {n}")
    doubled = n == 1
    J.import_checkout(checkout)
    argv = [
        "--dataroot", "unused", "--model", "bicycle_gan", "--use_dropout", "--nz", "8",
        "--netG", f"unet_{size}", "--netD", f"basic_{size}_multi", "--netD2", f"basic_{size}_multi",
        "--netE", f"resnet_{size}", "--direction", "AtoB",
        *J.shape_args(batch, size, device, batch_size=2 if doubled else n),
    ]  # fmt: skip
    model, opt, benchmark = J.build_model("bicycle_gan_model", "BiCycleGANModel", argv)

    def step(batch: dict) -> None:
        data = J.official_input(batch)
        if doubled:  # one pair as both halves (see the module doc)
            data = {k: torch.cat([v, v]) if torch.is_tensor(v) else v * 2 for k, v in data.items()}
        # train.py:45-50 (loop body): set_input; skip unless is_train(); optimize_parameters()
        with J.official_cudnn(benchmark):
            model.set_input(data)
            if not model.is_train():
                raise RuntimeError(f"the official loop would skip this batch (size {data['A'].shape[0]})")
            model.optimize_parameters()
            J.synchronize(device)

    networks = {name: J.unwrap(getattr(model, "net" + name)) for name in ("G", "D", "D2", "E")}
    notes = (
        f"train.py {' '.join(argv)}; where_add {opt.where_add}, upsample {opt.upsample}, norm {opt.norm}, "
        f"gan_mode {opt.gan_mode}, num_Ds {opt.num_Ds}, lambda L1/kl/z {opt.lambda_L1}/{opt.lambda_kl}/{opt.lambda_z}"
        + ("; batch of 1 given to the official code as the pair twice (--batch_size 2)" if doubled else "")
        + f"; cudnn.benchmark {benchmark} during the official step only"
    )
    return OfficialStep(step=step, networks=networks, notes=notes)
