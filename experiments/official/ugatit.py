"""U-GAT-IT's official training iteration: znxlwm/UGATIT-pytorch @ b8c4251.

* Networks and optimizers: built from the official ``networks.py`` classes as
  ``UGATIT.build_model`` builds them (UGATIT.py:110-127): two ``ResnetGenerator`` (ngf = ch,
  ``n_blocks`` = n_res, ``img_size``, ``light``), global ``Discriminator`` with ``n_layers=7``
  and local with ``n_layers=5`` per domain, one Adam (betas (0.5, 0.999), lr, weight decay) over
  both generators and one over the four discriminators, and ``RhoClipper(0, 1)``. Below 96 px
  the hard-coded 7-layer global D cannot run; there it gets imtrans's depth (``fit_layers``: 6
  at 64 px), the only departure from ``build_model``.
  ``build_model`` itself is not called: it first builds ``ImageFolder`` data sets from
  ``dataset/<name>/train{A,B}`` folders (UGATIT.py:86-107), which the benchmark does not have.
* Options: the ``main.py`` defaults (ch 64, n_res 4, lr 1e-4, weight decay 1e-4, adv 1, cycle
  10, identity 10, cam 1000) with ``img_size`` = the benchmark size and ``light`` as imtrans's
  preset (``conf/model/ugatit.yaml``: ``generator.light: true``, the README's ``--light True``;
  note that ``main.py``'s own default is ``--light False``).
* ``step``: the body of the loop in ``UGATIT.train`` (UGATIT.py:164-242, an inline loop, not a
  method), reproduced here with the official modules: the D update (UGATIT.py:166-196, fakes
  not detached, as official), then the G update (UGATIT.py:198-238), then the rho clipper on
  both generators (UGATIT.py:240-242). ``real_A``/``real_B`` are imtrans's ``A``/``B``.
  Left out: the lr decay of the second half of training (UGATIT.py:148-150, an lr update), the
  loss print, the image dumps every ``print_freq`` and the saving every ``save_freq``.
* Shims: none. Only ``networks.py`` is imported (``UGATIT.py`` would pull ``utils.py`` with
  ``cv2`` and ``scipy.misc``, and ``dataset.py``, none of which the iteration uses).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import torch
from torch import nn

from experiments.official import OfficialStep, official_import
from imtrans.resolvers import fit_layers

#: the official main.py defaults (main.py:20-31), ``light`` as imtrans's preset
OPTIONS = dict(
    light=True,
    lr=1e-4,
    weight_decay=1e-4,
    adv_weight=1,
    cycle_weight=10,
    identity_weight=10,
    cam_weight=1000,
    ch=64,
    n_res=4,
)


def build(checkout: Path, batch: dict, *, size: int, device: str) -> OfficialStep:
    official_import(checkout)
    from networks import Discriminator, ResnetGenerator, RhoClipper

    o = OPTIONS
    # 7 global D layers, hard-coded (UGATIT.py:112-113); they need >= 96 px (below, the last
    # ReflectionPad2d fails), so smaller sizes take imtrans's shallower depth (one fewer per halving)
    n_global = fit_layers(size, 7, 96)
    # UGATIT.build_model, UGATIT.py:110-127
    gen = dict(input_nc=3, output_nc=3, ngf=o["ch"], n_blocks=o["n_res"], img_size=size, light=o["light"])
    genA2B = ResnetGenerator(**gen).to(device)
    genB2A = ResnetGenerator(**gen).to(device)
    disGA = Discriminator(input_nc=3, ndf=o["ch"], n_layers=n_global).to(device)
    disGB = Discriminator(input_nc=3, ndf=o["ch"], n_layers=n_global).to(device)
    disLA = Discriminator(input_nc=3, ndf=o["ch"], n_layers=5).to(device)
    disLB = Discriminator(input_nc=3, ndf=o["ch"], n_layers=5).to(device)
    L1_loss = nn.L1Loss().to(device)
    MSE_loss = nn.MSELoss().to(device)
    BCE_loss = nn.BCEWithLogitsLoss().to(device)
    G_optim = torch.optim.Adam(
        itertools.chain(genA2B.parameters(), genB2A.parameters()),
        lr=o["lr"],
        betas=(0.5, 0.999),
        weight_decay=o["weight_decay"],
    )
    D_optim = torch.optim.Adam(
        itertools.chain(disGA.parameters(), disGB.parameters(), disLA.parameters(), disLB.parameters()),
        lr=o["lr"],
        betas=(0.5, 0.999),
        weight_decay=o["weight_decay"],
    )
    Rho_clipper = RhoClipper(0, 1)
    # UGATIT.train, UGATIT.py:130
    for net in (genA2B, genB2A, disGA, disGB, disLA, disLB):
        net.train()

    adv, cyc, idt, cam = o["adv_weight"], o["cycle_weight"], o["identity_weight"], o["cam_weight"]

    def real_fake(loss, real, fake):  # loss(real, 1) + loss(fake, 0), as UGATIT.py:182-189
        return loss(real, torch.ones_like(real).to(device)) + loss(fake, torch.zeros_like(fake).to(device))

    def ones(loss, x):  # loss(x, 1), as UGATIT.py:215-222
        return loss(x, torch.ones_like(x).to(device))

    def step(b: dict) -> None:
        real_A, real_B = b["A"].to(device), b["B"].to(device)  # UGATIT.py:164

        # Update D: UGATIT.py:166-196
        D_optim.zero_grad()
        fake_A2B, _, _ = genA2B(real_A)
        fake_B2A, _, _ = genB2A(real_B)
        real_GA_logit, real_GA_cam_logit, _ = disGA(real_A)
        real_LA_logit, real_LA_cam_logit, _ = disLA(real_A)
        real_GB_logit, real_GB_cam_logit, _ = disGB(real_B)
        real_LB_logit, real_LB_cam_logit, _ = disLB(real_B)
        fake_GA_logit, fake_GA_cam_logit, _ = disGA(fake_B2A)
        fake_LA_logit, fake_LA_cam_logit, _ = disLA(fake_B2A)
        fake_GB_logit, fake_GB_cam_logit, _ = disGB(fake_A2B)
        fake_LB_logit, fake_LB_cam_logit, _ = disLB(fake_A2B)
        D_loss_A = adv * (
            real_fake(MSE_loss, real_GA_logit, fake_GA_logit)
            + real_fake(MSE_loss, real_GA_cam_logit, fake_GA_cam_logit)
            + real_fake(MSE_loss, real_LA_logit, fake_LA_logit)
            + real_fake(MSE_loss, real_LA_cam_logit, fake_LA_cam_logit)
        )
        D_loss_B = adv * (
            real_fake(MSE_loss, real_GB_logit, fake_GB_logit)
            + real_fake(MSE_loss, real_GB_cam_logit, fake_GB_cam_logit)
            + real_fake(MSE_loss, real_LB_logit, fake_LB_logit)
            + real_fake(MSE_loss, real_LB_cam_logit, fake_LB_cam_logit)
        )
        Discriminator_loss = D_loss_A + D_loss_B
        Discriminator_loss.backward()
        D_optim.step()

        # Update G: UGATIT.py:198-238
        G_optim.zero_grad()
        fake_A2B, fake_A2B_cam_logit, _ = genA2B(real_A)
        fake_B2A, fake_B2A_cam_logit, _ = genB2A(real_B)
        fake_A2B2A, _, _ = genB2A(fake_A2B)
        fake_B2A2B, _, _ = genA2B(fake_B2A)
        fake_A2A, fake_A2A_cam_logit, _ = genB2A(real_A)
        fake_B2B, fake_B2B_cam_logit, _ = genA2B(real_B)
        fake_GA_logit, fake_GA_cam_logit, _ = disGA(fake_B2A)
        fake_LA_logit, fake_LA_cam_logit, _ = disLA(fake_B2A)
        fake_GB_logit, fake_GB_cam_logit, _ = disGB(fake_A2B)
        fake_LB_logit, fake_LB_cam_logit, _ = disLB(fake_A2B)
        G_ad_A = (
            ones(MSE_loss, fake_GA_logit)
            + ones(MSE_loss, fake_GA_cam_logit)
            + ones(MSE_loss, fake_LA_logit)
            + ones(MSE_loss, fake_LA_cam_logit)
        )
        G_ad_B = (
            ones(MSE_loss, fake_GB_logit)
            + ones(MSE_loss, fake_GB_cam_logit)
            + ones(MSE_loss, fake_LB_logit)
            + ones(MSE_loss, fake_LB_cam_logit)
        )
        G_recon_loss_A = L1_loss(fake_A2B2A, real_A)
        G_recon_loss_B = L1_loss(fake_B2A2B, real_B)
        G_identity_loss_A = L1_loss(fake_A2A, real_A)
        G_identity_loss_B = L1_loss(fake_B2B, real_B)
        G_cam_loss_A = real_fake(BCE_loss, fake_B2A_cam_logit, fake_A2A_cam_logit)
        G_cam_loss_B = real_fake(BCE_loss, fake_A2B_cam_logit, fake_B2B_cam_logit)
        G_loss_A = adv * G_ad_A + cyc * G_recon_loss_A + idt * G_identity_loss_A + cam * G_cam_loss_A
        G_loss_B = adv * G_ad_B + cyc * G_recon_loss_B + idt * G_identity_loss_B + cam * G_cam_loss_B
        Generator_loss = G_loss_A + G_loss_B
        Generator_loss.backward()
        G_optim.step()

        # clip rho of AdaILN and ILN after the G step: UGATIT.py:240-242
        genA2B.apply(Rho_clipper)
        genB2A.apply(Rho_clipper)

    notes = (
        f"networks.py classes built as UGATIT.build_model (UGATIT.py:110-127) at img_size {size}, "
        f"light={o['light']} (imtrans's preset; main.py's default is light=False), ch 64, n_res 4, D n_layers "
        f"{n_global}/5{'' if n_global == 7 else ' (official 7 needs >= 96 px; imtrans depth)'}; step = the UGATIT.train loop body (UGATIT.py:164-242): D update, G update, RhoClipper; "
        "the second-half lr decay (UGATIT.py:148-150) and logging/sampling/saving left out; no shims"
    )
    networks = dict(genA2B=genA2B, genB2A=genB2A, disGA=disGA, disLA=disLA, disGB=disGB, disLB=disLB)
    return OfficialStep(step=step, networks=networks, notes=notes)
