"""Data sets and LightningDataModules for image-to-image translation.

Images are float32 tensors C x H x W in [-1, 1] (RGB, or 1 channel when ``nc=1``); label and
instance maps are int64 H x W. Batches are dicts (see :mod:`imtrans.data.datasets`). Every
unreadable or inconsistent input raises :class:`DataError` with a one-line message that starts
with the offending path. File reading rules: :mod:`imtrans.data.io`.
"""

from .datamodules import (
    DomainsDataModule,
    LabelDataModule,
    PairedDataModule,
    ShapesDataModule,
    TranslationDataModule,
    UnpairedDataModule,
)
from .datasets import DomainsDataset, LabelDataset, PairedDataset, SideBySideDataset, UnpairedDataset
from .errors import DataError
from .shapes import ShapesDataset
from .transforms import PREPROCESS_MODES, SpatialTransform

__all__ = [
    "DataError",
    "DomainsDataModule",
    "DomainsDataset",
    "LabelDataModule",
    "LabelDataset",
    "PREPROCESS_MODES",
    "PairedDataModule",
    "PairedDataset",
    "ShapesDataModule",
    "ShapesDataset",
    "SideBySideDataset",
    "SpatialTransform",
    "TranslationDataModule",
    "UnpairedDataModule",
    "UnpairedDataset",
]
