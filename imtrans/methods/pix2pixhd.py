"""pix2pixHD (Wang et al., CVPR 2018), as NVIDIA/pix2pixHD trains it.

Label maps to photos. The generator's input is the one-hot label map (``label_nc`` channels)
plus the instance boundary map (1 channel, ``use_instance``), plus, with ``instance_feat``,
the ``feat_num`` instance-averaged features that the encoder E extracts from the real photo.
The conditional multi-scale discriminator sees the one-hot labels and boundaries
concatenated with the photo.

One iteration (official ``train.py``): one forward computes the fake, D on the detached fake,
D on the real photo and D on the fake; G (and E) step on
``gan + feat + vgg`` (LSGAN summed over the scales; D feature matching with weights
4/(n_layers_D+1) x 1/num_D over every intermediate layer against detached real features, x10;
VGG19 perceptual L1 x10), then D steps on ``0.5 * (D_real + D_fake)`` computed in that same
forward (its weights did not change in between). Adam 2e-4 (0.5, 0.999); the rate is
constant for ``niter`` epochs, then falls linearly to 0 over ``niter_decay``.

Coarse-to-fine (``netG: local``): ``load_pretrain`` loads a trained 512p run (the global
generator's layers, the D scales and E by name and shape); for ``niter_fix_global`` epochs
only the local branch (and E) is trained, then everything, with the G optimiser's state
reset as the official code re-creates the optimiser.

Feature-guided synthesis (``instance_feat``): at the end of training every training image is
encoded, each class's instance features (instances of at least half of 1/32 of the image)
are clustered with k-means (``n_clusters``), and the centres are kept in the buffers
``feat_centers`` / ``feat_counts`` (saved with the checkpoint). ``translate(x, num_samples=S)``
then draws a centre per instance; ``translate(x, reference=photo)`` encodes the photo.

Inputs of ``translate``: ``x`` is a label map (int64 N x H x W, or N x 1 x H x W), or a dict
``{"label": ..., "inst": ...}`` (a batch of the labels data module). Without an instance map
the label map serves as one (boundaries between classes only).
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from imtrans.data.label_sets import voc_colour
from imtrans.losses import GANLoss, feature_matching_loss
from imtrans.methods.base import TranslationModule
from imtrans.methods.spec import InferenceSpec, Style, directional_tasks
from imtrans.nets.pix2pixhd import GlobalGenerator, LocalEnhancer, instance_edges

log = logging.getLogger("imtrans")


class Pix2PixHDDecay(LambdaLR):
    """pix2pixHD's schedule: constant for ``niter`` epochs, then after each further epoch
    the rate drops by lr0 / ``niter_decay`` (0 after ``niter + niter_decay`` epochs).
    Stepped once per epoch: after k epochs the factor is ``1 - max(0, k - niter) / niter_decay``."""

    def __init__(self, optimizer: Optimizer, niter: int = 100, niter_decay: int = 100):
        self.niter, self.niter_decay = niter, niter_decay
        super().__init__(optimizer, self.factor)

    def factor(self, epoch: int) -> float:
        if self.niter_decay <= 0:
            return 1.0
        return max(0.0, 1.0 - max(0, epoch - self.niter) / float(self.niter_decay))

    def state_dict(self):
        return {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "lr_lambdas")}

    def load_state_dict(self, state_dict):
        self.__dict__.update(state_dict)


def label_palette(n: int) -> torch.Tensor:
    """n x 3 colours in [-1, 1] for label ids (the PASCAL VOC bit-interleaving colour map)."""
    return torch.tensor([voc_colour(i) for i in range(n)], dtype=torch.float32) / 127.5 - 1


def kmeans(x: torch.Tensor, k: int, seed: int = 0, iters: int = 300, tol: float = 1e-4) -> torch.Tensor:
    """k-means (k-means++ seeding, Lloyd iterations) of the rows of ``x``: k x D centres.

    sklearn's ``KMeans(n_clusters=k, random_state=0)`` (what encode_features.py used) is not
    a dependency; this is the same algorithm with its defaults (one k-means++ start, 300
    iterations, tolerance 1e-4 relative to the data variance), not bit-identical centres.
    """
    x = x.double()
    n = x.shape[0]
    k = min(k, n)
    g = torch.Generator().manual_seed(seed)
    centres = [x[torch.randint(n, (1,), generator=g)].squeeze(0)]
    d2 = ((x - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        total = d2.sum()
        idx = (
            int(torch.multinomial(d2 / total, 1, generator=g))
            if total > 0
            else int(torch.randint(n, (1,), generator=g))
        )
        centres.append(x[idx])
        d2 = torch.minimum(d2, ((x - x[idx]) ** 2).sum(1))
    c = torch.stack(centres)
    threshold = tol * x.var(0, unbiased=False).mean() if n > 1 else 0.0
    for _ in range(iters):
        assign = torch.cdist(x, c).argmin(1)
        new = c.clone()
        for j in range(k):
            members = x[assign == j]
            if len(members):
                new[j] = members.mean(0)
        shift = ((new - c) ** 2).sum()
        c = new
        if shift <= threshold:
            break
    return c.float()


class Pix2PixHD(TranslationModule):
    """Label maps (+ instance maps) -> photos, A -> B only.

    Args:
        generator: ``{ngf, n_downsample, n_blocks, n_blocks_local, norm}`` of the generator.
        netG: ``global`` (G1, 512p) or ``local`` (G1 + local enhancer G2, 1024p).
        discriminator: factory ``(input_nc) -> MultiscaleDiscriminator``.
        encoder: factory ``(input_nc, feat_num) -> FeatureEncoder`` (used with ``instance_feat``).
        label_nc: classes (one-hot channels); output_nc: photo channels.
        use_instance: add the instance boundary channel (G and D inputs).
        instance_feat: encoded instance features (G input + feat_num channels; E trained with G).
        feat_num, n_clusters: feature channels; k-means clusters per class.
        cluster_features_at_end: cluster the training set's features when training ends.
        niter_fix_global: epochs during which only the local enhancer branch trains.
        load_pretrain: a checkpoint (or run directory) whose weights are loaded where names and
            shapes match (the 512p run for the 1024p setting).
        init_gain: std of the N(0, gain) conv weight init (biases keep PyTorch's default).
    """

    directions = ("a2b",)
    input_kind = "labels"

    def __init__(
        self,
        generator: Mapping[str, Any],
        discriminator: Callable[..., nn.Module],
        encoder: Callable[..., nn.Module] | None = None,
        netG: str = "global",
        label_nc: int = 35,
        output_nc: int = 3,
        use_instance: bool = True,
        instance_feat: bool = False,
        feat_num: int = 3,
        n_clusters: int = 10,
        cluster_features_at_end: bool = True,
        niter_fix_global: int = 0,
        load_pretrain: str | None = None,
        init_gain: float = 0.02,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if instance_feat and not use_instance:
            raise ValueError("model.instance_feat needs instance maps: set data.use_instance=true")
        # The VGG19 weights first: a missing file fails before 190 M parameters are built.
        self.vgg = None
        if self.loss_weights.get("vgg", 0) > 0:
            from imtrans.losses.perceptual import VGG19PerceptualLoss

            vgg_cfg = dict(self.loss_cfg.get("vgg") or {})
            self.vgg = VGG19PerceptualLoss(vgg_cfg.get("path"), bool(vgg_cfg.get("download")))
        self.label_nc, self.output_nc = label_nc, output_nc
        self.use_instance, self.use_features = use_instance, instance_feat
        self.feat_num, self.n_clusters = feat_num, n_clusters
        self.cluster_features_at_end = cluster_features_at_end
        self.niter_fix_global = niter_fix_global
        self.netG = netG
        cond_nc = label_nc + int(use_instance)
        g_in = cond_nc + (feat_num if instance_feat else 0)
        gen = dict(generator)
        if netG == "global":
            gen.pop("n_blocks_local", None)
            self.G = GlobalGenerator(g_in, output_nc, **gen)
        elif netG == "local":
            self.G = LocalEnhancer(g_in, output_nc, **gen)
        else:
            raise ValueError(f"model.netG must be global or local, got {netG!r}")
        if niter_fix_global and netG != "local":
            raise ValueError("model.niter_fix_global needs model.netG=local")
        self.D = discriminator(input_nc=cond_nc + output_nc)
        self.E = None
        if instance_feat:
            if encoder is None:
                raise ValueError("model.instance_feat needs model.encoder")
            self.E = encoder(input_nc=output_nc, feat_num=feat_num)
            self.register_buffer("feat_centers", torch.zeros(label_nc, n_clusters, feat_num))
            self.register_buffer("feat_counts", torch.zeros(label_nc, dtype=torch.long))
        # A buffer: resumed runs know whether the G optimiser was already re-created.
        self.register_buffer("_global_released", torch.zeros((), dtype=torch.bool))
        for net in (self.G, self.D, self.E):
            if net is not None:
                self._init(net, init_gain)
        self.gan = GANLoss(self.loss_cfg.get("gan_mode", "lsgan"))
        self.register_buffer("palette", label_palette(label_nc), persistent=False)
        if load_pretrain:
            self.load_pretrained(load_pretrain)

    @property
    def is_multimodal(self) -> bool:  # type: ignore[override]
        return self.use_features

    def inference_spec(self) -> InferenceSpec:
        """Label maps (ids 0 .. label_nc - 1, one channel) to photos, a2b; instance maps when the
        model uses them. With instance features: ``num_samples`` draws a cluster centre per
        instance, ``reference=photo`` encodes its instances' features, and ``style`` is the
        N x feat_num x H x W feature map itself, piecewise constant over instances, whose centres
        ``style_clusters`` gives (a tool may pick each instance's)."""
        features = bool(self.use_features)
        return replace(
            super().inference_spec(),
            tasks=directional_tasks(("a2b",), {"A": 1, "B": self.output_nc}),
            label_nc=self.label_nc,
            instance_maps=bool(self.use_instance),
            samples=features,
            reference=features,
            style=Style(self.feat_num, per_pixel=True, clusters=True) if features else None,
        )

    def style_clusters(self, task) -> dict[int, torch.Tensor]:
        """The k-means centres of each class's instance features (``feat_centers``), for the
        classes the training set had instances of (``cluster_features``)."""
        if not self.use_features:
            return super().style_clusters(task)
        return {
            c: self.feat_centers[c, :n].detach().clone()
            for c, n in enumerate(self.feat_counts.tolist())
            if n > 0
        }

    @staticmethod
    def _init(net: nn.Module, gain: float) -> None:
        """Official ``weights_init``: conv weights N(0, gain), biases untouched; BatchNorm N(1, gain)."""
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(m.weight, 0.0, gain)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, gain)
                nn.init.zeros_(m.bias)

    def load_pretrained(self, path: str | Path) -> None:
        """Load every entry of a checkpoint's state dict whose name and shape match here.

        Read as every checkpoint is (:func:`imtrans.load.read_checkpoint`): without running code
        unless the run has ``trust=true``, a file that cannot be used is one CheckpointError."""
        from imtrans.load import read_checkpoint

        path, ckpt = read_checkpoint(path, "model.load_pretrain", imtrans=False)
        state = ckpt["state_dict"]
        own = self.state_dict()
        match = {
            k: v
            for k, v in state.items()
            if k in own and own[k].shape == v.shape and not k.startswith("ema.") and k != "_iteration"
        }
        self.load_state_dict(match, strict=False)
        log.info("pix2pixHD: loaded %d of %d tensors from %s", len(match), len(own), path)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        # The loaded weights are in the state dict: rebuilding from the checkpoint
        # (load_model, resume) must not need the pretrain file again.
        config = checkpoint.get("imtrans_config")
        if config and config.get("model", {}).get("load_pretrain"):
            config = copy.deepcopy(config)
            config["model"]["load_pretrain"] = None
            checkpoint["imtrans_config"] = config

    # ------------------------------------------------------------------ optimisation
    def optimizer_groups(self):
        g = list(self.G.parameters()) + (list(self.E.parameters()) if self.E is not None else [])
        return {"G": g, "D": self.D.parameters()}

    def generator_modules(self):
        return {"G": self.G} if self.E is None else {"G": self.G, "E": self.E}

    @contextlib.contextmanager
    def _global_fixed(self):
        """During the first ``niter_fix_global`` epochs the global branch gets no gradients."""
        fixed = self.niter_fix_global and self.current_epoch < self.niter_fix_global
        params = [p for p in self.G.global_parameters() if p.requires_grad] if fixed else []
        for p in params:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p in params:
                p.requires_grad_(True)

    def on_train_epoch_start(self) -> None:
        if (
            self.niter_fix_global
            and self.current_epoch >= self.niter_fix_global
            and not self._global_released
        ):
            # update_fixed_params: a new Adam over G (and E) -> empty moments for every parameter.
            self.opt("G").optimizer.state.clear()
            self._global_released.fill_(True)

    # ------------------------------------------------------------------ inputs
    def encode_input(self, label: torch.Tensor, inst: torch.Tensor | None = None) -> torch.Tensor:
        """One-hot labels (+ instance boundaries): N x H x W ids -> N x (label_nc [+1]) x H x W."""
        if label.dim() == 4:
            label = label[:, 0]
        label = label.long().to(self.device)
        n, h, w = label.shape
        onehot = torch.zeros(n, self.label_nc, h, w, device=label.device).scatter_(1, label[:, None], 1.0)
        if not self.use_instance:
            return onehot
        inst = label if inst is None else inst.to(label.device)
        return torch.cat([onehot, instance_edges(inst)], 1)

    def _split(self, x) -> tuple[torch.Tensor, torch.Tensor | None]:
        if isinstance(x, Mapping):
            label, inst = x["label"], x.get("inst")
        else:
            label, inst = x, None
        if label.is_floating_point():
            raise TypeError("pix2pixHD translates integer label maps (N x H x W), not images")
        label = label[:, 0] if label.dim() == 4 else label
        inst = label if inst is None else (inst[:, 0] if inst.dim() == 4 else inst)
        return label.to(self.device), inst.to(self.device)

    # ------------------------------------------------------------------ inference
    def generate(self, x, direction="a2b", style=None):
        """G on an encoded input (``encode_input``); ``style``: N x feat_num x H x W features
        (zeros when the model uses features and none are given)."""
        if self.use_features:
            if style is None:
                style = x.new_zeros(x.shape[0], self.feat_num, *x.shape[2:])
            x = torch.cat([x, style.to(x)], 1)
        return self.G(x)

    def sample_features(self, inst: torch.Tensor) -> torch.Tensor:
        """Per instance a random k-means centre of its class (ids >= 1000 are class*1000+k);
        zeros for classes without centres. N x H x W -> N x feat_num x H x W."""
        ids, inverse = torch.unique(inst, return_inverse=True)
        classes = torch.where(ids >= 1000, ids // 1000, ids)
        known = (classes >= 0) & (classes < self.label_nc)
        classes = classes.clamp(0, self.label_nc - 1)
        counts = torch.where(known, self.feat_counts[classes], torch.zeros_like(classes))
        pick = (torch.rand(len(ids), device=inst.device) * counts.clamp_min(1)).long()
        chosen = self.feat_centers[classes, pick] * (counts > 0)[:, None]
        return chosen[inverse].permute(0, 3, 1, 2)

    def translate(self, x, direction="a2b", *, style=None, reference=None, num_samples=1):
        """Label map(s) -> N x C x H x W photos (N x S x C x H x W for S samples).

        ``x``: int64 N x H x W label map or ``{"label", "inst"}``. With ``instance_feat``: each
        sample draws cluster centres per instance (``sample_features``); ``reference`` (photos
        N x 3 x H' x W', resized to the label map) gives E's features of each instance instead;
        ``style`` (N x feat_num x H x W) is used as it is.
        """
        self.check_direction(direction)
        if reference is not None and not self.use_features:
            raise ValueError("Pix2PixHD without instance_feat is deterministic: it takes no reference image")
        label, inst = self._split(x)
        # user input (training data is checked when read): one line, not a scatter index error
        low, high = int(label.min()), int(label.max())
        if low < 0 or high >= self.label_nc:
            raise ValueError(f"pix2pixHD: label ids must lie in [0, {self.label_nc}), got {low}..{high}")
        outs = []
        with self.inference_mode():
            inp = self.encode_input(label, inst)
            if reference is not None:
                ref = reference.to(inp)
                if ref.shape[-2:] != label.shape[-2:]:
                    ref = F.interpolate(ref, size=label.shape[-2:], mode="bilinear", align_corners=False)
                style = self.E(ref.expand(label.shape[0], -1, -1, -1), inst)
            for _ in range(num_samples):
                feat = None
                if self.use_features:
                    feat = style if style is not None else self.sample_features(inst)
                outs.append(self.generate(inp, direction, feat))
        return outs[0] if num_samples == 1 else torch.stack(outs, 1)

    # ------------------------------------------------------------------ feature clusters
    @torch.no_grad()
    def encode_instance_features(
        self, image: torch.Tensor, inst: torch.Tensor
    ) -> list[tuple[int, torch.Tensor]]:
        """(class, feature row with the area ratio appended) for each instance of each image,
        as ``encode_features``: the ratio is the instance's pixels / (H * W // 32)."""
        feat = self.E(image.to(self.device), inst.to(self.device))
        h, w = inst.shape[-2:]
        rows = []
        for b in range(inst.shape[0]):
            flat = inst[b].reshape(-1).to(self.device)
            ids, inverse, counts = torch.unique(flat, return_inverse=True, return_counts=True)
            first = torch.full((len(ids),), flat.numel(), dtype=torch.long, device=flat.device)
            first = first.scatter_reduce(0, inverse, torch.arange(flat.numel(), device=flat.device), "amin")
            values = feat[b].reshape(self.feat_num, -1)[:, first].T
            for i, cid in enumerate(ids.tolist()):
                cls = cid if cid < 1000 else cid // 1000
                ratio = float(counts[i]) / (h * w // 32)
                rows.append((cls, torch.cat([values[i].float().cpu(), torch.tensor([ratio])])))
        return rows

    @torch.no_grad()
    def cluster_features(self, dataset, seed: int = 0) -> dict[int, int]:
        """Encode every item of ``dataset`` (``{"B", "inst"}`` items), cluster each class's
        instance features (instances with area ratio > 0.5) with k-means and store the
        centres. Returns {class: number of centres}."""
        if not self.use_features:
            raise ValueError("cluster_features needs model.instance_feat=true")
        per_class: dict[int, list[torch.Tensor]] = {}
        with self.inference_mode():
            for i in range(len(dataset)):
                item = dataset[i]
                for cls, row in self.encode_instance_features(item["B"][None], item["inst"][None]):
                    if 0 <= cls < self.label_nc and row[-1] > 0.5:
                        per_class.setdefault(cls, []).append(row[:-1])
        self.feat_centers.zero_()
        self.feat_counts.zero_()
        found = {}
        for cls, rows in sorted(per_class.items()):
            centres = kmeans(torch.stack(rows), self.n_clusters, seed=seed)
            self.feat_centers[cls, : len(centres)] = centres.to(self.feat_centers)
            self.feat_counts[cls] = len(centres)
            found[cls] = len(centres)
        return found

    def finish_training(self) -> None:
        """The training set's instance features clustered into ``feat_centers`` (with features
        and ``cluster_features_at_end``), so that the final checkpoint carries the centres.
        Every rank computes the same centres (same weights, data and seed)."""
        super().finish_training()
        dm = getattr(self.trainer, "datamodule", None)
        if self.use_features and self.cluster_features_at_end and hasattr(dm, "dataset"):
            found = self.cluster_features(dm.dataset("train", augment=False))
            log.info("pix2pixHD: feature clusters for %d classes", len(found))

    # ------------------------------------------------------------------ training
    def forward_pass(self, batch) -> dict[str, Any]:
        """The official ``forward``: encoded input, fake, and D's outputs on the detached fake
        and on the real photo (both with graphs to D, used by the D step after the G step)."""
        label, inst = self._split(batch)
        real = batch["B"]
        inp = self.encode_input(label, inst)
        g_in = inp
        with self._global_fixed():
            if self.use_features:
                g_in = torch.cat([inp, self.E(real, inst)], 1)
            fake = self.G(g_in)
        return {
            "inp": inp,
            "real": real,
            "fake": fake,
            # inp: one-hot labels, boundaries (and instance features): geometry only
            "pred_fake_D": self.discriminate(self.D, inp, fake.detach(), maps=(0,)),
            "pred_real": self.discriminate(self.D, inp, real, maps=(0,), real=True),
        }

    def generator_terms(self, f) -> dict[str, torch.Tensor]:
        pred_fake = self.discriminate(self.D, f["inp"], f["fake"], maps=(0,))
        terms = {"gan": self.gan([p[-1] for p in pred_fake], True)}
        if self.loss_weights.get("feat", 0):
            terms["feat"] = feature_matching_loss(pred_fake, f["pred_real"], self.D.n_layers)
        if self.vgg is not None:
            terms["vgg"] = self.vgg(f["fake"], f["real"])
        return terms

    def discriminator_terms(self, f) -> dict[str, torch.Tensor]:
        return {
            "D_real": self.gan([p[-1] for p in f["pred_real"]], True),
            "D_fake": self.gan([p[-1] for p in f["pred_fake_D"]], False),
        }

    def training_step(self, batch, batch_idx):
        with self._global_fixed():
            f = self.forward_pass(batch)
            loss_G = self.optimize("G", lambda: self.weigh(self.generator_terms(f)))
        loss_D = self.optimize("D", lambda: self.weigh(self.discriminator_terms(f)))
        self.log_dict({"train/G": loss_G, "train/D": loss_D}, prog_bar=True)

    # ------------------------------------------------------------------ evaluation and grids
    def grid_inputs(self, batch, direction):
        """(what ``translate`` takes, what a sample grid shows as the input) of a batch."""
        if "label" not in batch:
            return None
        label = batch["label"]
        shown = self.palette.to(label.device)[label.long().clamp(0, self.label_nc - 1)].permute(0, 3, 1, 2)
        return {"label": label, "inst": batch.get("inst")}, shown

    def _evaluate(self, batch, stage: str) -> None:
        if "label" not in batch or "B" not in batch:
            return
        fake = self.translate({"label": batch["label"], "inst": batch.get("inst")})
        target = batch["B"].to(fake)
        mse01 = ((fake - target) / 2).pow(2).flatten(1).mean(1).clamp_min(1e-10)
        scores = {"l1": (fake - target).abs().mean(), "psnr": (10 * torch.log10(1.0 / mse01)).mean()}
        self.log_dict(
            {f"{stage}/a2b/{k}": v for k, v in scores.items()},
            batch_size=fake.shape[0],
            sync_dist=True,
            on_epoch=True,
        )
