"""Quality and diversity metrics, measured one way for every method (DESIGN.md, "Metrics").

- :mod:`~imtrans.metrics.protocols`: the named protocols (``munit``, ``bicyclegan``,
  ``stargan_v2``, ``cut``, ``quick``) and the record written next to every number;
- :mod:`~imtrans.metrics.evaluator`: the engine (FID, KID, LPIPS diversity, paired PSNR / SSIM /
  LPIPS, shapes scores), identical on one process or many;
- :mod:`~imtrans.metrics.networks`: torch-fidelity's Inception and LPIPS-alex, from local files;
- :mod:`~imtrans.metrics.weights`: where those files are found, and the notice when they are not;
- :mod:`~imtrans.metrics.core`: the torchmetrics states and the FID / KID formulas;
- :mod:`~imtrans.metrics.shapes`: exact scores on the shapes data set (no pretrained network).

The Lightning side is :class:`imtrans.callbacks.Evaluation`; the command line is
``python -m imtrans.evaluate``.
"""

from imtrans.metrics.core import FeatureBank, Mean64, fid_from_features, kid_from_features
from imtrans.metrics.evaluator import Evaluator, module_inputs, module_sampler
from imtrans.metrics.protocols import PROTOCOLS, Protocol, get_protocol, sample_pairs
from imtrans.metrics.weights import ALEXNET, INCEPTION, missing_notice, resolve_weights

__all__ = [
    "ALEXNET",
    "INCEPTION",
    "PROTOCOLS",
    "Evaluator",
    "FeatureBank",
    "Mean64",
    "Protocol",
    "fid_from_features",
    "get_protocol",
    "kid_from_features",
    "missing_notice",
    "module_inputs",
    "module_sampler",
    "resolve_weights",
    "sample_pairs",
]
