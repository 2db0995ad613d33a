"""Translation methods: ``base.TranslationModule`` and one file per method."""

from imtrans.methods.base import TranslationModule
from imtrans.methods.bicyclegan import BicycleGAN
from imtrans.methods.cut import CUT
from imtrans.methods.cyclegan import CycleGAN
from imtrans.methods.drit import DRIT
from imtrans.methods.drit_multi import DRITMulti
from imtrans.methods.munit import MUNIT
from imtrans.methods.pix2pix import Pix2Pix
from imtrans.methods.pix2pixhd import Pix2PixHD
from imtrans.methods.spade import SPADE
from imtrans.methods.stargan_v2 import StarGANv2
from imtrans.methods.ugatit import UGATIT
from imtrans.methods.unit import UNIT

__all__ = [
    "CUT",
    "DRIT",
    "MUNIT",
    "SPADE",
    "UGATIT",
    "UNIT",
    "BicycleGAN",
    "CycleGAN",
    "DRITMulti",
    "Pix2Pix",
    "Pix2PixHD",
    "StarGANv2",
    "TranslationModule",
]
