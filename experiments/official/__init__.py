"""The official update steps of every method, for ``experiments/bench_speed.py``.

Each method's official repository is a checkout that the user names at run time
(``--official NAME=PATH``); nothing of it is in this repository. One module per method,
``experiments/official/<method>.py``, turns that checkout into one callable official update:

    build(checkout: Path, batch: dict, *, size: int, device: str) -> OfficialStep

* ``batch`` is the first training batch of imtrans's data module for the same benchmark entry
  (``first_batch``), on ``device``: the official step trains on exactly these tensors, converted
  to the official input format (e.g. junyanz's ``set_input({"A", "B", "A_paths", "B_paths"})``,
  pix2pixHD's float label map, StarGAN v2's ``(x_real, y_org, x_ref, x_ref2, y_trg, z_trg,
  z_trg2)``).
* The official networks are built with the official classes and the official options at the
  paper configuration for ``size`` that imtrans's preset uses too (the same parameter counts:
  ``OfficialStep.networks`` lets the benchmark check them against imtrans's).
* ``OfficialStep.step(batch)`` runs one official training iteration, as the official training
  loop's body does it (optimizer steps, the official update order, the official loss code), and
  returns nothing. Logging, visualisation, saving and learning-rate updates of the loop are left
  out; they are outside the iteration.

The official module names collide across repositories (``models``, ``options``, ``networks``,
``utils``), so ``bench_speed.py`` runs each method in its own process; ``official_import``
puts one checkout on ``sys.path``.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"


@dataclasses.dataclass
class OfficialStep:
    #: one official training iteration on a batch of imtrans's data module (see module doc)
    step: Callable[[dict], None]
    #: the official trainable networks, by name (parameter counts are compared with imtrans's)
    networks: dict[str, nn.Module]
    #: what the adapter had to decide (options it set, anything not as the official loop)
    notes: str = ""


@dataclasses.dataclass(frozen=True)
class Entry:
    """One benchmark row: an imtrans method at its paper configuration, and its official code."""

    name: str
    #: Hydra overrides of the imtrans run (data and size are added by ``bench_overrides``)
    overrides: tuple[str, ...]
    #: ``shapes`` (unpaired), ``shapes_paired``, ``cityscapes`` (label maps) or ``domains``
    data: str
    #: the module of experiments/official with ``build``
    adapter: str
    #: the checkout's name in ``--official NAME=PATH`` (one checkout may serve several entries)
    repo: str
    #: the paper configuration's image size on the CPU (``--size`` changes it)
    size: int = 128


ENTRIES = [
    Entry("cyclegan", ("model=cyclegan",), "shapes", "cyclegan", "pytorch-CycleGAN-and-pix2pix"),
    Entry("pix2pix", ("model=pix2pix",), "shapes_paired", "pix2pix", "pytorch-CycleGAN-and-pix2pix"),
    Entry("bicyclegan", ("model=bicyclegan",), "shapes_paired", "bicyclegan", "BicycleGAN"),
    Entry("munit", ("model=munit",), "shapes", "munit", "MUNIT"),
    Entry("unit", ("model=unit",), "shapes", "unit", "MUNIT"),
    Entry("drit", ("model=drit",), "shapes", "drit", "DRIT", size=216),
    Entry("drit_multi", ("model=drit_multi",), "domains", "drit_multi", "MDMM", size=216),
    Entry("pix2pixhd", ("model=pix2pixhd",), "cityscapes", "pix2pixhd", "pix2pixHD"),
    Entry("ugatit", ("model=ugatit",), "shapes", "ugatit", "UGATIT-pytorch"),
    Entry("cut", ("model=cut", "model.mode=cut"), "shapes", "cut", "contrastive-unpaired-translation"),
    Entry(
        "fastcut",
        ("model=cut", "model.mode=fastcut"),
        "shapes",
        "fastcut",
        "contrastive-unpaired-translation",
    ),
    Entry("stargan_v2", ("experiment=stargan_v2_afhq",), "domains", "stargan_v2", "stargan-v2"),
]
BY_NAME = {e.name: e for e in ENTRIES}


def random_vgg19(work: Path) -> Path:
    """A VGG19 weights file with torchvision's random initialisation (the VGG loss costs the
    same with any weights; the official adapter builds its VGG19 randomly too). It lies in the
    folder of ``IMTRANS_STAND_IN_WEIGHTS`` (``work`` when unset, then set for this process and
    its children), so the weights check takes it as a declared stand-in, not as a wrong file."""
    from imtrans.pretrained import STAND_IN_ENV

    folder = Path(os.environ.get(STAND_IN_ENV) or work)
    os.environ[STAND_IN_ENV] = str(folder)
    path = folder / "vgg19_random.pth"
    if not path.is_file():
        import torchvision

        folder.mkdir(parents=True, exist_ok=True)
        torch.save(torchvision.models.vgg19().state_dict(), path)
    return path


def bench_overrides(entry: Entry, size: int, batch: int, work: Path) -> list[str]:
    """The imtrans overrides of ``entry`` at ``size`` px and ``batch`` (data made under ``work``)."""
    o = list(entry.overrides)
    if entry.data in ("shapes", "shapes_paired"):
        o += [f"data={entry.data}", f"data.size={size}", "data.train_size=200"]
    elif entry.data == "cityscapes":  # label maps of the shared sample: width 2 x size
        o += [
            "data=cityscapes",
            f"data.root={SHARED_DATA / 'cityscapes_sample'}",
            f"data.load_size={2 * size}",
            f"loss.vgg.path={random_vgg19(work)}",
            "loss.vgg.download=false",
        ]
    elif entry.data == "domains":
        domains = ("cat", "dog", "wild") if entry.name == "stargan_v2" else ("a", "b", "c")
        from tests.methods.test_drit import make_domains

        root = work / f"domains_{size}"
        make_domains(root, domains, n=4, size=size + 8)
        o += [f"data.root={root}", f"data.load_size={size}", f"data.crop_size={size}"]
        o += [] if entry.name == "stargan_v2" else ["data=domains"]
    o += [f"data.batch_size={batch}", "data.num_workers=0", "data.num_fixed=1"]
    return o


def first_batch(entry: Entry, size: int, batch: int, work: Path, device: str = "cpu") -> dict:
    """The first training batch of imtrans's data module for ``entry``, on ``device``."""
    import hydra

    from experiments.benchlib import run_config

    cfg = run_config(bench_overrides(entry, size, batch, work), work / "run")
    data = hydra.utils.instantiate(cfg.data)
    data.setup("fit")
    b = next(iter(data.train_dataloader()))
    return _to(b, device)


def _to(obj, device):
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: _to(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to(v, device) for v in obj)
    return obj


def official_import(checkout: Path, *subdirs: str) -> None:
    """Put ``checkout`` (and its ``subdirs``, e.g. DRIT's ``src``) first on ``sys.path``."""
    checkout = Path(checkout).resolve()
    if not checkout.is_dir():
        raise FileNotFoundError(
            f"--official: {checkout} is not a folder (a checkout of the official repository)"
        )
    for p in [checkout, *(checkout / s for s in subdirs)][::-1]:
        sys.path.insert(0, str(p))


def build(entry: Entry, checkout: Path, batch: dict, *, size: int, device: str) -> OfficialStep:
    module = importlib.import_module(f"experiments.official.{entry.adapter}")
    return module.build(Path(checkout), batch, size=size, device=device)
