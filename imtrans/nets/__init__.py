"""Shared network building blocks and the generators/discriminators built from them."""

from imtrans.nets.discriminators import NLayerDiscriminator
from imtrans.nets.generators import ResnetGenerator, UnetGenerator
from imtrans.nets.init import init_weights

__all__ = ["NLayerDiscriminator", "ResnetGenerator", "UnetGenerator", "init_weights"]
