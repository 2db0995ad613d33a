"""The evaluation engine shared by the callback (:mod:`imtrans.callbacks.evaluation`) and the CLI.

One :class:`Evaluator` holds a protocol, the metric networks (loaded once, from local files) and
the reference features it has computed. :meth:`Evaluator.evaluate_direction` translates the
protocol's inputs of one direction and returns every score that applies:

======================  ===================================================================
``fid``, ``kid``,       torch-fidelity Inception pool3 features of the first
``kid_std``             ``fid_samples_per_input`` samples of each input vs the reference images
``lpips_div``           LPIPS-alex between the protocol's pairs of samples of one input
                        (multimodal methods)
``psnr_8bit``,          paired data: first sample vs the target
``ssim``, ``lpips_gt``
``content_iou``,        shapes data, a2b (``style_div_*`` for multimodal methods)
``style_div_fg/bg``
``outline_iou``         shapes data, b2a
``n_inputs``,           how many inputs / reference images were evaluated
``n_reference``
======================  ===================================================================

Distributed: the inputs are cut into blocks of ``batch_size`` in global order and block b is
translated on rank ``b % world_size``. Every score is a torchmetrics state synced on
``compute`` (called on every rank, in the same order); features are sorted back into global
order. Style codes are drawn per (input, sample) and the generator's own noise per block, both
from the protocol seed, so one process and many translate the same images and give the same
numbers.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, Subset, default_collate
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from imtrans.metrics import shapes as shapes_scores
from imtrans.metrics.core import FeatureBank, Mean64, fid_from_features, kid_from_features
from imtrans.metrics.networks import AlexLPIPS, InceptionFeatures, rgb, to_uint8
from imtrans.metrics.protocols import Protocol
from imtrans.metrics.weights import ALEXNET, INCEPTION, missing_notice, resolve_weights

log = logging.getLogger("imtrans")

DIRECTION_IDS = {"a2b": 0, "b2a": 1}
#: ``sampler(x, index, num_samples) -> N x S x C x H x W`` in [-1, 1]: the outputs of inputs ``x``
#: whose global indices are ``index`` (a 1-D LongTensor).
Sampler = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]


def seed_of(*values: int) -> int:
    """A 63-bit seed mixing ``values`` (numpy's SeedSequence; stable across platforms)."""
    state = np.random.SeedSequence([int(v) for v in values]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1


def dist_info() -> tuple[int, int]:
    """(rank, world size) of the default process group; (0, 1) without one."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def rank_blocks(n: int, block: int, rank: int = 0, world: int = 1) -> list[range]:
    """The blocks of ``range(n)`` (``block`` long, in global order) that ``rank`` handles: b % world == rank."""
    return [range(s, min(s + block, n)) for b, s in enumerate(range(0, n, block)) if b % world == rank]


def domain_length(dataset: Dataset, key: str) -> int:
    """Distinct images of domain ``key`` ("A" or "B") in ``dataset``.

    Unpaired data sets are as long as their larger domain and repeat the smaller one
    (item i holds A[i % len A] and, without augmentation, B[i % len B]).
    """
    if isinstance(dataset, Subset):
        return min(len(dataset), domain_length(dataset.dataset, key))
    paths = getattr(dataset, f"paths_{key.lower()}", None)
    return len(paths) if paths is not None else len(dataset)


def module_sampler(module, direction: str, seed: int = 0) -> Sampler:
    """A :data:`Sampler` over ``module.translate`` (a :class:`~imtrans.methods.base.TranslationModule`).

    Multimodal methods that expose ``style_dim`` get explicit N(0, I) codes, one per (input,
    sample), from ``seed_of(seed, direction, input index, sample)``; the rest draw their own
    codes / noise from the global generator, seeded per block of inputs. Either way the
    training process's random state is left untouched.
    """
    d = DIRECTION_IDS.get(direction, 9)

    def sample(x: torch.Tensor, index: torch.Tensor, num_samples: int) -> torch.Tensor:
        device = module.device
        devices = (
            [device.index if device.index is not None else torch.cuda.current_device()]
            if device.type == "cuda"
            else []
        )
        style_dim = getattr(module, "style_dim", None) if module.is_multimodal else None
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed_of(seed, d, int(index[0]), 1_000_003))
            if isinstance(style_dim, int) and style_dim > 0:
                outs = []
                for k in range(num_samples):
                    codes = torch.stack(
                        [
                            torch.randn(
                                style_dim,
                                generator=torch.Generator().manual_seed(seed_of(seed, d, int(i), k)),
                            )
                            for i in index
                        ]
                    )
                    outs.append(module.translate(x, direction, style=codes.to(device)))
                return torch.stack(outs, 1)
            out = module.translate(x, direction, num_samples=num_samples)
            return out[:, None] if num_samples == 1 else out

    return sample


def module_inputs(module, direction: str) -> Callable[[list[dict]], Any]:
    """``items -> what module.translate takes`` for ``direction``: the first element of
    ``module.grid_inputs`` on the collated items (the source images; pix2pixHD's label and
    instance maps). Returns None for items that lack the direction's source."""

    def make(items: list[dict]) -> Any:
        found = module.grid_inputs(default_collate(items), direction)
        return None if found is None else found[0]

    return make


# The last network loaded per kind, by file and modification time: evaluators of one process
# (callback, CLI, tests) share it instead of reading 96 / 244 MB again.
_NET_CACHE: dict[str, tuple[tuple, torch.nn.Module]] = {}


def _load_net(key: str, path: Path) -> torch.nn.Module:
    stamp = (str(path), path.stat().st_mtime_ns, path.stat().st_size)
    cached = _NET_CACHE.get(key)
    if cached is None or cached[0] != stamp:
        net = InceptionFeatures(path) if key == "inception" else AlexLPIPS(path)
        _NET_CACHE[key] = cached = (stamp, net)
    return cached[1]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Evaluator:
    """Computes a protocol's scores; see the module docstring.

    Args:
        protocol: the :class:`~imtrans.metrics.protocols.Protocol`.
        weights_dir: a folder holding the weight files (looked in before the hub cache).
        download: try to download absent weights (where the host is reachable).
        batch_size: inputs translated and measured at once (the block size).
        fid, kid, lpips, paired, shapes: switch metric families off.
        notify: receives the one-line notices (default: stderr).
    """

    def __init__(
        self,
        protocol: Protocol,
        *,
        weights_dir: str | Path | None = None,
        download: bool = True,
        batch_size: int = 16,
        fid: bool = True,
        kid: bool = True,
        lpips: bool = True,
        paired: bool = True,
        shapes: bool = True,
        device: str | torch.device = "cpu",
        notify: Callable[[str], None] | None = _stderr,
    ):
        self.protocol = protocol
        self.weights_dir = weights_dir
        self.download = download
        self.batch_size = batch_size
        self.want = {"fid": fid, "kid": kid, "lpips": lpips, "paired": paired, "shapes": shapes}
        self.device = torch.device(device)
        self.notify = notify
        self.notices: list[str] = []
        self.paths: dict[str, Path | None] = {}
        self.available: dict[str, bool] = {}
        self._nets: dict[str, torch.nn.Module] = {}
        self._reference: dict[Any, torch.Tensor] = {}

    # ------------------------------------------------------------------ weights and networks
    @property
    def needs(self) -> dict[str, bool]:
        """Which networks the switched-on metrics need."""
        return {"inception": self.want["fid"] or self.want["kid"], "alexnet": self.want["lpips"]}

    def find_weights(self, download: bool | None = None) -> dict[str, bool]:
        """Look for (and maybe download) the weight files; returns {network: found}."""
        download = self.download if download is None else download
        found = {}
        for key, weights in (("inception", INCEPTION), ("alexnet", ALEXNET)):
            if not self.needs[key]:
                continue
            if key == "inception" and not _has_torch_fidelity():
                self.paths[key] = None
            else:
                self.paths[key] = resolve_weights(weights, self.weights_dir, download)
            found[key] = self.paths[key] is not None
        return found

    def settle(self, available: Mapping[str, bool], notify: bool = True) -> None:
        """Fix which networks are used (e.g. after all ranks agreed) and emit the notices."""
        self.available = dict(available)
        for key, ok in self.available.items():
            if ok:
                continue
            if key == "inception" and not _has_torch_fidelity():
                line = "imtrans: FID and KID skipped: torch-fidelity is not installed (pip install 'imtrans[metrics]')"
            else:
                line = missing_notice(key, self.weights_dir)
            if line not in self.notices:
                self.notices.append(line)
                if notify and self.notify is not None:
                    self.notify(line)

    def prepare(self) -> None:
        """:meth:`find_weights` + :meth:`settle` for one process (the CLI)."""
        if not self.available:
            self.settle(self.find_weights())

    def to(self, device: str | torch.device) -> Evaluator:
        self.device = torch.device(device)
        for net in self._nets.values():
            net.to(self.device)
        return self

    def _net(self, key: str) -> torch.nn.Module | None:
        if not self.available.get(key):
            return None
        if key not in self._nets:
            self._nets[key] = _load_net(key, self.paths[key]).to(self.device)
        return self._nets[key]

    @property
    def inception(self) -> InceptionFeatures | None:
        return self._net("inception") if (self.want["fid"] or self.want["kid"]) else None

    @property
    def lpips(self) -> AlexLPIPS | None:
        return self._net("alexnet") if self.want["lpips"] else None

    # ------------------------------------------------------------------ image preparation
    def quantize(self, images: torch.Tensor) -> torch.Tensor:
        """[-1, 1] float M x C x H x W -> uint8 M x 3 x s x s at the protocol's image size."""
        images = rgb(images.float())
        size = self.protocol.image_size
        if size is not None and tuple(images.shape[-2:]) != (size, size):
            mode = self.protocol.resize_filter.split("-")[0]
            images = F.interpolate(images, size=(size, size), mode=mode, antialias=True, align_corners=False)
        return to_uint8(images)

    @staticmethod
    def signed(images_u8: torch.Tensor) -> torch.Tensor:
        return images_u8.float() / 127.5 - 1.0

    def features(self, images_u8: torch.Tensor) -> torch.Tensor:
        """Inception features of uint8 images, in chunks of ``batch_size``."""
        net = self.inception
        return torch.cat([net(chunk.to(self.device)) for chunk in images_u8.split(max(1, self.batch_size))])

    def lpips_pairs(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """LPIPS distances between uint8 image batches ``a`` and ``b`` (M each), in chunks."""
        net, step = self.lpips, max(1, 4 * self.batch_size)
        out = [
            net(self.signed(a[i : i + step].to(self.device)), self.signed(b[i : i + step].to(self.device)))
            for i in range(0, len(a), step)
        ]
        return torch.cat(out) if out else torch.zeros(0, device=self.device)

    # ------------------------------------------------------------------ reference features
    def reference_features(self, dataset: Dataset, key: str, cache_key: Any = None) -> torch.Tensor:
        """Inception features of the reference images (domain ``key`` of ``dataset``), global order.

        Computed once per ``cache_key`` (all ranks share the work) and kept in memory.
        """
        n_ref = domain_length(dataset, key)
        if self.protocol.num_reference is not None:
            n_ref = min(n_ref, self.protocol.num_reference)
        cache_key = (cache_key, key, n_ref, self.protocol.image_size, self.protocol.resize_filter)
        if cache_key not in self._reference:
            rank, world = dist_info()
            bank = FeatureBank(InceptionFeatures.num_features).to(self.device)
            for block in rank_blocks(n_ref, self.batch_size, rank, world):
                images = torch.stack([dataset[i][key] for i in block])
                bank.update(self.features(self.quantize(images)), torch.as_tensor(list(block)))
            self._reference[cache_key] = bank.compute().cpu()
        return self._reference[cache_key]

    # ------------------------------------------------------------------ one direction
    def evaluate_direction(
        self,
        sampler: Sampler,
        inputs: Dataset,
        src: str,
        tgt: str,
        *,
        reference: Dataset | None = None,
        reference_cache_key: Any = None,
        multimodal: bool = False,
        paired: bool = False,
        make_input: Callable[[list[dict]], Any] | None = None,
    ) -> dict[str, float]:
        """Translate the protocol's inputs (domain ``src`` of ``inputs``) and score them.

        ``reference``: the data set whose domain-``tgt`` images are the FID/KID reference.
        ``paired``: ``inputs`` items hold the aligned target under ``tgt``.
        ``make_input``: a block of items -> the sampler's input (default: their ``src``
        images stacked; :func:`module_inputs` for inputs that are not images).
        Must be called on every rank with the same arguments.
        """
        proto = self.protocol
        n_in = domain_length(inputs, src)
        if proto.num_inputs is not None:
            n_in = min(n_in, proto.num_inputs)
        if n_in < 1:
            raise ValueError(f"no {src} images to evaluate")
        probe = inputs[0]
        samples = proto.samples_per_input if multimodal else 1
        fid_k = min(proto.fid_samples_per_input, samples)
        pairs = proto.pairs if samples >= 2 else []

        use_fid = self.inception is not None and reference is not None and tgt in reference[0]
        use_div = self.lpips is not None and bool(pairs)
        use_paired = self.want["paired"] and paired and tgt in probe
        shapes_a2b = self.want["shapes"] and f"{src}_mask" in probe and src == "A"
        shapes_b2a = self.want["shapes"] and f"{src}_layout" in probe and src == "B"

        m: dict[str, torch.nn.Module] = {}  # every rank builds (and computes) the same ones, in order
        if use_fid:
            m["fake"] = FeatureBank(InceptionFeatures.num_features)
        if use_div:
            m["lpips_div"] = Mean64()
        if use_paired:
            m["psnr_8bit"], m["ssim"] = Mean64(), Mean64()
            if self.lpips is not None:
                m["lpips_gt"] = Mean64()
        if shapes_a2b:
            m["content_iou"] = Mean64()
            if samples >= 2:
                m["style_div_fg"], m["style_div_bg"] = Mean64(), Mean64()
        if shapes_b2a:
            m["outline_iou"] = Mean64()
        for metric in m.values():
            metric.to(self.device)

        rank, world = dist_info()
        for block in rank_blocks(n_in, self.batch_size, rank, world):
            items = [inputs[i] for i in block]
            index = torch.as_tensor(list(block))
            x = make_input(items) if make_input is not None else torch.stack([it[src] for it in items])
            out = sampler(x, index, samples).detach().float()  # N x S x C x H x W
            n = out.shape[0]
            if use_fid or use_div or use_paired:
                q = self.quantize(out.flatten(0, 1)).unflatten(0, (n, samples))
            if use_fid:
                feats = self.features(q[:, :fid_k].flatten(0, 1))
                fid_index = (index[:, None] * fid_k + torch.arange(fid_k)).flatten()
                m["fake"].update(feats, fid_index)
            if use_div:
                p, r = zip(*pairs)
                m["lpips_div"].update(
                    self.lpips_pairs(q[:, list(p)].flatten(0, 1), q[:, list(r)].flatten(0, 1))
                )
            if use_paired:
                target = self.quantize(torch.stack([it[tgt] for it in items]))
                pred01, tgt01 = q[:, 0].float() / 255, target.to(q.device).float() / 255
                m["psnr_8bit"].update(
                    peak_signal_noise_ratio(pred01, tgt01, data_range=1.0, reduction="none", dim=(1, 2, 3))
                )
                m["ssim"].update(
                    structural_similarity_index_measure(pred01, tgt01, data_range=1.0, reduction="none")
                )
                if "lpips_gt" in m:
                    m["lpips_gt"].update(self.lpips_pairs(q[:, 0], target))
            if shapes_a2b or shapes_b2a:
                native = to_uint8(rgb(out.flatten(0, 1))).unflatten(0, (n, samples))
            if shapes_a2b:
                masks = torch.stack([it[f"{src}_mask"] for it in items])
                m["content_iou"].update(shapes_scores.content_iou(native[:, 0], masks))
                if samples >= 2:
                    fg, bg = shapes_scores.style_spread(native, masks)
                    m["style_div_fg"].update(fg)
                    m["style_div_bg"].update(bg)
            if shapes_b2a:
                layouts = torch.stack([it[f"{src}_layout"] for it in items])
                outlines = shapes_scores.outline_masks(layouts, native.shape[-1])
                m["outline_iou"].update(shapes_scores.outline_iou(native[:, 0], outlines))

        scores: dict[str, float] = {}
        if use_fid:
            fake = m.pop("fake").compute()
            real = self.reference_features(reference, tgt, reference_cache_key)
            scores["fid"] = fid_from_features(fake, real)
            scores["kid"], scores["kid_std"] = kid_from_features(
                fake, real, proto.kid_subsets, proto.kid_subset_size, proto.kid_seed
            )
            scores["n_reference"] = float(len(real))
        for name, metric in m.items():
            scores[name] = float(metric.compute())
        scores["n_inputs"] = float(n_in)
        return scores

    # ------------------------------------------------------------------ images given as files
    def fid_kid(
        self, fake_u8: Sequence[torch.Tensor] | torch.Tensor, real_u8: Sequence[torch.Tensor] | torch.Tensor
    ) -> dict[str, float]:
        """FID and KID between two sets of uint8 3 x H x W images (single process)."""
        if self.inception is None:
            return {}
        fake = torch.cat(
            [self.features(self.quantize(self.signed(b))) for b in _batches(fake_u8, self.batch_size)]
        )
        real = torch.cat(
            [self.features(self.quantize(self.signed(b))) for b in _batches(real_u8, self.batch_size)]
        )
        kid, kid_std = kid_from_features(
            fake, real, self.protocol.kid_subsets, self.protocol.kid_subset_size, self.protocol.kid_seed
        )
        return {
            "fid": fid_from_features(fake, real),
            "kid": kid,
            "kid_std": kid_std,
            "n_fake": float(len(fake)),
            "n_reference": float(len(real)),
        }

    def diversity(self, groups: Sequence[torch.Tensor]) -> dict[str, float]:
        """LPIPS diversity of uint8 sample groups (one S x 3 x H x W tensor per input), protocol pairing."""
        if self.lpips is None or not groups:
            return {}
        pairs = self.protocol.pairs
        if not pairs:
            return {}
        need = max(max(p) for p in pairs) + 1
        mean = Mean64().to(self.device)
        for group in groups:
            if len(group) < need:
                raise ValueError(
                    f"protocol {self.protocol.name} needs {need} samples per input, found {len(group)}"
                )
            q = self.quantize(self.signed(group[:need]))
            p, r = zip(*pairs)
            mean.update(self.lpips_pairs(q[list(p)], q[list(r)]))
        return {"lpips_div": float(mean.compute()), "n_inputs": float(len(groups))}


def _batches(images: Sequence[torch.Tensor] | torch.Tensor, size: int) -> Iterator[torch.Tensor]:
    """Stacks of up to ``size`` consecutive images of one shape (image files may differ in size)."""
    chunk: list[torch.Tensor] = []
    for image in images:
        if chunk and (len(chunk) >= max(1, size) or image.shape != chunk[0].shape):
            yield torch.stack(chunk)
            chunk = []
        chunk.append(image)
    if chunk:
        yield torch.stack(chunk)


def _has_torch_fidelity() -> bool:
    try:
        import torch_fidelity  # noqa: F401
    except ImportError:
        return False
    return True
