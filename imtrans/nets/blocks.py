"""Building blocks configured by words.

Every generator and discriminator in imtrans is assembled from these few blocks so that
"norm: instance" or "pad: reflect" in a config means the same thing everywhere.

Conventions: tensors are N x C x H x W; images inside imtrans are in [-1, 1].
"""

from __future__ import annotations

import functools

import torch
from torch import nn


def _contiguous(grad: torch.Tensor) -> torch.Tensor:
    return grad.contiguous()


def instance_norm_input_grad_fix(y: torch.Tensor) -> torch.Tensor:
    """``y`` (an instance norm's output) unchanged, its gradient made contiguous on the way
    back.

    Why: torch's CPU instance norm backward (2.14.1, the pinned build; every dtype) returns a
    wrong input gradient for a batch of one when the gradient it receives is not contiguous,
    e.g. channels-last strided: off by about its own size, where a contiguous gradient agrees
    with the analytic formula to 1e-7 (``tests/nets/test_instance_norm.py``). Such gradients
    reach an instance norm whenever its output (or a sum that it feeds) is read through a
    permute: CUT's PatchSampleF reads the generator's features as N x HW x C, and every conv's
    input gradient is channels-last under ``trainer.channels_last``. The official CUT code
    on the CPU gets the wrong gradients. A tensor hook, so that in-place ReLUs after the norm
    stay legal; it fires with the gradient of the norm's output before them.
    """
    if y.requires_grad and y.device.type == "cpu":
        y.register_hook(_contiguous)
    return y


class InstanceNorm2d(nn.InstanceNorm2d):
    """``nn.InstanceNorm2d`` (same arguments, parameters and state-dict keys) with
    ``instance_norm_input_grad_fix``: every instance norm of imtrans's networks is this one."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return instance_norm_input_grad_fix(super().forward(x))


def treats_samples_independently(module: nn.Module) -> bool:
    """Whether ``module`` computes each sample of a batch without looking at the others and
    without random numbers: no batch norm that normalises with batch statistics (in training
    mode, or without running statistics), no active dropout. Then two calls on two inputs equal
    one call on their concatenation, sample by sample (up to the float summation order), so a
    method may batch such calls."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and (m.training or not m.track_running_stats):
            return False
        if isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0 and m.training:
            return False
    return True


class _PadInInputDtype:
    """Mixin for the padding modules: pad in the input's dtype under autocast too.

    Why: CPU autocast runs ``reflection_pad2d`` and ``replication_pad2d`` in float32, so under
    ``bf16-mixed`` every pad before a conv cast its bf16 input up and the conv cast the padded
    result back down, forward and backward: in CycleGAN, MUNIT, DRIT and U-GAT-IT that is one
    activation-sized round trip per conv. Padding copies values, so the padded tensor is the
    same as float32 padding followed by the conv's cast (CUDA autocast pads in the input's
    dtype already). The backward sums an element's gradient and its copies' in that dtype, as
    on CUDA (a few bf16 roundings from the float32 sum). Same arguments and (no) parameters as
    the torch module.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return super().forward(x)


class ReflectionPad2d(_PadInInputDtype, nn.ReflectionPad2d):
    """``nn.ReflectionPad2d`` that pads in the input's dtype under autocast (``_PadInInputDtype``);
    every reflection pad of imtrans's networks is this one."""


class ReplicationPad2d(_PadInInputDtype, nn.ReplicationPad2d):
    """``nn.ReplicationPad2d`` that pads in the input's dtype under autocast (``_PadInInputDtype``)."""


def norm_layer(word: str, channels: int) -> nn.Module:
    """Normalisation layer for a config word.

    - ``batch``: BatchNorm2d with affine parameters and running statistics (pix2pix).
    - ``instance``: InstanceNorm2d without affine parameters or running statistics
      (CycleGAN, MUNIT content encoder).
    - ``none``: identity.
    """
    if word == "batch":
        return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    if word == "instance":
        return InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if word == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {word!r}; choose batch, instance or none")


def uses_bias(norm: str) -> bool:
    """Whether a conv followed by ``norm`` carries a bias.

    Follows junyanz's code: BatchNorm has its own shift, so the conv before it is
    bias-free; InstanceNorm without affine does not, so convs keep their bias. This is
    what makes the CycleGAN and pix2pix parameter counts differ.
    """
    return norm != "batch"


def activation(word: str) -> nn.Module:
    """Activation for a config word: relu, lrelu (slope 0.2), tanh, none."""
    table = {
        "relu": functools.partial(nn.ReLU, inplace=True),
        "lrelu": functools.partial(nn.LeakyReLU, 0.2, inplace=True),
        "tanh": nn.Tanh,
        "none": nn.Identity,
    }
    if word not in table:
        raise ValueError(f"unknown activation {word!r}; choose one of {sorted(table)}")
    return table[word]()


def padding_layer(word: str, amount: int) -> tuple[list[nn.Module], int]:
    """Explicit padding for ``reflect``/``replicate``, or the conv's own zero padding.

    Returns the layers to put before the conv and the ``padding`` to give the conv.
    """
    if amount == 0:
        return [], 0
    if word == "reflect":
        return [ReflectionPad2d(amount)], 0
    if word == "replicate":
        return [ReplicationPad2d(amount)], 0
    if word == "zero":
        return [], amount
    raise ValueError(f"unknown padding {word!r}; choose reflect, replicate or zero")


class ConvBlock(nn.Sequential):
    """pad -> conv -> norm -> activation.

    Args:
        in_ch, out_ch: channels.
        kernel, stride, padding: of the convolution; ``pad`` says how padding is done.
        norm: ``batch``/``instance``/``none``; also decides the conv bias (see ``uses_bias``)
            unless ``bias`` is given.
        act: activation word.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int,
        stride: int = 1,
        padding: int = 0,
        *,
        norm: str = "none",
        act: str = "none",
        pad: str = "zero",
        bias: bool | None = None,
    ):
        pad_layers, conv_pad = padding_layer(pad, padding)
        bias = uses_bias(norm) if bias is None else bias
        super().__init__(
            *pad_layers,
            nn.Conv2d(in_ch, out_ch, kernel, stride, conv_pad, bias=bias),
            norm_layer(norm, out_ch),
            activation(act),
        )


class UpConvBlock(nn.Sequential):
    """Transposed conv (stride 2, doubles H and W) -> norm -> activation."""

    def __init__(self, in_ch: int, out_ch: int, *, norm: str, act: str = "relu", kernel: int = 3):
        # kernel 3 with padding 1 needs output_padding 1 to double exactly (CycleGAN);
        # kernel 4 with padding 1 doubles on its own (U-Net).
        padding, output_padding = (1, 1) if kernel == 3 else (1, 0)
        super().__init__(
            nn.ConvTranspose2d(
                in_ch, out_ch, kernel, 2, padding, output_padding=output_padding, bias=uses_bias(norm)
            ),
            norm_layer(norm, out_ch),
            activation(act),
        )


class ResBlock(nn.Module):
    """Residual block: x + [pad-conv3x3-norm-act, pad-conv3x3-norm](x), channels kept.

    ``dropout`` > 0 inserts Dropout between the two convs (CycleGAN's ``use_dropout``).
    """

    def __init__(
        self, channels: int, *, norm: str, act: str = "relu", pad: str = "reflect", dropout: float = 0.0
    ):
        super().__init__()
        layers: list[nn.Module] = [ConvBlock(channels, channels, 3, 1, 1, norm=norm, act=act, pad=pad)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers.append(ConvBlock(channels, channels, 3, 1, 1, norm=norm, act="none", pad=pad))
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.body(x)
