"""Named evaluation protocols: every choice that changes a published number, fixed and recorded.

A protocol fixes the inputs (which split, how many: the first ``num_inputs`` items, in order),
the samples per input and how they are paired for LPIPS diversity, how many of those samples
enter FID/KID, the reference images of FID/KID (split, count), the image size and resize
filter, and the networks and weights (``fid_impl``: the FID lineage, i.e. the code whose FID and
KID are reproduced, :data:`~imtrans.metrics.lineages.FID_IMPLS`). :meth:`Protocol.record` is the
dict written next to every number (``metrics.json``, the W&B summary, ``imtrans.evaluate``'s JSON).

Each paper's protocol takes the lineage of the paper's own code (see the comments in
:data:`PROTOCOLS`); ``metrics.fid_impl=...`` (or ``+metrics.overrides.fid_impl=...``) scores with
another, recorded as an override. Records and overrides written before ``fid_impl`` name the
feature network instead (``fid_features: torch_fidelity_inception`` or
``torchvision_inception_v3``): they are read as the lineage they mean.

Multi-domain methods on folder-per-domain data (``data=domains``) are scored per task, one task
per (source, target) pair of domains, in each of the protocol's ``modes`` (``latent``: the
method's own style codes; ``reference``: styles taken from images of the target domain), then
averaged over the tasks (StarGAN v2's protocol; see :meth:`Evaluator.evaluate_domains
<imtrans.metrics.evaluator.Evaluator.evaluate_domains>`).

During fit the evaluated split and a ``test`` reference split are replaced by
``fit_split`` (``val``): model selection never looks at the test split.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from imtrans.errors import ConfigError
from imtrans.metrics.lineages import FID_IMPLS, LEGACY_FID_FEATURES, lineage_record
from imtrans.metrics.weights import ALEXNET

PAIRINGS = ("disjoint", "consecutive", "all", "none")
MODES = ("latent", "reference")
LPIPS_INPUTS = ("uint8", "float")
IMAGE_SOURCES = ("dataset", "files")


def sample_pairs(num_samples: int, pairing: str) -> list[tuple[int, int]]:
    """Index pairs (p, q) of the samples of one input whose LPIPS distances are averaged.

    ``disjoint``: (0, 1), (2, 3), ... (independent pairs; S must be even);
    ``consecutive``: (0, 1), (1, 2), ..., (S-2, S-1); ``all``: every p < q; ``none``: no pairs.
    """
    if pairing == "disjoint":
        if num_samples % 2:
            raise ValueError(f"pairing 'disjoint' needs an even number of samples, got {num_samples}")
        return [(k, k + 1) for k in range(0, num_samples, 2)]
    if pairing == "consecutive":
        return [(k, k + 1) for k in range(num_samples - 1)]
    if pairing == "all":
        return [(p, q) for p in range(num_samples) for q in range(p + 1, num_samples)]
    if pairing == "none":
        return []
    raise ValueError(f"pairing must be one of {', '.join(PAIRINGS)}, got {pairing!r}")


@dataclass(frozen=True)
class Protocol:
    """One evaluation protocol (see the module docstring). Fields are part of the record."""

    name: str
    description: str
    #: inputs: the first ``num_inputs`` items of ``input_split``; None = all of them.
    num_inputs: int | None
    #: outputs per input (sampled styles); deterministic methods produce one.
    samples_per_input: int
    #: LPIPS-diversity pairs among the samples of one input (:func:`sample_pairs`).
    pairing: str
    #: how many of each input's samples enter FID/KID (the first ones).
    fid_samples_per_input: int = 1
    input_split: str = "test"
    #: FID/KID reference: the target domain's images of this split ...
    reference_split: str = "test"
    #: ... the first ``num_reference`` of them; None = all.
    num_reference: int | None = None
    #: outputs and references are resized to image_size x image_size (None: as produced).
    image_size: int | None = None
    resize_filter: str = "bilinear-antialias"
    #: the FID lineage (a key of :data:`~imtrans.metrics.lineages.FID_IMPLS`): the network, its
    #: weights and the image path of the code whose FID and KID are reproduced.
    fid_impl: str = "torch_fidelity"
    #: LPIPS on the quantized images (``uint8``) or on the generator's float outputs (``float``,
    #: at ``image_size``, neither clamped nor rounded: StarGAN v2 measures before saving).
    lpips_input: str = "uint8"
    #: the images read as the data set gives them (``dataset``) or from their files, resized to
    #: ``image_size`` by ``resize_filter`` (``files``): for multi-domain tasks the inputs,
    #: references and FID reals (StarGAN v2's eval loader), for two-domain data the FID/KID
    #: reference images (``python -m pytorch_fid testB fake_B`` reads the folder). Without an
    #: ``image_size``, or for items without a file, the data set's images.
    image_source: str = "dataset"
    #: multi-domain tasks: the guidance modes scored (``latent``, ``reference``).
    modes: tuple[str, ...] = ("latent", "reference")
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    kid_seed: int = 2020
    #: seeds the style codes and any sampling noise of the generator.
    seed: int = 0
    #: fields changed from the named protocol (recorded, never silent).
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.samples_per_input < 1:
            raise ValueError(f"protocol {self.name}: samples_per_input must be >= 1")
        if not 1 <= self.fid_samples_per_input <= self.samples_per_input:
            raise ValueError(f"protocol {self.name}: fid_samples_per_input must be in 1..samples_per_input")
        sample_pairs(self.samples_per_input, self.pairing)  # validates the pairing
        if self.resize_filter not in RESIZE_FILTERS:
            raise ValueError(
                f"protocol {self.name}: resize_filter must be one of {', '.join(RESIZE_FILTERS)}"
            )
        if self.fid_impl not in FID_IMPLS:
            raise ConfigError(
                f"metrics.fid_impl={self.fid_impl}: not a FID lineage (protocol {self.name}); "
                f"use one of {', '.join(FID_IMPLS)}"
            )
        if self.lpips_input not in LPIPS_INPUTS:
            raise ValueError(f"protocol {self.name}: lpips_input must be one of {', '.join(LPIPS_INPUTS)}")
        if self.image_source not in IMAGE_SOURCES:
            raise ValueError(f"protocol {self.name}: image_source must be one of {', '.join(IMAGE_SOURCES)}")
        object.__setattr__(self, "modes", tuple(self.modes))  # a list from a config override
        if not self.modes or set(self.modes) - set(MODES):
            raise ValueError(f"protocol {self.name}: modes are one or more of {', '.join(MODES)}")
        for split in (self.input_split, self.reference_split):
            if split not in ("train", "val", "test"):
                raise ValueError(f"protocol {self.name}: splits are train, val or test, got {split!r}")

    @property
    def pairs(self) -> list[tuple[int, int]]:
        return sample_pairs(self.samples_per_input, self.pairing)

    def splits(self, stage: str, fit_split: str = "val") -> tuple[str, str]:
        """(input split, reference split) evaluated at ``stage`` (``val`` during fit, ``test``)."""
        if stage == "test":
            return self.input_split, self.reference_split
        ref = fit_split if self.reference_split == "test" else self.reference_split
        return fit_split, ref

    @property
    def fid_weights_key(self) -> str:
        """The key (in ``imtrans.metrics.weights.WEIGHTS``) of the FID/KID network's weights."""
        return FID_IMPLS[self.fid_impl].weights.key

    @property
    def fid_features(self) -> str:
        """The lineage's network under the name records used before ``fid_impl`` (derived, read-only)."""
        return FID_IMPLS[self.fid_impl].features

    def record(self) -> dict[str, Any]:
        """Everything that defines the numbers, as a JSON-able dict."""
        lpips_input = (
            "[-1, 1] RGB at image_size, no further resize"
            if self.lpips_input == "uint8"
            else "the generator's float outputs at image_size (resized in float if needed), neither "
            "clamped nor quantized"
        )
        return {
            "name": self.name,
            "description": self.description,
            "inputs": self.num_inputs if self.num_inputs is not None else "all",
            "input_split": self.input_split,
            "samples_per_input": self.samples_per_input,
            "pairing": self.pairing,
            "pairs_per_input": len(self.pairs),
            "fid_samples_per_input": self.fid_samples_per_input,
            "reference": {
                "split": self.reference_split,
                "domain": "target",
                "count": self.num_reference if self.num_reference is not None else "all",
                "images": "read from their files (RGB), resized to image_size by resize_filter (the "
                "data set's when some item has no file)"
                if self.image_source == "files" and self.image_size is not None
                else "the data set's (its transform for the split)",
            },
            "image_size": self.image_size if self.image_size is not None else "as produced",
            "resize_filter": RESIZE_FILTERS[self.resize_filter],
            "quantization": "uint8, rounded as when written to PNG, before every metric"
            + ("" if self.lpips_input == "uint8" else " but LPIPS"),
            "fid_impl": self.fid_impl,
            # the network's name as records before fid_impl gave it (metrics.json's fid_features)
            "fid_features": self.fid_features,
            "fid": {
                **lineage_record(self.fid_impl),
                "statistics": "float64 mean and covariance (ddof 1); tr sqrt(s1 s2) from the singular values "
                "of Xc1 Xc2^T (fewer images than dimensions) or the eigenvalues of s1 s2",
            },
            "kid": {
                "features": "as fid",
                "subsets": self.kid_subsets,
                "subset_size": f"min({self.kid_subset_size}, number of fakes, number of references)",
                "kernel": "polynomial, degree 3, gamma 1/d, coef0 1",
                "estimator": "unbiased MMD^2 (torch-fidelity; clean-fid's is the same)",
                "subset_rng": f"numpy RandomState({self.kid_seed})",
            },
            "lpips": {
                "network": "alex",
                "version": "0.1",
                "backbone_weights": ALEXNET.filename,
                "heads": "LPIPS v0.1 linear heads (as shipped with lpips / torchmetrics)",
                "input": lpips_input,
            },
            "multi_domain": {
                "tasks": "every (source, target) pair of distinct domains; inputs: the source domain's "
                "images of input_split; FID/KID reference: the target domain's images of reference_split",
                "modes": list(self.modes),
                "latent": "the method's own style codes (translate(x, target_domain=t, num_samples=S)), "
                "random state seeded per block of inputs",
                "reference": "sample k of input i takes its style from one image of the target domain of "
                "input_split, in a seeded random order, cycled (translate(x, target_domain=t, reference=r))",
                "mean": "scores averaged over the tasks with equal weight (<mode>/mean/<score>)",
                "image_source": self.image_source
                + (
                    ": inputs, references and FID reals read from their files (RGB) and resized to "
                    "image_size by resize_filter"
                    if self.image_source == "files" and self.image_size is not None
                    else ": the data set's images"
                ),
            },
            "paired": {
                "psnr_8bit": "per image on [0, 1] (data range 1), then the mean",
                "ssim": "per image, gaussian window 11, sigma 1.5, data range 1, then the mean",
                "lpips_gt": "LPIPS (as above) between the first sample and the target",
            },
            "shapes": {
                "content_iou": "IoU of {pixels > 60 (RGB L2, 0-255) from the median border colour} "
                "with the input layout's filled mask; first sample; mean over inputs",
                "style_div_fg/bg": "mean colour inside/outside the known mask per sample; mean "
                "pairwise L2 over all pairs of an input's samples; mean over inputs",
                "outline_iou": "IoU of {mean RGB < 128} with the layout's outline dilated by 1 px (b2a)",
            },
            "style_codes": "N(0, I) per (input, sample) from the protocol seed when the method "
            "exposes style_dim; otherwise generator noise seeded per block of inputs",
            "seed": self.seed,
            "overrides": dict(self.overrides),
        }

    def with_overrides(self, overrides: Mapping[str, Any] | None) -> Protocol:
        """A copy with ``overrides`` applied and recorded (``fid_features``, the name before
        ``fid_impl``, is read as the lineage it names)."""
        overrides = dict(overrides or {})
        if "fid_features" in overrides:
            old = overrides.pop("fid_features")
            if old not in LEGACY_FID_FEATURES:
                raise ConfigError(
                    f"metrics.overrides.fid_features={old}: not a FID feature network; use "
                    f"metrics.fid_impl=<{'|'.join(FID_IMPLS)}>"
                )
            overrides.setdefault("fid_impl", LEGACY_FID_FEATURES[old])
        if not overrides:
            return self
        known = {f.name for f in dataclasses.fields(self)} - {"name", "description", "overrides"}
        unknown = set(overrides) - known
        if unknown:
            raise KeyError(
                f"metrics.overrides: unknown protocol fields {sorted(unknown)}; known: {sorted(known)}"
            )
        return dataclasses.replace(self, **overrides, overrides={**self.overrides, **overrides})


RESIZE_FILTERS = {
    "bilinear-antialias": "torch.nn.functional.interpolate bilinear, antialias=True, align_corners=False "
    "(PIL's BILINEAR), in float before quantization",
    "bicubic-antialias": "torch.nn.functional.interpolate bicubic, antialias=True, align_corners=False "
    "(PIL's BICUBIC), in float before quantization",
    "pil-bilinear": "PIL BILINEAR on the uint8 image (torchvision.transforms.Resize of a PIL image), "
    "after quantization; float outputs for LPIPS: torch bilinear, antialias=True",
}

#: The named protocols. Each paper's takes the FID lineage (``fid_impl``) of the paper's own code;
#: where the paper reports no FID, imtrans's default (torch-fidelity) is used.
PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        # MUNIT's paper reports LPIPS diversity, IS/CIS and user studies, no FID: torch-fidelity's.
        Protocol(
            name="munit",
            description="MUNIT (Huang et al. 2018): 100 inputs, 19 pairs of independently sampled "
            "styles each, LPIPS-alex averaged; FID/KID on one sample per input against the target "
            "domain's test images",
            num_inputs=100,
            samples_per_input=38,
            pairing="disjoint",
            image_size=256,
        ),
        # BicycleGAN's paper reports LPIPS diversity and AMT fooling rates, no FID: torch-fidelity's.
        Protocol(
            name="bicyclegan",
            description="BicycleGAN (Zhu et al. 2017): 100 inputs, 20 samples each, LPIPS-alex over "
            "the 19 consecutive pairs; FID/KID on one sample per input against the test images",
            num_inputs=100,
            samples_per_input=20,
            pairing="consecutive",
            image_size=256,
        ),
        # StarGAN v2's metrics/eval.py and fid.py: torchvision's ImageNet Inception-v3 on images
        # read from files, resized to 256 and then 299 (PIL bilinear), against the training images.
        Protocol(
            name="stargan_v2",
            description="StarGAN v2 (Choi et al. 2020, metrics/eval.py): multi-domain methods per "
            "(source, target) task, latent- and reference-guided: every test input of the source, 10 "
            "outputs each, LPIPS over all 45 pairs; FID with torchvision's ImageNet Inception-v3 on all "
            "outputs against the target domain's training images; means over the tasks",
            num_inputs=None,
            samples_per_input=10,
            pairing="all",
            fid_samples_per_input=10,
            reference_split="train",
            image_size=256,
            resize_filter="pil-bilinear",
            fid_impl="stargan_v2",
            lpips_input="float",
            image_source="files",
        ),
        # CUT's README: test.py --num_test 500 (every test image of horse2zebra and cat2dog), the
        # outputs saved as 256 x 256 PNGs, then `python -m pytorch_fid <dataset>/testB <results>/fake_B`:
        # pytorch-fid on the translated test set against the target domain's test files.
        Protocol(
            name="cut",
            description="CUT (Park et al. 2020): one output per test input at 256 x 256; FID/KID with "
            "pytorch-fid against the target domain's test images read from their files",
            num_inputs=None,
            samples_per_input=1,
            pairing="none",
            image_size=256,
            fid_impl="pytorch_fid",
            image_source="files",
        ),
        # imtrans's own, for model selection during training.
        Protocol(
            name="quick",
            description="monitoring during training: 32 inputs, 8 samples (all 28 pairs), FID/KID "
            "against up to 256 images of the same split, at the size produced",
            num_inputs=32,
            samples_per_input=8,
            pairing="all",
            num_reference=256,
        ),
    )
}


def get_protocol(
    name: str, overrides: Mapping[str, Any] | None = None, fid_impl: str | None = None
) -> Protocol:
    """The named protocol (one of :data:`PROTOCOLS`), with ``overrides`` applied and recorded.

    ``fid_impl`` (``metrics.fid_impl``): the FID lineage to score with, when not the protocol's
    own; it is recorded as an override and takes precedence over ``overrides["fid_impl"]``.
    """
    if name not in PROTOCOLS:
        raise ConfigError(f"metrics.protocol={name}: not one of {', '.join(PROTOCOLS)} (or metrics=<name>)")
    protocol = PROTOCOLS[name]
    overrides = dict(overrides or {})
    if fid_impl is not None:
        overrides.pop("fid_features", None)  # the older name of the same choice
        if fid_impl == protocol.fid_impl:
            overrides.pop("fid_impl", None)
        else:
            overrides["fid_impl"] = fid_impl
    return protocol.with_overrides(overrides)
