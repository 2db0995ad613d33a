"""imtrans's reflection and replication pads: torch's values, padded in the input's dtype under
CPU autocast (where torch's own modules pad in float32 and make every conv cast back)."""

from __future__ import annotations

import hydra
import pytest
import torch
from torch import nn

from imtrans.nets.blocks import ReflectionPad2d, ReplicationPad2d
from tests.helpers import METHODS, compose_config, method_overrides


@pytest.mark.parametrize(
    ("ours", "theirs"), [(ReflectionPad2d, nn.ReflectionPad2d), (ReplicationPad2d, nn.ReplicationPad2d)]
)
def test_pad_keeps_the_input_dtype_under_autocast_with_torchs_values(ours, theirs):
    x = torch.randn(1, 4, 9, 7).bfloat16().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mine, ref = ours((1, 2, 3, 1))(x), theirs((1, 2, 3, 1))(x)
    assert ref.dtype == torch.float32  # torch's module under CPU autocast: what this avoids
    assert mine.dtype == torch.bfloat16
    assert torch.equal(mine.float(), ref)
    g = torch.randn(mine.shape).bfloat16()
    (gx,) = torch.autograd.grad(mine, x, g)
    (gx_ref,) = torch.autograd.grad(ref, x, g.float())
    # The backward sums the gradients of an element and of its copies in bf16, as CUDA
    # autocast does, where torch's CPU path sums in float32 and rounds once: they differ by
    # a few bf16 roundings of the terms (up to 4 terms at a corner).
    torch.testing.assert_close(gx.float(), gx_ref.float(), rtol=0, atol=4 * 2**-8 * g.abs().max().item())
    # without autocast: torch's module exactly
    y = torch.randn(2, 3, 8, 8)
    assert torch.equal(ours(2)(y), theirs(2)(y))


@pytest.mark.parametrize("method", METHODS)
def test_every_method_pads_with_imtrans_pads(method, tmp_path):
    module = hydra.utils.instantiate(compose_config(method_overrides(method, tmp_path, 1)).model)
    pads = [m for m in module.modules() if isinstance(m, (nn.ReflectionPad2d, nn.ReplicationPad2d))]
    assert all(isinstance(m, (ReflectionPad2d, ReplicationPad2d)) for m in pads), method
