"""The evaluation engine shared by the callback (:mod:`imtrans.callbacks.evaluation`) and the CLI.

One :class:`Evaluator` holds a protocol, the metric networks (loaded once, from local files) and
the reference features it has computed. :meth:`Evaluator.evaluate_direction` translates the
protocol's inputs of one direction and returns every score that applies:

======================  ===================================================================
``fid``, ``kid``,       the FID lineage's Inception features of the first
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

FID and KID use the protocol's lineage (``fid_impl``, :mod:`imtrans.metrics.lineages`): its
network, weights and image path, so that the numbers are those its package gives on the PNGs of
the same outputs (torch-fidelity by default, pytorch-fid for ``cut``, torchvision's ImageNet
Inception-v3 for ``stargan_v2``, or ``clean``: clean-fid).

Multi-domain methods (``domains`` in their ``inference_spec()``, folder-per-domain data) are scored by
:meth:`Evaluator.evaluate_domains`: one task per (source, target) pair of domains and guidance
mode, keys ``<mode>/<source>2<target>/<score>`` and the means over the tasks
``<mode>/mean/<score>`` (:func:`evaluate_domain_tasks` runs it for a module).

Distributed: the inputs are cut into blocks of ``batch_size`` in global order and block b is
translated on rank ``b % world_size``. Every score is a torchmetrics state synced on
``compute`` (called on every rank, in the same order); features are sorted back into global
order. Style codes are drawn per (input, sample) and the generator's own noise per block, both
from the protocol seed, so one process and many translate the same images and give the same
numbers.

Weight files are checked against their published SHA-256 (:mod:`imtrans.pretrained`): a file
under a standard name that is another file stops the evaluation with
:class:`~imtrans.pretrained.WeightsMismatchError` (the user's to fix: no score is computed from
it); a test's declared stand-in is used, with a notice that its scores are not the published
metric.

Only the work of the scores that apply is done. A score is skipped when its network's weights
are missing (the one-line notice), switched off, or without data (no target image, no
reference); each direction or task then draws only the samples per input that the remaining
scores read (FID's first ``fid_samples_per_input``, LPIPS's pairs, the shapes scores), and one
that has no score left translates nothing and reports nothing. A method's first k samples of an
input do not depend on how many are drawn (samples are drawn one after another, or from seeds
per (input, sample)), so a score is the same number whichever other scores are computed.

Progress: an evaluation still running after ``progress_delay`` seconds shows a tqdm bar on
stderr (rank 0; ``progress=False`` or ``TQDM_DISABLE=1`` switch it off) naming the direction or
task, the scores and how many inputs and samples. ``should_stop`` (e.g. a Ctrl-C or SIGTERM,
see :data:`imtrans.callbacks.checkpoint.STOP`) is polled between blocks of inputs, all ranks
agreeing: the evaluation then ends with :class:`EvaluationStopped`, which carries the scores of
the directions / tasks completed before.
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
from tqdm import tqdm

from imtrans.methods.spec import DIRECTIONS
from imtrans.metrics import shapes as shapes_scores
from imtrans.metrics.core import FeatureBank, Mean64, fid_from_features, kid_from_features
from imtrans.metrics.lineages import FID_IMPLS
from imtrans.metrics.networks import (
    AlexLPIPS,
    default_lpips_heads,
    pil_resize,
    rgb,
    to_uint8,
)
from imtrans.metrics.protocols import Protocol
from imtrans.metrics.weights import (
    ALEXNET,
    INCEPTION,
    LPIPS_ALEX_HEADS,
    WEIGHTS,
    missing_notice,
    resolve_weights,
    verify,
)
from imtrans.pretrained import STAND_IN_ENV, WeightsMismatchError, unverified_line

log = logging.getLogger("imtrans")

DIRECTION_IDS = {"a2b": 0, "b2a": 1}
#: ``sampler(x, index, num_samples) -> N x S x C x H x W`` in [-1, 1]: the outputs of inputs ``x``
#: whose global indices are ``index`` (a 1-D LongTensor).
Sampler = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]
#: ``sampler(x, index, num_samples, source, target, references) -> N x S x C x H x W`` in [-1, 1]:
#: the outputs of source-domain images ``x`` (their positions ``index`` in the task's input list)
#: in domain ``target``; ``references`` is None (latent mode) or N x S x C x H x W images of the
#: target domain (reference mode: sample k of input i takes its style from ``references[i, k]``).
DomainSampler = Callable[[torch.Tensor, torch.Tensor, int, int, int, "torch.Tensor | None"], torch.Tensor]


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


class EvaluationStopped(Exception):
    """An evaluation ended early because ``should_stop`` asked it to (Ctrl-C, SIGTERM).

    ``scores`` holds what was complete by then: the tasks of :meth:`Evaluator.evaluate_domains`
    finished before the stop (never a score over part of a task's inputs, which would be another
    number than the protocol's); empty from :meth:`Evaluator.evaluate_direction`.
    """

    def __init__(self, scores: Mapping[str, float] | None = None):
        super().__init__("evaluation stopped")
        self.scores = dict(scores or {})


def samples_needed(
    *, fid: int = 0, pairs: Sequence[tuple[int, int]] = (), single: bool = False, all_of: int = 0
) -> int:
    """Samples per input that the scores to compute read: ``fid`` (FID/KID's first samples), the
    LPIPS ``pairs`` (up to their largest index), ``single`` (scores of the first sample: paired,
    content / outline IoU), ``all_of`` (scores of every sample: the shapes style spread). 0: no
    score to compute, nothing to translate."""
    need = max(fid, all_of, 1 if single else 0)
    if pairs:
        need = max(need, max(max(p) for p in pairs) + 1)
    return need


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

    Methods that declare a style vector (``inference_spec().style``) get explicit N(0, I) codes, one per (input,
    sample), from ``seed_of(seed, direction, input index, sample)``; the rest draw their own
    codes / noise from the global generator, seeded per block of inputs. Either way the
    training process's random state is left untouched.
    """
    d = DIRECTION_IDS.get(direction, 9)
    style = module.inference_spec().style if module.is_multimodal else None
    style_dim = style.dim if style is not None and not style.per_pixel else None

    def sample(x: torch.Tensor, index: torch.Tensor, num_samples: int) -> torch.Tensor:
        device = module.device
        devices = (
            [device.index if device.index is not None else torch.cuda.current_device()]
            if device.type == "cuda"
            else []
        )
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed_of(seed, d, int(index[0]), 1_000_003))
            if style_dim:
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


def module_domain_sampler(module, seed: int = 0) -> DomainSampler:
    """A :data:`DomainSampler` over a multi-domain ``module.translate(x, target_domain=t, ...)``.

    Latent mode: ``translate(x, target_domain=t, num_samples=S)`` draws the method's own codes
    (the method knows whether a style code is a latent to map or a code to use as is), from the
    global generator seeded per (task, block of inputs); reference mode: one
    ``translate(x, target_domain=t, reference=r)`` per sample. The training process's random
    state is left untouched.
    """

    def sample(x, index, num_samples, source, target, references=None):
        device = module.device
        devices = (
            [device.index if device.index is not None else torch.cuda.current_device()]
            if device.type == "cuda"
            else []
        )
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed_of(seed, 100 + source, target, int(index[0]), 1_000_003))
            if references is None:
                out = module.translate(x, target_domain=target, num_samples=num_samples)
                return out[:, None] if num_samples == 1 else out
            return torch.stack(
                [
                    module.translate(x, target_domain=target, reference=references[:, k].to(device))
                    for k in range(num_samples)
                ],
                1,
            )

    return sample


def module_domain_names(module, datamodule, dataset: Dataset) -> list[str] | None:
    """The domain names of a multi-domain ``module`` on folder-per-domain data, else None.

    Multi-domain: the module declares ``domains`` (``inference_spec()``, two or more) and the
    items carry a ``domain`` index; the names are the data module's ``domains`` (which must be as
    many).
    """
    declared = module.inference_spec().domains
    n = len(declared) if declared is not None else 0
    if n < 2 or len(dataset) == 0 or "domain" not in dataset[0]:
        return None
    names = [str(d) for d in (getattr(datamodule, "domains", None) or [])]
    if len(names) != n:
        raise ValueError(
            f"metrics: the model has {n} domains (model.num_domains), the data {len(names)}: {names}"
        )
    return names


def supports_reference(module) -> bool:
    """Whether the module declares reference-guided translation (``inference_spec().reference``)."""
    return bool(module.inference_spec().reference)


def domain_positions(dataset: Dataset, num_domains: int) -> list[list[int]]:
    """The indices of ``dataset`` holding each domain's images, in dataset order.

    Read from the items list of a :class:`~imtrans.data.datasets.DomainsDataset` (``(path,
    domain)`` pairs; through a ``Subset``) without loading an image; other data sets are read.
    """
    out: list[list[int]] = [[] for _ in range(num_domains)]
    for i, d in enumerate(_item_domains(dataset)):
        if 0 <= d < num_domains:
            out[d].append(i)
    return out


def _item_domains(dataset: Dataset) -> list[int]:
    if isinstance(dataset, Subset):
        inner = _item_domains(dataset.dataset)
        return [inner[i] for i in dataset.indices]
    items = getattr(dataset, "items", None)
    if isinstance(items, list) and items and isinstance(items[0], tuple) and len(items[0]) == 2:
        return [int(d) for _, d in items]
    return [int(dataset[i]["domain"]) for i in range(len(dataset))]


def _item_path(dataset: Dataset, i: int) -> str | None:
    """The file of item ``i`` (``DomainsDataset`` items, else the item's ``path``); None if unknown."""
    if isinstance(dataset, Subset):
        return _item_path(dataset.dataset, dataset.indices[i])
    items = getattr(dataset, "items", None)
    if isinstance(items, list) and i < len(items) and isinstance(items[i], tuple):
        return str(items[i][0])
    path = dataset[i].get("path")
    return None if path is None else str(path)


def domain_files(dataset: Dataset, key: str, count: int) -> list[str] | None:
    """The files of the first ``count`` images of domain ``key`` ("A" or "B") of a two-domain
    data set, in the order :meth:`Evaluator.reference_features` reads them; None when the data
    set keeps no file list for the domain or a file is missing (e.g. generated shapes)."""
    files = [_domain_file(dataset, key, i) for i in range(count)]
    return files if all(f is not None and Path(f).is_file() for f in files) else None


def _domain_file(dataset: Dataset, key: str, i: int) -> str | None:
    """The file of domain ``key`` in item ``i``: ``paths_<key>[i % len]`` (unpaired data sets repeat
    the smaller domain, see :func:`domain_length`), through a ``Subset``."""
    if isinstance(dataset, Subset):
        return _domain_file(dataset.dataset, key, dataset.indices[i])
    paths = getattr(dataset, f"paths_{key.lower()}", None)
    return str(paths[i % len(paths)]) if paths else None


def read_rgb(path: str | Path) -> torch.Tensor:
    """uint8 3 x H x W, the file read as PIL reads it (``convert("RGB")``)."""
    from PIL import Image

    with Image.open(path) as img:
        return torch.from_numpy(np.array(img.convert("RGB"))).permute(2, 0, 1).contiguous()


def reference_choices(flat: Sequence[int], pool_size: int, seed: int, source: int, target: int) -> list[int]:
    """Positions in the target domain's reference pool for flat (input, sample) numbers ``flat``.

    The pool is walked in a seeded random order and walked again, reshuffled, when it runs out
    (StarGAN v2 draws successive batches of a shuffled loader); the choice depends only on the
    flat number ``input * S + sample``, not on the process or the block.
    """
    perms: dict[int, np.ndarray] = {}
    out = []
    for f in flat:
        epoch = int(f) // pool_size
        if epoch not in perms:
            rng = np.random.RandomState(seed_of(seed, 200 + source, target, epoch) % 2**32)
            perms[epoch] = rng.permutation(pool_size)
        out.append(int(perms[epoch][int(f) % pool_size]))
    return out


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


# weights key -> the network reading that file: each lineage's FID network, and LPIPS
_NET_CLASSES = {
    **{lineage.weights.key: lineage.network for lineage in FID_IMPLS.values()},
    ALEXNET.key: AlexLPIPS,
}


def _load_net(key: str, path: Path) -> torch.nn.Module:
    stamp = (str(path), path.stat().st_mtime_ns, path.stat().st_size)
    cached = _NET_CACHE.get(key)
    if cached is None or cached[0] != stamp:
        net = _NET_CLASSES[key](path)
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
        progress: show a progress bar (stderr, rank 0) for evaluations longer than
            ``progress_delay`` seconds.
        should_stop: polled between blocks of inputs (every rank agrees on it); True ends the
            evaluation with :class:`EvaluationStopped`. None: never stops (no collective).
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
        progress: bool = True,
        progress_delay: float = 5.0,
        should_stop: Callable[[], bool] | None = None,
    ):
        self.protocol = protocol
        self.weights_dir = weights_dir
        self.download = download
        self.batch_size = batch_size
        self.want = {"fid": fid, "kid": kid, "lpips": lpips, "paired": paired, "shapes": shapes}
        self.device = torch.device(device)
        self.notify = notify
        self.notices: list[str] = []
        self.progress = progress
        self.progress_delay = progress_delay
        self.should_stop = should_stop
        self.paths: dict[str, Path | None] = {}
        #: files under a standard name that are not the published file (raised by :meth:`settle`)
        self.refused: dict[str, WeightsMismatchError] = {}
        self.available: dict[str, bool] = {}
        self._nets: dict[str, torch.nn.Module] = {}
        self._reference: dict[Any, torch.Tensor] = {}

    # ------------------------------------------------------------------ weights and networks
    @property
    def fid_key(self) -> str:
        """The weights key of the protocol's FID/KID network (``inception``: torch-fidelity's)."""
        return self.protocol.fid_weights_key

    @property
    def needs(self) -> dict[str, bool]:
        """Which networks (weights keys) the switched-on metrics need."""
        return {self.fid_key: self.want["fid"] or self.want["kid"], ALEXNET.key: self.want["lpips"]}

    def find_weights(self, download: bool | None = None) -> dict[str, bool]:
        """Look for (and maybe download) the weight files; returns {network: found}.

        A file that fails its hash check counts as not found here and is kept in ``refused``:
        :meth:`settle` raises it, after the ranks agreed (a raise on one rank alone before a
        collective would leave the others waiting)."""
        download = self.download if download is None else download
        found = {}
        for key, needed in self.needs.items():
            weights = WEIGHTS[key]
            if not needed:
                continue
            self.refused.pop(key, None)
            if key == INCEPTION.key and not _has_torch_fidelity():
                self.paths[key] = None
            else:
                try:
                    self.paths[key] = resolve_weights(weights, self.weights_dir, download)
                    if key == ALEXNET.key and self.paths[key] is not None:
                        verify(LPIPS_ALEX_HEADS, default_lpips_heads())  # LPIPS reads these with it
                except WeightsMismatchError as err:
                    self.paths[key], self.refused[key] = None, err
            found[key] = self.paths[key] is not None
        return found

    def settle(self, available: Mapping[str, bool], notify: bool = True) -> None:
        """Fix which networks are used (e.g. after all ranks agreed) and emit the notices.

        Raises :class:`~imtrans.pretrained.WeightsMismatchError` when a needed file is not the
        published one: no score is computed from it, and skipping it silently would hide it."""
        if self.refused:
            raise next(iter(self.refused.values()))
        self.available = dict(available)
        for key, ok in self.available.items():
            path = self.paths.get(key)
            if ok:  # found and verified; a test's stand-in or a file with no published hash is said
                status = "verified" if path is None else verify(WEIGHTS[key], path)  # digests are cached
                if status == "verified":
                    continue
                if status == "stand-in":  # so that its numbers never pass for the published metric
                    line = (
                        f"imtrans: {WEIGHTS[key].used_for} from a stand-in: {path} was used without a hash "
                        f"check ({STAND_IN_ENV}), so these are not the published scores"
                    )
                else:
                    line = unverified_line(path, WEIGHTS[key].filename, status)
            elif key == INCEPTION.key and not _has_torch_fidelity():
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
    def inception(self) -> torch.nn.Module | None:
        """The FID/KID network of the protocol's lineage (None when absent or switched off): uint8
        N x 3 x H x W -> N x ``num_features``, the lineage's resize inside."""
        return self._net(self.fid_key) if (self.want["fid"] or self.want["kid"]) else None

    @property
    def lpips(self) -> AlexLPIPS | None:
        return self._net("alexnet") if self.want["lpips"] else None

    # ------------------------------------------------------------------ progress and stops
    def progress_bar(self, total: int, desc: str, unit: str = "input") -> tqdm:
        """A bar over ``total`` inputs (all ranks' together), on stderr; shown only on rank 0,
        with ``progress``, once ``progress_delay`` seconds have passed (quick evaluations, the
        tests', print nothing)."""
        rank, _ = dist_info()
        settings = dict(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True)
        settings["disable"] = not self.progress or rank != 0
        try:
            return tqdm(delay=self.progress_delay, **settings)
        except (TypeError, KeyError):  # tqdm < 4.61 (Lightning accepts 4.57) has no delay: TqdmKeyError
            return tqdm(**settings)

    def stop_agreed(self) -> bool:
        """Whether to stop now: ``should_stop`` on any rank (a signal may reach one rank
        first, or only one). A collective when distributed: call on every rank at the same
        point, which :meth:`blocks` does."""
        if self.should_stop is None:
            return False
        stop = bool(self.should_stop())
        _, world = dist_info()
        if world > 1:
            flag = torch.tensor([1.0 if stop else 0.0], device=self.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            stop = bool(flag.item())
        return stop

    def blocks(self, n: int, bar: tqdm | None = None) -> Iterator[range]:
        """This rank's blocks of ``range(n)`` (as :func:`rank_blocks`), round by round: a round is
        one block per rank, and before each every rank checks :meth:`stop_agreed` (every rank
        runs as many rounds, so the checks pair up); a stop raises :class:`EvaluationStopped`.
        ``bar`` advances by the round's inputs of all ranks."""
        rank, world = dist_info()
        step = max(1, self.batch_size)
        starts = list(range(0, n, step))
        for first in range(0, len(starts), world):
            if self.stop_agreed():
                raise EvaluationStopped()
            mine = first + rank
            if mine < len(starts):
                yield range(starts[mine], min(starts[mine] + step, n))
            if bar is not None:
                last = min(first + world, len(starts)) - 1
                bar.update(min(starts[last] + step, n) - starts[first])

    # ------------------------------------------------------------------ image preparation
    def quantize(self, images: torch.Tensor) -> torch.Tensor:
        """[-1, 1] float M x C x H x W -> uint8 M x 3 x s x s at the protocol's image size."""
        images = rgb(images.float())
        size = self.protocol.image_size
        if self.protocol.resize_filter == "pil-bilinear":  # as a saved PNG is resized when read
            return to_uint8(images) if size is None else pil_resize(to_uint8(images), size)
        if size is not None and tuple(images.shape[-2:]) != (size, size):
            mode = self.protocol.resize_filter.split("-")[0]
            images = F.interpolate(images, size=(size, size), mode=mode, antialias=True, align_corners=False)
        return to_uint8(images)

    def lpips_images(self, images: torch.Tensor, quantized: torch.Tensor) -> torch.Tensor:
        """The LPIPS input of float outputs ``images`` (M x C x H x W) whose :meth:`quantize` is
        ``quantized``: the latter (as uint8), or, for ``lpips_input: float``, the float outputs
        themselves at ``image_size`` (bilinear, antialiased, if they differ), not clamped."""
        if self.protocol.lpips_input == "uint8":
            return quantized
        images = rgb(images.float())
        size = self.protocol.image_size
        if size is not None and tuple(images.shape[-2:]) != (size, size):
            images = F.interpolate(
                images, size=(size, size), mode="bilinear", antialias=True, align_corners=False
            )
        return images

    @staticmethod
    def signed(images_u8: torch.Tensor) -> torch.Tensor:
        return images_u8.float() / 127.5 - 1.0

    def features(self, images_u8: torch.Tensor) -> torch.Tensor:
        """FID features of uint8 images (as a PNG of them decodes), in chunks of ``batch_size``."""
        net = self.inception
        return torch.cat([net(chunk.to(self.device)) for chunk in images_u8.split(max(1, self.batch_size))])

    def lpips_pairs(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """LPIPS distances between image batches ``a`` and ``b`` (M each; uint8, or float in
        [-1, 1]), in chunks."""
        net, step = self.lpips, max(1, 4 * self.batch_size)

        def signed(x):
            return self.signed(x) if x.dtype == torch.uint8 else x.float()

        out = [
            net(signed(a[i : i + step].to(self.device)), signed(b[i : i + step].to(self.device)))
            for i in range(0, len(a), step)
        ]
        return torch.cat(out) if out else torch.zeros(0, device=self.device)

    # ------------------------------------------------------------------ reference features
    def reference_features(self, dataset: Dataset, key: str, cache_key: Any = None) -> torch.Tensor:
        """FID features of the reference images (domain ``key`` of ``dataset``), global order.

        ``image_source: files`` with an ``image_size``: the images are read from their files
        (:func:`domain_files`) as the lineage's package reads a folder, not through the data
        set's transform; otherwise (or without files) the data set's images.
        Computed once per ``cache_key`` (all ranks share the work) and kept in memory.
        """
        proto = self.protocol
        n_ref = domain_length(dataset, key)
        if proto.num_reference is not None:
            n_ref = min(n_ref, proto.num_reference)
        files = None
        if proto.image_source == "files" and proto.image_size is not None:
            files = domain_files(dataset, key, n_ref)

        def load(block: range) -> torch.Tensor:
            if files is not None:
                return self.read_files([files[i] for i in block])
            return torch.stack([dataset[i][key] for i in block])

        cache_key = (cache_key, key, n_ref, proto.image_size, proto.resize_filter, self.fid_key)
        return self._cached_features((*cache_key, files is not None), n_ref, load)

    def read_files(self, paths: Sequence[str | Path]) -> torch.Tensor:
        """Image files as float [-1, 1] N x 3 x s x s: each read as RGB and brought to the
        protocol's ``image_size`` by :meth:`quantize` (a no-op on files of that size)."""
        return torch.cat([self.signed(self.quantize(self.signed(read_rgb(p)[None]))) for p in paths])

    def _cached_features(self, cache_key: Any, count: int, load) -> torch.Tensor:
        """FID features of ``count`` images, ``load(indices) -> N x C x H x W``, in global order:
        each rank takes its blocks, the bank gathers them; kept under ``cache_key``."""
        if cache_key not in self._reference:
            bank = FeatureBank(self.inception.num_features).to(self.device)
            with self.progress_bar(count, f"FID reference features ({count} images)", "image") as bar:
                for block in self.blocks(count, bar):
                    bank.update(self.features(self.quantize(load(block))), torch.as_tensor(list(block)))
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
        label: str | None = None,
    ) -> dict[str, float]:
        """Translate the protocol's inputs (domain ``src`` of ``inputs``) and score them.

        ``reference``: the data set whose domain-``tgt`` images are the FID/KID reference.
        ``paired``: ``inputs`` items hold the aligned target under ``tgt``.
        ``make_input``: a block of items -> the sampler's input (default: their ``src``
        images stacked; :func:`module_inputs` for inputs that are not images).
        ``label``: the progress bar's title (default ``<src>2<tgt>``).
        Only the samples the applicable scores read are drawn; with no score applicable
        nothing is translated and the result is empty.
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
        # the samples per input the applicable scores read: the first `draw` of the protocol's
        # `samples` (the rest would be translated for nothing, e.g. LPIPS's when it is skipped)
        draw = samples_needed(
            fid=fid_k if use_fid else 0,
            pairs=pairs if use_div else (),
            single=use_paired or shapes_a2b or shapes_b2a,
            all_of=samples if shapes_a2b and samples >= 2 else 0,
        )
        if draw == 0:  # every score skipped (missing weights, switched off): translate nothing
            return {}

        m: dict[str, torch.nn.Module] = {}  # every rank builds (and computes) the same ones, in order
        if use_fid:
            m["fake"] = FeatureBank(self.inception.num_features)
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

        names = [k for k in m if k != "fake"] + (["fid", "kid"] if use_fid else [])
        desc = f"{label or f'{src}2{tgt}'}: {', '.join(names)} ({n_in} inputs x {draw} samples)"
        with self.progress_bar(n_in, desc) as bar:
            for block in self.blocks(n_in, bar):
                items = [inputs[i] for i in block]
                index = torch.as_tensor(list(block))
                x = make_input(items) if make_input is not None else torch.stack([it[src] for it in items])
                out = sampler(x, index, draw).detach().float()  # N x draw x C x H x W
                n = out.shape[0]
                if use_fid or use_div or use_paired:
                    q = self.quantize(out.flatten(0, 1)).unflatten(0, (n, draw))
                if use_fid:
                    feats = self.features(q[:, :fid_k].flatten(0, 1))
                    fid_index = (index[:, None] * fid_k + torch.arange(fid_k)).flatten()
                    m["fake"].update(feats, fid_index)
                if use_div:
                    p, r = zip(*pairs)
                    li = self.lpips_images(out.flatten(0, 1), q.flatten(0, 1)).unflatten(0, (n, draw))
                    m["lpips_div"].update(
                        self.lpips_pairs(li[:, list(p)].flatten(0, 1), li[:, list(r)].flatten(0, 1))
                    )
                if use_paired:
                    target = self.quantize(torch.stack([it[tgt] for it in items]))
                    pred01, tgt01 = q[:, 0].float() / 255, target.to(q.device).float() / 255
                    m["psnr_8bit"].update(
                        peak_signal_noise_ratio(
                            pred01, tgt01, data_range=1.0, reduction="none", dim=(1, 2, 3)
                        )
                    )
                    m["ssim"].update(
                        structural_similarity_index_measure(pred01, tgt01, data_range=1.0, reduction="none")
                    )
                    if "lpips_gt" in m:
                        m["lpips_gt"].update(self.lpips_pairs(q[:, 0], target))
                if shapes_a2b or shapes_b2a:
                    native = to_uint8(rgb(out.flatten(0, 1))).unflatten(0, (n, draw))
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

    # ------------------------------------------------------------------ multi-domain tasks
    def load_images(self, dataset: Dataset, indices: Sequence[int]) -> torch.Tensor:
        """Images ``indices`` of a folder-per-domain ``dataset``, float [-1, 1] N x C x H x W.

        ``image_source: files``: each file read as RGB and resized to ``image_size`` by the
        protocol's filter (StarGAN v2 reads inputs, references and reals this way); items without
        a file, no ``image_size``, and ``image_source: dataset``: the data set's ``image``.
        """
        if not indices:
            raise ValueError("no images to load")
        if self.protocol.image_source == "files" and self.protocol.image_size is not None:
            paths = [_item_path(dataset, i) for i in indices]
            if all(p is not None for p in paths):
                return self.read_files(paths)
        return torch.stack([dataset[i]["image"] for i in indices])

    def domain_reference_features(
        self, dataset: Dataset, indices: Sequence[int], cache_key: Any
    ) -> torch.Tensor:
        """FID features of the images ``indices`` of ``dataset`` (one domain's reals), in their order."""
        indices = list(indices)
        if self.protocol.num_reference is not None:
            indices = indices[: self.protocol.num_reference]
        key = ("domains", cache_key, tuple(indices), self.protocol.image_size, self.protocol.resize_filter)
        key += (self.protocol.image_source, self.fid_key)
        return self._cached_features(
            key, len(indices), lambda block: self.load_images(dataset, [indices[i] for i in block])
        )

    def evaluate_domains(
        self,
        sampler: DomainSampler,
        inputs: Dataset,
        domains: Sequence[str],
        *,
        reference: Dataset | None = None,
        reference_cache_key: Any = None,
        multimodal: bool = True,
        modes: Sequence[str] | None = None,
        label: str | None = None,
    ) -> dict[str, float]:
        """Score a multi-domain method per (source, target) task, as StarGAN v2's eval.py does.

        For each mode in ``modes`` (default: the protocol's; ``latent`` only for deterministic
        methods), each target domain t and each source s != t: the source's images of ``inputs``
        (the first ``num_inputs``) are translated into t, ``samples_per_input`` times each
        (latent: the method's codes; reference: target-domain images of ``inputs``, see
        :func:`reference_choices`). Per task: FID/KID of the first ``fid_samples_per_input``
        samples of every input against the target's images of ``reference``, LPIPS over the
        protocol's pairs, averaged over inputs. Returns ``<mode>/<s>2<t>/<score>`` and the means
        over tasks ``<mode>/mean/<score>`` (every task weighted equally, ``n_tasks`` their number).

        A task draws only the samples its applicable scores read, and one with none (FID and
        LPIPS both skipped: no weights, switched off, no reference images of its target) is not
        run at all: without any weights nothing is translated and the result is empty.
        ``label`` prefixes the progress bar's title (the stage). Stopped (``should_stop``), it
        raises :class:`EvaluationStopped` with the scores of the tasks completed before, and the
        means of the modes completed before.
        Must be called on every rank with the same arguments.
        """
        proto, num = self.protocol, len(domains)
        samples = proto.samples_per_input if multimodal else 1
        modes = list(proto.modes if modes is None else modes) if multimodal else ["latent"]
        src_pos = domain_positions(inputs, num)
        ref_pos = domain_positions(reference, num) if reference is not None else None
        # plan every task first: which scores apply and how many samples they read, so that
        # skipped tasks cost nothing and the progress bar knows the whole amount of work
        plans = []
        for mode in modes:
            for t in range(num):
                for s in range(num):
                    if s == t or not src_pos[s]:
                        continue
                    plan = self._domain_plan(src_pos, s, t, mode, samples, ref_pos)
                    if plan is not None:
                        plans.append(plan)
        scores: dict[str, float] = {}
        if not plans:
            return scores
        total = sum(len(plan["positions"]) for plan in plans)
        with self.progress_bar(total, "") as bar:
            for mode in modes:
                tasks = []
                for plan in (plan for plan in plans if plan["mode"] == mode):
                    s, t = plan["source"], plan["target"]
                    bar.set_description(
                        f"{label + ' ' if label else ''}{mode} {domains[s]}2{domains[t]} "
                        f"(task {plans.index(plan) + 1}/{len(plans)}): {', '.join(plan['scores'])} "
                        f"({len(plan['positions'])} inputs x {plan['draw']} samples)",
                        refresh=False,
                    )
                    try:
                        result = self._domain_task(
                            sampler, inputs, plan, samples, reference, reference_cache_key, bar
                        )
                    except EvaluationStopped:
                        raise EvaluationStopped(scores) from None
                    scores.update({f"{mode}/{domains[s]}2{domains[t]}/{k}": v for k, v in result.items()})
                    tasks.append(result)
                if not tasks:
                    continue
                for name in tasks[0]:
                    if not name.startswith("n_") and all(name in r for r in tasks):
                        scores[f"{mode}/mean/{name}"] = float(np.mean([r[name] for r in tasks]))
                scores[f"{mode}/mean/n_tasks"] = float(len(tasks))
        return scores

    def _domain_plan(self, src_pos, s, t, mode, samples, ref_pos) -> dict[str, Any] | None:
        """What task (s -> t, ``mode``) computes: its inputs, the scores that apply, the samples
        per input they read; None when no score applies (the task is not run)."""
        proto = self.protocol
        positions = src_pos[s] if proto.num_inputs is None else src_pos[s][: proto.num_inputs]
        fid_k = min(proto.fid_samples_per_input, samples)
        pairs = proto.pairs if samples >= 2 else []
        real_idx = ref_pos[t] if ref_pos is not None else []
        use_fid = self.inception is not None and len(real_idx) >= 2
        use_div = self.lpips is not None and bool(pairs)
        draw = samples_needed(fid=fid_k if use_fid else 0, pairs=pairs if use_div else ())
        if draw == 0:
            return None
        if mode == "reference" and not src_pos[t]:
            raise ValueError(f"reference mode: no images of domain {t} in the evaluated split")
        names = (["fid", "kid"] if use_fid and self.want["kid"] else ["fid"] if use_fid else []) + (
            ["lpips_div"] if use_div else []
        )
        return {
            "mode": mode, "source": s, "target": t, "positions": positions, "pool": src_pos[t],
            "fid_k": fid_k, "pairs": pairs, "real_idx": real_idx, "use_fid": use_fid,
            "use_div": use_div, "draw": draw, "scores": names,
        }  # fmt: skip

    def _domain_task(self, sampler, inputs, plan, samples, reference, ref_cache_key, bar=None):
        """Run one planned task (:meth:`_domain_plan`); ``samples`` is the protocol's count per
        input, which numbers the reference-mode choices (the first ``draw`` of each input's are
        those a full draw would take)."""
        proto = self.protocol
        s, t, mode, draw = plan["source"], plan["target"], plan["mode"], plan["draw"]
        positions, pool, fid_k, pairs = plan["positions"], plan["pool"], plan["fid_k"], plan["pairs"]
        use_fid, use_div = plan["use_fid"], plan["use_div"]
        fake = FeatureBank(self.inception.num_features).to(self.device) if use_fid else None
        div = Mean64().to(self.device) if use_div else None
        for block in self.blocks(len(positions), bar):
            index = torch.as_tensor(list(block))
            x = self.load_images(inputs, [positions[i] for i in block])
            refs = None
            if mode == "reference":
                flat = [i * samples + k for i in block for k in range(draw)]
                chosen = reference_choices(flat, len(pool), proto.seed, s, t)
                refs = self.load_images(inputs, [pool[c] for c in chosen]).unflatten(0, (len(block), draw))
            out = sampler(x, index, draw, s, t, refs).detach().float()  # N x draw x C x H x W
            n = out.shape[0]
            q = self.quantize(out.flatten(0, 1))
            if use_fid:
                q_fid = q.unflatten(0, (n, draw))[:, :fid_k].flatten(0, 1)
                fake.update(self.features(q_fid), (index[:, None] * fid_k + torch.arange(fid_k)).flatten())
            if use_div:
                li = self.lpips_images(out.flatten(0, 1), q).unflatten(0, (n, draw))
                p, r = zip(*pairs)
                div.update(self.lpips_pairs(li[:, list(p)].flatten(0, 1), li[:, list(r)].flatten(0, 1)))
        result: dict[str, float] = {}
        if use_fid:
            fake_f = fake.compute()
            real = self.domain_reference_features(reference, plan["real_idx"], (ref_cache_key, t))
            result["fid"] = fid_from_features(fake_f, real)
            if self.want["kid"]:
                result["kid"], result["kid_std"] = kid_from_features(
                    fake_f, real, proto.kid_subsets, proto.kid_subset_size, proto.kid_seed
                )
            result["n_reference"] = float(len(real))
        if use_div:
            result["lpips_div"] = float(div.compute())
        result["n_inputs"] = float(len(positions))
        return result

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


def evaluate_module_direction(
    ev: Evaluator,
    module,
    direction: str,
    inputs: Dataset,
    reference: Dataset | None,
    ref_cache_key: Any,
    paired: bool,
    label: str | None = None,
) -> dict[str, float] | None:
    """:meth:`Evaluator.evaluate_direction` for ``direction`` of a two-domain ``module``: its
    sampler seeded by the protocol, its inputs made by ``grid_inputs`` (label maps included);
    None when ``inputs`` lack the direction's source. ``label`` titles the progress bar."""
    src, tgt = DIRECTIONS[direction]
    make_input = module_inputs(module, direction)
    if make_input([inputs[0]]) is None:  # the split lacks this direction's source
        return None
    return ev.evaluate_direction(
        module_sampler(module, direction, ev.protocol.seed),
        inputs,
        src,
        tgt,
        reference=reference,
        reference_cache_key=ref_cache_key,
        multimodal=module.is_multimodal,
        paired=paired,
        make_input=make_input,
        label=label,
    )


def evaluate_domain_tasks(
    ev: Evaluator,
    module,
    inputs: Dataset,
    reference: Dataset | None,
    domains: Sequence[str],
    ref_cache_key: Any,
    label: str | None = None,
) -> dict[str, float]:
    """:meth:`Evaluator.evaluate_domains` for a multi-domain ``module`` (latent mode, and reference
    mode when its ``translate`` takes ``reference``), seeded by the protocol; ``label`` titles
    the progress bar."""
    modes = [m for m in ev.protocol.modes if m != "reference" or supports_reference(module)]
    return ev.evaluate_domains(
        module_domain_sampler(module, ev.protocol.seed),
        inputs,
        domains,
        reference=reference,
        reference_cache_key=ref_cache_key,
        multimodal=bool(module.is_multimodal),
        modes=modes,
        label=label,
    )


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
