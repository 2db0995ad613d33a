"""StarGAN v2's official training iteration: clovaai/stargan-v2 @ 875b70a.

* Model: the official ``core.solver.Solver(args)`` in ``mode='train'`` (core/solver.py:28-62),
  which builds the networks with ``core.model.build_model(args)`` (each wrapped in
  ``nn.DataParallel``, EMA copies deep-copied before the He init), one Adam per network (lr, F's
  ``f_lr``, betas, weight decay; core/solver.py:43-50) and applies ``he_init`` to the non-EMA
  networks (core/solver.py:58-62). ``Solver`` moves itself to CUDA when there is one; it is then
  moved to ``device``.
* Options (``args``): the ``main.py`` defaults (main.py:86-179) with the README's AFHQ training
  command (README.md:136-137: ``--num_domains 3 --w_hpf 0 --lambda_reg 1 --lambda_sty 1
  --lambda_ds 2 --lambda_cyc 1``), as imtrans's ``experiment=stargan_v2_afhq``: latent 16,
  hidden 512, style 64, lr 1e-4, f_lr 1e-6, betas (0, 0.99), weight decay 1e-4, ds_iter 100000;
  ``img_size`` is the benchmark size. ``checkpoint_dir`` is a fresh temporary folder (the
  ``CheckpointIO`` objects create it; nothing is saved). Official ``main.py`` also sets
  ``cudnn.benchmark = True`` (main.py:34); this adapter leaves that process-wide flag alone.
* ``step``: the body of the loop in ``Solver.train`` (core/solver.py:101-143; the loop is inline
  code, not a method), with the official ``compute_d_loss``, ``compute_g_loss`` and
  ``moving_average``: D with a latent code, D with a reference, G with latent codes (G, F, E
  steps), G with references (G step), the EMA of G, F, E (beta 0.999), and the linear decay of
  ``lambda_ds``. Inputs as the official ``InputFetcher`` (core/data_loader.py:194-213) gives
  them: ``x_real``/``y_org`` = imtrans's ``image``/``domain``, ``x_ref``/``x_ref2``/``y_trg`` =
  ``ref``/``ref2``/``ref_domain``, ``z_trg``/``z_trg2`` = ``torch.randn(N, latent_dim)`` moved to
  ``device``. ``x_real`` is a fresh copy each step, as the fetcher yields a fresh batch:
  ``compute_d_loss`` calls ``x_real.requires_grad_()`` in place and the G losses then
  back-propagate into it too, as official. ``masks`` is None (w_hpf 0, no FAN). Left out: the
  loss print, the debug images, checkpoints and FID/LPIPS of the loop (core/solver.py:145-171).
* Shims: import-only stand-ins in ``sys.modules`` for what is missing here (only when the real
  module cannot be imported): ``munch`` (``Munch``: a dict with attribute access, all the
  official code uses), ``cv2``, ``skimage``/``skimage.filters`` (``gaussian``: used only by the
  face alignment of core/wing.py) and ``ffmpeg`` (used only by the video export of
  core/utils.py).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import sys
import tempfile
import types
from pathlib import Path

import torch

from experiments.official import OfficialStep, official_import


class _Munch(dict):
    """Stand-in for ``munch.Munch``: a dict whose keys are also attributes."""

    def __getattr__(self, k):
        try:
            return self[k]
        except KeyError:
            raise AttributeError(k) from None

    def __setattr__(self, k, v):
        self[k] = v

    def __delattr__(self, k):
        try:
            del self[k]
        except KeyError:
            raise AttributeError(k) from None


def _missing(name: str) -> bool:
    if name in sys.modules:
        return False
    try:
        return importlib.util.find_spec(name) is None
    except (ImportError, ValueError):
        return True


def _unavailable(name):
    def f(*args, **kwargs):
        raise RuntimeError(f"{name}: an import-only stand-in of the speed benchmark")

    return f


def _install_stand_ins() -> list[str]:
    """Put import-only modules for what the official imports need and this machine lacks."""
    done = []
    if _missing("munch"):
        m = types.ModuleType("munch")
        m.Munch = _Munch
        sys.modules["munch"] = m
        done.append("munch")
    for name in ("cv2", "ffmpeg"):
        if _missing(name):
            sys.modules[name] = types.ModuleType(name)
            done.append(name)
    if _missing("skimage"):
        sk = types.ModuleType("skimage")
        filters = types.ModuleType("skimage.filters")
        filters.gaussian = _unavailable("skimage.filters.gaussian")
        sk.filters = filters
        sys.modules["skimage"] = sk
        sys.modules["skimage.filters"] = filters
        done.append("skimage")
    return done


def official_args(size: int, checkpoint_dir: str) -> argparse.Namespace:
    """The main.py defaults with the README's AFHQ training flags, at ``size`` px."""
    return argparse.Namespace(
        img_size=size,
        num_domains=3,  # AFHQ (README.md:136)
        latent_dim=16,
        hidden_dim=512,
        style_dim=64,
        lambda_reg=1.0,
        lambda_cyc=1.0,
        lambda_sty=1.0,
        lambda_ds=2.0,  # AFHQ (README.md:137)
        ds_iter=100000,
        w_hpf=0.0,  # AFHQ (README.md:136)
        randcrop_prob=0.5,
        total_iters=100000,
        resume_iter=0,
        batch_size=8,
        val_batch_size=32,
        lr=1e-4,
        f_lr=1e-6,
        beta1=0.0,
        beta2=0.99,
        weight_decay=1e-4,
        num_outs_per_domain=10,
        mode="train",
        num_workers=0,
        seed=777,
        checkpoint_dir=checkpoint_dir,
        wing_path="expr/checkpoints/wing.ckpt",
        print_every=10,
        sample_every=5000,
        save_every=10000,
        eval_every=50000,
    )


def build(checkout: Path, batch: dict, *, size: int, device: str) -> OfficialStep:
    stand_ins = _install_stand_ins()
    official_import(checkout)
    from core.solver import Solver, compute_d_loss, compute_g_loss, moving_average

    args = official_args(size, tempfile.mkdtemp(prefix="stargan_v2_official_"))
    with contextlib.redirect_stdout(io.StringIO()):  # its parameter counts and init messages
        solver = Solver(args)
    solver.to(device)
    nets, nets_ema, optims = solver.nets, solver.nets_ema, solver.optims
    initial_lambda_ds = args.lambda_ds  # core/solver.py:95

    def step(b: dict) -> None:
        # the InputFetcher's batch (core/data_loader.py:194-213), core/solver.py:101-104
        x_real = b["image"].detach().clone().to(device)
        y_org = b["domain"].to(device)
        x_ref, x_ref2, y_trg = b["ref"].to(device), b["ref2"].to(device), b["ref_domain"].to(device)
        z_trg = torch.randn(x_real.size(0), args.latent_dim).to(device)
        z_trg2 = torch.randn(x_real.size(0), args.latent_dim).to(device)
        masks = None  # core/solver.py:106 with w_hpf 0

        # train the discriminator: core/solver.py:108-119
        d_loss, _ = compute_d_loss(nets, args, x_real, y_org, y_trg, z_trg=z_trg, masks=masks)
        solver._reset_grad()
        d_loss.backward()
        optims.discriminator.step()

        d_loss, _ = compute_d_loss(nets, args, x_real, y_org, y_trg, x_ref=x_ref, masks=masks)
        solver._reset_grad()
        d_loss.backward()
        optims.discriminator.step()

        # train the generator: core/solver.py:121-133
        g_loss, _ = compute_g_loss(nets, args, x_real, y_org, y_trg, z_trgs=[z_trg, z_trg2], masks=masks)
        solver._reset_grad()
        g_loss.backward()
        optims.generator.step()
        optims.mapping_network.step()
        optims.style_encoder.step()

        g_loss, _ = compute_g_loss(nets, args, x_real, y_org, y_trg, x_refs=[x_ref, x_ref2], masks=masks)
        solver._reset_grad()
        g_loss.backward()
        optims.generator.step()

        # moving average of the parameters: core/solver.py:136-139
        moving_average(nets.generator, nets_ema.generator, beta=0.999)
        moving_average(nets.mapping_network, nets_ema.mapping_network, beta=0.999)
        moving_average(nets.style_encoder, nets_ema.style_encoder, beta=0.999)

        # decay of the diversity weight: core/solver.py:141-143
        if args.lambda_ds > 0:
            args.lambda_ds -= initial_lambda_ds / args.ds_iter

    notes = (
        f"core.solver.Solver(args) (build_model, per-network Adam, he_init) at img_size {size}, AFHQ flags "
        "(num_domains 3, w_hpf 0, lambda_ds 2, others 1; lr 1e-4, f_lr 1e-6, betas (0, 0.99), wd 1e-4); "
        "step = the Solver.train loop body (core/solver.py:101-143): D latent, D ref, G latent, G ref, EMA, "
        "lambda_ds decay; z_trg/z_trg2 drawn with torch.randn as InputFetcher; nets are official "
        "nn.DataParallel wrappers; main.py's cudnn.benchmark=True not set; "
        f"stand-ins: {', '.join(stand_ins) or 'none'}"
    )
    networks = {k: nets[k].module for k in ("generator", "mapping_network", "style_encoder", "discriminator")}
    return OfficialStep(step=step, networks=networks, notes=notes)
