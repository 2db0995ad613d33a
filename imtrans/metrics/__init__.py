"""Quality and diversity metrics, measured one way for every method (README.md, "Evaluation").

- :mod:`~imtrans.metrics.protocols`: the named protocols (``munit``, ``bicyclegan``,
  ``stargan_v2``, ``cut``, ``quick``) and the record written next to every number;
- :mod:`~imtrans.metrics.lineages`: the FID lineages (``fid_impl``: ``torch_fidelity``,
  ``pytorch_fid``, ``clean``, ``stargan_v2``), each the network, weights and image path of the
  code whose FID and KID it reproduces;
- :mod:`~imtrans.metrics.evaluator`: the engine (FID, KID, LPIPS diversity, paired PSNR / SSIM /
  LPIPS, shapes scores), identical on one process or many;
- :mod:`~imtrans.metrics.networks`: torch-fidelity's Inception, torchvision's ImageNet Inception-v3
  (the ``stargan_v2`` protocol's FID) and LPIPS-alex, from local files (pytorch-fid's and
  clean-fid's Inception are in :mod:`~imtrans.metrics.lineages`);
- :mod:`~imtrans.metrics.weights`: where those files are found, and the notice when they are not;
- :mod:`~imtrans.metrics.core`: the torchmetrics states and the FID / KID formulas;
- :mod:`~imtrans.metrics.shapes`: exact scores on the shapes data set (no pretrained network).

The Lightning side is :class:`imtrans.callbacks.Evaluation`; the command line is
``python -m imtrans.evaluate``.
"""

from imtrans.metrics.core import FeatureBank, Mean64, fid_from_features, kid_from_features
from imtrans.metrics.evaluator import (
    Evaluator,
    evaluate_domain_tasks,
    module_domain_sampler,
    module_inputs,
    module_sampler,
)
from imtrans.metrics.lineages import FID_IMPLS, fid_impl_of
from imtrans.metrics.protocols import PROTOCOLS, Protocol, get_protocol, sample_pairs
from imtrans.metrics.weights import ALEXNET, INCEPTION, TORCHVISION_INCEPTION, missing_notice, resolve_weights

__all__ = [
    "ALEXNET",
    "FID_IMPLS",
    "INCEPTION",
    "PROTOCOLS",
    "TORCHVISION_INCEPTION",
    "Evaluator",
    "FeatureBank",
    "Mean64",
    "Protocol",
    "evaluate_domain_tasks",
    "fid_from_features",
    "fid_impl_of",
    "get_protocol",
    "kid_from_features",
    "missing_notice",
    "module_domain_sampler",
    "module_inputs",
    "module_sampler",
    "resolve_weights",
    "sample_pairs",
]
