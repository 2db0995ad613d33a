"""Shared network building blocks and the generators/discriminators built from them."""

from imtrans.nets.cut import (
    BlurDownsample,
    BlurUpsample,
    CutPatchDiscriminator,
    CutResnetGenerator,
    PatchSampleF,
)
from imtrans.nets.discriminators import MultiScalePatchGAN, NLayerDiscriminator
from imtrans.nets.drit import ContentDis, ContentEncoder, MultiScaleDis, drit_init
from imtrans.nets.encoders import ResnetEncoder
from imtrans.nets.generators import ResnetGenerator, UnetGenerator, UnetZGenerator
from imtrans.nets.init import init_weights
from imtrans.nets.munit import (
    AdaINGen,
    AdaptiveInstanceNorm2d,
    MsImageDis,
    MunitLayerNorm,
    VAEGen,
    assign_adain_params,
)
from imtrans.nets.pix2pixhd import (
    FeatureEncoder,
    GlobalGenerator,
    LocalEnhancer,
    MultiscaleDiscriminator,
    PatchDiscriminator,
    instance_edges,
    instance_mean,
)
from imtrans.nets.spade import (
    SPADE,
    SPADEEncoder,
    SPADEGenerator,
    SPADEMultiscaleDiscriminator,
    SPADEPatchDiscriminator,
    SPADEResnetBlock,
    semantic_map,
)
from imtrans.nets.stargan_v2 import (
    StarGANv2Discriminator,
    StarGANv2Generator,
    StarGANv2MappingNetwork,
    StarGANv2StyleEncoder,
)
from imtrans.nets.ugatit import ILN, AdaLIN, UgatitDiscriminator, UgatitGenerator, clamp_rho

__all__ = [
    "BlurDownsample",
    "BlurUpsample",
    "CutPatchDiscriminator",
    "CutResnetGenerator",
    "PatchSampleF",
    "ContentDis",
    "ContentEncoder",
    "MultiScaleDis",
    "drit_init",
    "MultiScalePatchGAN",
    "ResnetEncoder",
    "UnetZGenerator",
    "NLayerDiscriminator",
    "ResnetGenerator",
    "UnetGenerator",
    "init_weights",
    "AdaINGen",
    "AdaptiveInstanceNorm2d",
    "MsImageDis",
    "MunitLayerNorm",
    "VAEGen",
    "assign_adain_params",
    "FeatureEncoder",
    "GlobalGenerator",
    "LocalEnhancer",
    "MultiscaleDiscriminator",
    "PatchDiscriminator",
    "instance_edges",
    "instance_mean",
    "AdaLIN",
    "ILN",
    "UgatitDiscriminator",
    "UgatitGenerator",
    "clamp_rho",
    "SPADE",
    "SPADEEncoder",
    "SPADEGenerator",
    "SPADEMultiscaleDiscriminator",
    "SPADEPatchDiscriminator",
    "SPADEResnetBlock",
    "semantic_map",
    "StarGANv2Discriminator",
    "StarGANv2Generator",
    "StarGANv2MappingNetwork",
    "StarGANv2StyleEncoder",
]
