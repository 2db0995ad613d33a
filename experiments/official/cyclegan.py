"""The official CycleGAN training iteration: junyanz/pytorch-CycleGAN-and-pix2pix.

The repository is too large to fetch; the checkout used here
(``/work/official/pytorch-CycleGAN-and-pix2pix``) was rebuilt from single files of the code
index: ``models/{networks,base_model,cycle_gan_model,pix2pix_model}.py`` and
``options/train_options.py`` at 48ced5e, ``options/base_options.py`` at c05b30e,
``models/__init__.py``, ``util/util.py``, ``data/__init__.py`` at ddba8ad (2019 upstream, before
the ``--niter`` -> ``--n_epochs`` rename); see its ``PROVENANCE.md``. Any full upstream checkout
works too (the options used here exist in every version since 2019).

``CycleGANModel(opt)`` of ``models/cycle_gan_model.py`` with the official options of
``train.py --model cycle_gan --pool_size 50 --no_dropout`` (``scripts/train_cyclegan.sh``;
imtrans's ``model=cyclegan`` preset): resnet_9blocks G, basic (70x70 PatchGAN) D, InstanceNorm,
lsgan, lambda_A = lambda_B = 10, lambda_identity 0.5, image pools of 50, Adam 2e-4 (0.5, 0.999),
N(0, 0.02) init. The step is the body of ``train.py``'s loop: ``model.set_input(data)``,
``model.optimize_parameters()`` (forward, G_A + G_B step with the Ds frozen, then D_A and D_B on
pooled fakes); ``update_learning_rate`` (per epoch) and visualisation/saving are left out.

Input: imtrans's ``A`` / ``B`` (N x 3 x H x W in [-1, 1], the official loader's range) as
``{"A", "B", "A_paths", "B_paths"}``. Nothing is shimmed. ``--gpu_ids -1`` on the CPU (the
official ``init_net`` moves nets to ``gpu_ids[0]`` and wraps them in ``DataParallel`` on a GPU).
The official constructor's ``cudnn.benchmark = True`` holds only while the official step runs.
"""

from __future__ import annotations

from pathlib import Path

from experiments.official import OfficialStep


def build(checkout: Path, batch: dict, *, size: int, device: str) -> OfficialStep:
    from experiments.official import _junyanz as J

    J.import_checkout(checkout)
    argv = [
        "--dataroot", "unused", "--model", "cycle_gan", "--pool_size", "50", "--no_dropout",
        *J.shape_args(batch, size, device),
    ]  # fmt: skip
    model, opt, benchmark = J.build_model("cycle_gan_model", "CycleGANModel", argv)

    # train.py (loop body): model.set_input(data); model.optimize_parameters()
    step = J.loop_step(model, benchmark, device)

    networks = {name: J.unwrap(getattr(model, "net" + name)) for name in ("G_A", "G_B", "D_A", "D_B")}
    notes = (
        f"train.py {' '.join(argv)}; netG {opt.netG}, netD {opt.netD}, norm {opt.norm}, gan_mode {opt.gan_mode}, "
        f"lambda_A/B {opt.lambda_A}/{opt.lambda_B}, lambda_identity {opt.lambda_identity}, pool {opt.pool_size}; "
        f"cudnn.benchmark {benchmark} during the official step only"
    )
    return OfficialStep(step=step, networks=networks, notes=notes)
