"""Shared pieces of the adapters for the junyanz-style repositories: junyanz/pytorch-CycleGAN-and-pix2pix
(``cyclegan``, ``pix2pix``), junyanz/BicycleGAN (``bicyclegan``) and
taesungp/contrastive-unpaired-translation (``cut``, ``fastcut``). The four share one design:
``options/{base,train}_options.py`` build an ``argparse`` namespace (the model class's
``modify_commandline_options`` adds its own options and defaults), ``models/<name>_model.py``
holds a ``BaseModel`` subclass built from it, and the loop body of ``train.py`` is
``model.set_input(data); model.optimize_parameters()``.

* :func:`import_checkout`: the checkout first on ``sys.path``; the top-level packages these
  repositories share names with (``models``, ``options``, ``util``, ``data``) are dropped from
  ``sys.modules`` when they were imported from elsewhere.
* :func:`train_options`: the official ``TrainOptions`` parsed from a command line, as
  ``BaseOptions.gather_options`` does it plus the ``gpu_ids`` step of ``BaseOptions.parse``
  (``print_options`` — writes ``<checkpoints_dir>/<name>/train_opt.txt`` — and
  ``torch.cuda.set_device`` are left out).
* :func:`official_cudnn`: ``BaseModel.__init__`` sets the process-wide
  ``torch.backends.cudnn.benchmark = True``; the adapters restore the caller's value after
  building and switch the official value on only while the official step runs, so that the
  imtrans iteration timed in the same process keeps its own setting.
* :func:`official_input`: imtrans's batch as the official ``set_input`` dict.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import sys
from pathlib import Path

import torch

from experiments.official import official_import

#: top-level packages of the junyanz-style checkouts (their names collide with other code)
PACKAGES = ("models", "options", "util", "data")


def import_checkout(checkout: Path) -> None:
    """Put ``checkout`` first on ``sys.path``, forgetting same-named packages imported from elsewhere."""
    checkout = Path(checkout).resolve()
    official_import(checkout)
    for name in list(sys.modules):
        top = name.split(".")[0]
        if top not in PACKAGES:
            continue
        file = getattr(sys.modules[name], "__file__", None) or ""
        if not Path(file).resolve().is_relative_to(checkout):
            del sys.modules[name]


def gpu_ids_arg(device: str) -> str:
    """``--gpu_ids`` for ``device``: ``-1`` on the CPU, the CUDA index otherwise."""
    dev = torch.device(device)
    if dev.type == "cpu":
        return "-1"
    if dev.type != "cuda":
        raise ValueError(f"the junyanz-style code runs on the CPU or CUDA, not {device!r}")
    return str(dev.index if dev.index is not None else torch.cuda.current_device())


def train_options(argv: list[str], *, dataset_setter: bool = True) -> argparse.Namespace:
    """The official training options for the command line ``train.py <argv>``.

    Mirrors ``BaseOptions.gather_options`` (parse the base options, let the model's
    ``modify_commandline_options`` add its options, then the dataset's) and the ``isTrain`` /
    ``gpu_ids`` lines of ``BaseOptions.parse``. ``sys.argv`` is set to that command line while
    parsing, because some ``modify_commandline_options`` re-parse ``sys.argv`` themselves (CUT's
    reads ``--CUT_mode`` that way). The dataset's option setter is skipped where the checkout
    has no module for the dataset mode (a checkout reduced to the model code); the aligned and
    unaligned datasets of these repositories add no options.
    """
    import data
    import models
    from options.train_options import TrainOptions

    options = TrainOptions()
    saved = sys.argv
    sys.argv = ["train.py", *argv]
    try:
        parser = argparse.ArgumentParser(formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        parser = options.initialize(parser)
        opt, _ = parser.parse_known_args(argv)
        parser = models.get_option_setter(opt.model)(parser, options.isTrain)
        opt, _ = parser.parse_known_args(argv)
        if dataset_setter and importlib.util.find_spec(f"data.{opt.dataset_mode}_dataset") is not None:
            parser = data.get_option_setter(opt.dataset_mode)(parser, options.isTrain)
        opt = parser.parse_args(argv)
    finally:
        sys.argv = saved
    opt.isTrain = options.isTrain
    opt.gpu_ids = [int(i) for i in opt.gpu_ids.split(",") if int(i) >= 0]
    return opt


@contextlib.contextmanager
def official_cudnn(benchmark: bool):
    """While the block runs, ``torch.backends.cudnn.benchmark`` is ``benchmark``."""
    saved = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = benchmark
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = saved


@contextlib.contextmanager
def building():
    """Build official models in this block: yields a dict that gets ``cudnn_benchmark``, the
    value the official constructors left, and restores the caller's value afterwards."""
    saved = torch.backends.cudnn.benchmark
    seen: dict = {}
    try:
        yield seen
    finally:
        seen["cudnn_benchmark"] = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = saved


def official_input(batch: dict) -> dict:
    """imtrans's batch as the ``set_input`` dict of these repositories (``A``, ``B``, ``A_paths``, ``B_paths``)."""
    n = batch["A"].shape[0]
    return {
        "A": batch["A"],
        "B": batch["B"],
        "A_paths": list(batch.get("A_path", [""] * n)),
        "B_paths": list(batch.get("B_path", [""] * n)),
    }


def unwrap(net: torch.nn.Module) -> torch.nn.Module:
    """The network inside ``torch.nn.DataParallel`` (``init_net`` wraps it when ``gpu_ids`` is set)."""
    return net.module if isinstance(net, torch.nn.DataParallel) else net


def synchronize(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def import_model(module: str, cls: str):
    """``models.<module>`` of the checkout on ``sys.path`` and its class ``cls``."""
    return getattr(importlib.import_module(f"models.{module}"), cls)


def shape_args(batch: dict, size: int, device: str, batch_size: int | None = None) -> list[str]:
    """The options every adapter passes: device, batch size, channels and image size of imtrans's batch."""
    n = batch_size or batch["A"].shape[0]
    return [
        "--gpu_ids", gpu_ids_arg(device), "--batch_size", str(n),
        "--input_nc", str(batch["A"].shape[1]), "--output_nc", str(batch["B"].shape[1]),
        "--load_size", str(size), "--crop_size", str(size),
    ]  # fmt: skip


def loop_step(model, benchmark: bool, device: str, data=official_input):
    """The body of ``train.py``'s loop: ``model.set_input(data(batch))``,
    ``model.optimize_parameters()``, with the official cudnn setting."""

    def step(batch: dict) -> None:
        with official_cudnn(benchmark):
            model.set_input(data(batch))
            model.optimize_parameters()
            synchronize(device)

    return step


def build_model(module: str, cls: str, argv: list[str]):
    """``(model, opt, cudnn_benchmark)``: ``models.<module>.<cls>`` built from the official
    options of ``train.py <argv>``, with the cudnn setting its constructor chose."""
    opt = train_options(argv)
    Model = import_model(module, cls)
    with building() as built:
        model = Model(opt)
    return model, opt, built["cudnn_benchmark"]
