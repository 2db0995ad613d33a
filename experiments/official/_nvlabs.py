"""Shared pieces of the MUNIT / UNIT adapters (NVlabs/MUNIT ``trainer.py``), and the CPU shims
that the DRIT, MDMM and pix2pixHD adapters use too.

* :func:`cuda_calls_on_cpu`: the official code of these repositories calls ``.cuda()``
  unconditionally (``torch.randn(...).cuda()`` in ``MUNIT_Trainer``, ``.cuda(x.get_device())`` in
  ``VAEGen.encode``, ``Vgg19().cuda()`` and ``torch.cuda.FloatTensor(...)`` in pix2pixHD, ...).
  On the CPU only, and only while official code runs, ``Tensor.cuda`` / ``Module.cuda`` return
  their object unchanged and ``torch.cuda.FloatTensor`` / ``ByteTensor`` are the CPU
  constructors; on a GPU nothing is patched.
* :func:`stub_module`: import-only stand-ins for names the official code imports but the
  benchmarked path never calls (e.g. ``torch.utils.serialization.load_lua``, removed from PyTorch).
* :func:`build_trainer`: ``MUNIT_Trainer`` / ``UNIT_Trainer`` from a checkout, one iteration of
  the body of the official ``train.py`` loop.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import types
from pathlib import Path

import torch
import yaml
from torch import nn

from experiments.official import OfficialStep, official_import


@contextlib.contextmanager
def cuda_calls_on_cpu(device: str):
    """While the block runs, make the official code's hard-coded CUDA calls no-ops on the CPU."""
    if torch.device(device).type != "cpu":
        yield
        return
    saved = (torch.Tensor.cuda, nn.Module.cuda, torch.cuda.FloatTensor, torch.cuda.ByteTensor)
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    nn.Module.cuda = lambda self, *args, **kwargs: self
    torch.cuda.FloatTensor, torch.cuda.ByteTensor = torch.FloatTensor, torch.ByteTensor
    try:
        yield
    finally:
        torch.Tensor.cuda, nn.Module.cuda, torch.cuda.FloatTensor, torch.cuda.ByteTensor = saved


def stub_module(name: str, **attrs) -> bool:
    """Make ``from name import <attrs>`` work: an import-only stand-in module when ``name`` does
    not import, else the missing ``attrs`` added to it. True if anything was installed."""
    try:
        module = importlib.import_module(name)
    except ImportError:
        module = types.ModuleType(name)
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(importlib.import_module(parent), child, module)
        module.__dict__.update(attrs)
        return True
    missing = {k: v for k, v in attrs.items() if not hasattr(module, k)}
    for k, v in missing.items():
        setattr(module, k, v)
    return bool(missing)


def _unavailable(what: str):
    def call(*args, **kwargs):
        raise RuntimeError(f"{what} is an import-only stand-in of the benchmark adapter")

    return call


def read_yaml(path: Path) -> dict:
    # The official utils.get_config calls yaml.load(stream) without a Loader, which PyYAML >= 6
    # rejects; safe_load reads the same plain mapping.
    with open(path) as f:
        return yaml.safe_load(f)


def build_trainer(
    checkout: Path, kind: str, config: dict, *, device: str, notes: list[str]
) -> tuple[nn.Module, OfficialStep]:
    """``MUNIT_Trainer(config)`` or ``UNIT_Trainer(config)`` (``kind``) on ``device``, and the step."""
    official_import(checkout)
    # utils.py: `from torch.utils.serialization import load_lua` (removed from PyTorch in 1.0);
    # only load_vgg16 uses it, i.e. only with vgg_w > 0, which these configs never set.
    if stub_module("torch.utils.serialization", load_lua=_unavailable("torch.utils.serialization.load_lua")):
        notes.append("torch.utils.serialization.load_lua: import-only stand-in (used only with vgg_w > 0)")
    if config.get("vgg_w", 0) > 0:
        raise ValueError("vgg_w > 0 needs the Lua VGG16 weights of the official load_vgg16; not supported")
    import trainer as official_trainer  # the checkout's trainer.py

    cls = {"MUNIT": official_trainer.MUNIT_Trainer, "UNIT": official_trainer.UNIT_Trainer}[kind]
    with cuda_calls_on_cpu(device):
        model = cls(config)
    model.to(device)  # train.py: trainer.cuda()
    if torch.device(device).type == "cpu":
        notes.append("CPU: Tensor.cuda / Module.cuda are no-ops while official code runs")
    sync = torch.device(device).type == "cuda"

    def step(batch: dict) -> None:
        # train.py:58-64, one iteration of the loop body (update_learning_rate, logging, image
        # writing and snapshots are outside the iteration and left out)
        images_a, images_b = batch["A"].detach(), batch["B"].detach()
        with cuda_calls_on_cpu(device):
            model.dis_update(images_a, images_b, config)
            model.gen_update(images_a, images_b, config)
        if sync:
            torch.cuda.synchronize()

    networks = {name: getattr(model, name) for name in ("gen_a", "gen_b", "dis_a", "dis_b")}
    return model, OfficialStep(step=step, networks=networks, notes="; ".join(notes))
