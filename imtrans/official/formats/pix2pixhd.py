"""pix2pixHD checkpoints of NVIDIA/pix2pixHD.

The official code saves one raw state dict per network in ``checkpoints/<name>/``:
``<epoch>_net_G.pth`` (``GlobalGenerator`` or ``LocalEnhancer``), ``<epoch>_net_D.pth``
(``MultiscaleDiscriminator``) and, with ``--instance_feat``, ``<epoch>_net_E.pth`` (the feature
``Encoder``); ``<epoch>`` is ``latest`` or an epoch number. ``iter.txt`` holds the (epoch,
epoch_iter) that ``--continue_train`` resumes from (it describes the ``latest`` files);
``encode_features.py`` writes the k-means centres of the instance features to
``features_clustered_010.npy`` (``np.save`` of ``{label: ndarray(k <= 10, feat_num)}``). No
optimizer states are saved.

PATH is one such file (then only that network is imported) or the checkpoint folder
(``latest`` when present, else the highest epoch, as ``--which_epoch latest`` resumes; ``epoch=``
picks another). The published ``label2city_1024p/latest_net_G.pth`` is a LocalEnhancer G alone:
D (and E) are then initialised fresh. Files of PyTorch <= 0.3 carry InstanceNorm statistics,
dropped as the official non-strict loader ignores them.

Architecture options read from the shapes: netG (global / local: ``model1_*`` keys), ngf,
n_downsample_global, n_blocks_global, n_blocks_local, output_nc, ndf, n_layers_D, num_D, D with
or without intermediate features (``scale<s>_layer<l>`` vs ``layer<s>``: ``--no_ganFeat_loss``),
E's nef, n_downsample_E and feat_num. The G input has ``label_nc + instance + feat_num``
channels (one-hot labels, instance edges, features), which the G alone cannot split; the rule:

- feat_num: E's output channels when E is there; else G input - D condition channels (the D sees
  ``label_nc + instance + output_nc``, never the features) when D is there; else the ``feat_num=``
  option (default 0, no features). These must agree when several are given.
- instance: the ``instance=`` option; else what ``label_nc=`` leaves (0 or 1 channel); else true
  (the official default, and the published model's setting). label_nc is the rest.
"""

from __future__ import annotations

import io
import pickle
import re
import warnings
from pathlib import Path

import numpy as np
import torch

from imtrans.official import (
    Imported,
    Network,
    OfficialFormatError,
    Rules,
    load_error,
    read_file,
    state_dict_in,
)
from imtrans.official.layers import (
    find_snapshot,
    indices,
    patch_discriminator_options,
    patch_discriminator_rules,
    resnet_generator_options,
    resnet_generator_rules,
    tensor,
)

OPTIONS = {
    "epoch": "which snapshot of a checkpoint folder: latest (default) or an epoch number",
    "label_nc": "number of label classes, when the files cannot tell it from the instance channel",
    "instance": "true (default) or false: whether the G input has the instance-edge channel",
    "feat_num": "feature channels of a G imported without E and D (default 0: no features)",
    "clusters": "the features_clustered_*.npy file (default: features_clustered_010.npy of the folder)",
}
NETWORKS = ("G", "D", "E")
#: encode_features.py's output for the default --n_clusters 10 (the default --cluster_path)
CLUSTERS = "features_clustered_010.npy"


# ----------------------------------------------------------------------------- files
def find_files(path: Path, epoch: str | None = None) -> tuple[dict[str, Path], str | None]:
    """``({network: file}, snapshot label)`` of a file (label None when renamed) or folder."""
    return find_snapshot(path, NETWORKS, epoch)


def read_iter(path: Path) -> tuple[int, int]:
    """``iter.txt``: ``np.savetxt((epoch, epoch_iter), delimiter=',', fmt='%d')``."""
    try:
        values = [int(v) for v in re.split(r"[,\s]+", path.read_text().strip()) if v]
    except (ValueError, UnicodeDecodeError):
        values = []
    if len(values) != 2:
        raise OfficialFormatError(f"{path}: expected two integers (epoch, epoch_iter)")
    return values[0], values[1]


# ----------------------------------------------------------------------------- clusters
class _ArraysOnly(pickle.Unpickler):
    """Unpickles plain numpy arrays and containers; any other global is refused (a pickle can
    run arbitrary code, and a cluster file needs nothing else)."""

    ALLOWED = {
        (module, name)
        for module in ("numpy.core.multiarray", "numpy._core.multiarray")
        for name in ("_reconstruct", "scalar")
    } | {("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        with warnings.catch_warnings():  # numpy 2 renamed numpy.core (old files name it)
            warnings.simplefilter("ignore")
            return super().find_class(module, name)


def load_clusters(path: Path) -> dict:
    """The dict ``{label: ndarray(k, feat_num)}`` of a cluster file, unpickled with numpy
    arrays as the only globals allowed (``np.load(allow_pickle=True)`` would run any pickle)."""
    from numpy.lib import format as npy

    if not path.is_file():
        raise OfficialFormatError(f"{path}: no such cluster file")
    try:
        with open(path, "rb") as f:
            version = npy.read_magic(f)
            if version not in ((1, 0), (2, 0)):
                raise ValueError(f"npy format version {version}, np.save writes 1.0 or 2.0 for a dict")
            read_header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
            shape, _, dtype = read_header(f)
            if dtype != np.dtype(object) or shape != ():
                raise OfficialFormatError(
                    f"{path}: a {dtype} array of shape {shape}, not the pickled dict "
                    "{label: centres} that encode_features.py saves"
                )
            obj = _ArraysOnly(io.BytesIO(f.read()), encoding="latin1").load()
    except OfficialFormatError:
        raise
    except Exception as err:  # bad magic, truncated, refused global: all one message
        raise OfficialFormatError(
            f"{path}: not a readable cluster file (.npy of a dict: {load_error(err)})"
        ) from None
    centres = obj.item() if isinstance(obj, np.ndarray) and obj.shape == () else obj
    if not isinstance(centres, dict):
        raise OfficialFormatError(f"{path}: holds a {type(centres).__name__}, not a dict {{label: centres}}")
    return centres


def cluster_buffers(
    centres: dict, path: Path, label_nc: int, feat_num: int, n_clusters: int
) -> dict[str, torch.Tensor]:
    """The buffers ``feat_centers`` (label_nc x n_clusters x feat_num float32: row j < k of a
    class is its j-th centre, the rest 0) and ``feat_counts`` (label_nc int64: k, 0 for a class
    without centres) that ``sample_features`` draws from as the official ``sample_features``
    does: a uniformly chosen centre of the instance's class, per instance."""
    feat_centers = torch.zeros(label_nc, n_clusters, feat_num)
    feat_counts = torch.zeros(label_nc, dtype=torch.long)
    for label, value in centres.items():
        is_id = isinstance(label, (int, np.integer)) and not isinstance(label, bool)
        if not is_id or not 0 <= int(label) < label_nc:
            raise OfficialFormatError(f"{path}: label {label!r} is not a class id in [0, {label_nc})")
        if (
            not isinstance(value, np.ndarray)
            or value.dtype.kind not in "fiu"
            or value.ndim != 2
            or value.shape[1] != feat_num
            or value.shape[0] > n_clusters
        ):
            what = f"shape {value.shape}" if isinstance(value, np.ndarray) else f"a {type(value).__name__}"
            raise OfficialFormatError(
                f"{path}: label {int(label)}: centres of {what}, expected k x {feat_num} with k <= {n_clusters}"
            )
        k = value.shape[0]
        feat_centers[int(label), :k] = torch.from_numpy(np.asarray(value, dtype=np.float32))
        feat_counts[int(label)] = k
    return {"feat_centers": feat_centers, "feat_counts": feat_counts}


def cluster_count(path: Path, centres: dict) -> int:
    """``n_clusters`` of a cluster file: the number in its name (``_clustered_%03d``, else the
    official default 10), or more if a class has more centres."""
    m = re.fullmatch(r".*_clustered_(\d+)\.npy", path.name)
    most = max((v.shape[0] for v in centres.values() if isinstance(v, np.ndarray) and v.ndim == 2), default=0)
    return max(int(m.group(1)) if m else 10, most)


# ----------------------------------------------------------------------------- networks
def _refuse_batchnorm(sd, file: Path) -> None:
    """``--norm batch`` nets keep affine weights next to their statistics; imtrans' pix2pixHD
    builds InstanceNorm (and the official test runs BatchNorm in train mode, which would not
    reproduce anyway)."""
    for key in sd:
        prefix, _, leaf = key.rpartition(".")
        if leaf == "running_mean" and f"{prefix}.weight" in sd:
            raise OfficialFormatError(
                f"{file}: key {key!r} is a BatchNorm statistic (--norm batch); only --norm instance is supported"
            )


def _generator(sd, file: Path) -> tuple[dict, Rules]:
    """Options and rules of a GlobalGenerator (H1) or LocalEnhancer (H2)."""
    if any(k.startswith("scale0_layer") or re.match(r"layer\d+\.", k) for k in sd):
        raise OfficialFormatError(f"{file}: holds a discriminator, but its name says G")
    enhancers = indices(sd, r"model(\d+)_[12]\..*")
    if enhancers and enhancers != [1]:
        raise OfficialFormatError(
            f"{file}: {max(enhancers)} local enhancers (model{max(enhancers)}_* keys); imtrans has one (n_local_enhancers 1)"
        )
    trunk = resnet_generator_options(sd, file)
    if trunk["dropout"]:
        raise OfficialFormatError(
            f"{file}: residual blocks with dropout (conv_block.6): not a pix2pixHD generator"
        )
    n_down, n_blocks = trunk["n_down"], trunk["n_blocks"]
    up = 4 + 3 * n_down + n_blocks  # first up conv (layers.resnet_generator_rules)
    opts = {
        "netG": "global",
        "input_nc": trunk["input_nc"],
        "ngf": trunk["ngf"],
        "n_downsample_global": n_down,
        "n_blocks_global": n_blocks,
    }
    if not enhancers:
        final = up + 3 * n_down + 1
        if trunk["final_position"] != final:
            raise OfficialFormatError(
                f"{file}: no output conv 'model.{final}.weight' after {n_down} up levels "
                f"(last conv at model.{trunk['final_position']}): no GlobalGenerator layout"
            )
        opts["output_nc"] = trunk["output_nc"]
        return opts, resnet_generator_rules(n_down, n_blocks)
    # LocalEnhancer: model = the global trunk (2 ngf, output layers removed),
    # model1_1 = pad 0, conv 1, norm, relu, conv 4 (stride 2); model1_2 = n residual blocks,
    # transposed conv n, norm, relu, pad, conv n + 4, tanh
    first = tensor(sd, "model1_1.1.weight", file)
    ngf = int(first.shape[0])
    if trunk["ngf"] != 2 * ngf:
        raise OfficialFormatError(
            f"{file}: global trunk 'model.1.weight' has {trunk['ngf']} filters, the local "
            f"branch {ngf}; a LocalEnhancer's trunk has 2 x ngf"
        )
    if trunk["final_position"] != up + 3 * (n_down - 1):
        raise OfficialFormatError(
            f"{file}: the global trunk ends at model.{trunk['final_position']}, a LocalEnhancer's "
            f"trunk at model.{up + 3 * (n_down - 1)} (its output layers are removed)"
        )
    n_local = len(indices(sd, r"model1_2\.(\d+)\.conv_block\..*"))
    out = tensor(sd, f"model1_2.{n_local + 4}.weight", file)
    opts.update(
        netG="local",
        ngf=ngf,
        n_blocks_local=n_local,
        output_nc=int(out.shape[0]),
    )
    rules = list(resnet_generator_rules(n_down, n_blocks, final=False))
    rules += [
        (r"model1_1\.1\.(weight|bias)", r"model1_1.0.1.\1"),
        (r"model1_1\.4\.(weight|bias)", r"model1_1.1.0.\1"),
        (r"model1_2\.(\d+)\.conv_block\.1\.(weight|bias)", r"model1_2.\1.body.0.1.\2"),
        (r"model1_2\.(\d+)\.conv_block\.5\.(weight|bias)", r"model1_2.\1.body.1.1.\2"),
        (rf"model1_2\.{n_local}\.(weight|bias)", rf"model1_2.{n_local}.0.\1"),
        (rf"model1_2\.{n_local + 4}\.(weight|bias)", rf"model1_2.{n_local + 1}.1.\1"),
    ]
    return opts, rules


def _discriminator(sd, file: Path) -> tuple[dict, Rules]:
    """Options and rules of a MultiscaleDiscriminator (H3); ``layer<s>.<i>`` keys are the
    flat layout of ``--no_ganFeat_loss`` (getIntermFeat off, the same layers)."""
    if any("conv_block" in k for k in sd):
        raise OfficialFormatError(f"{file}: holds a generator, but its name says D")
    scales = indices(sd, r"scale(\d+)_layer\d+\..*")
    flat = indices(sd, r"layer(\d+)\..*")
    if scales:
        stages = indices(sd, r"scale0_layer(\d+)\..*")
        n_layers = len(stages) - 2
        first = tensor(sd, "scale0_layer0.0.weight", file)
        if n_layers < 1 or stages != list(range(n_layers + 2)) or scales != list(range(len(scales))):
            raise OfficialFormatError(
                f"{file}: scales {scales} with layers {stages} fit no MultiscaleDiscriminator layout"
            )
        rules: list = []
        for s in scales:
            for stage in range(n_layers + 1):
                rules.append(
                    (rf"scale{s}_layer{stage}\.0\.(weight|bias)", rf"scales.{s}.stages.{stage}.0.\1")
                )
            last = n_layers + 1
            rules.append((rf"scale{s}_layer{last}\.0\.(weight|bias)", rf"scales.{s}.stages.{last}.\1"))
        intermediate = True
    elif flat:
        d = patch_discriminator_options(sd, file, official="layer0")
        n_layers, first, scales = d["n_layers"], sd["layer0.0.weight"], flat
        if scales != list(range(len(scales))):
            raise OfficialFormatError(f"{file}: scales {scales} fit no MultiscaleDiscriminator layout")
        rules = [
            r
            for s in scales
            for r in patch_discriminator_rules(n_layers, official=f"layer{s}", ours=f"scales.{s}.stages")
        ]
        intermediate = False
    else:
        raise OfficialFormatError(
            f"{file}: no 'scale<s>_layer<l>.*' or 'layer<s>.*' keys: not a MultiscaleDiscriminator "
            f"(first key {next(iter(sd))!r}; the wrong METHOD for this file?)"
        )
    opts = {
        "ndf": int(first.shape[0]),
        "input_nc": int(first.shape[1]),
        "n_layers_D": n_layers,
        "num_D": len(scales),
        "no_ganFeat_loss": not intermediate,
    }
    return opts, rules


def _encoder(sd, file: Path) -> tuple[dict, Rules]:
    """Options and rules of the feature Encoder (H1 layout without residual blocks): convs at
    1, 4 + 3i (n down, n up levels), 4 + 6n + 1."""
    if any("conv_block" in k for k in sd):
        raise OfficialFormatError(f"{file}: holds a generator (residual blocks), but its name says E")
    first = tensor(sd, "model.1.weight", file)
    convs = indices(sd, r"model\.(\d+)\.weight")
    n_down = (len(convs) - 2) // 2
    expected = [1] + [4 + 3 * i for i in range(2 * n_down)] + [5 + 6 * n_down]
    if n_down < 1 or convs != expected:
        raise OfficialFormatError(f"{file}: convolutions at positions {convs} fit no Encoder layout")
    opts = {
        "nef": int(first.shape[0]),
        "input_nc": int(first.shape[1]),
        "n_downsample_E": n_down,
        "feat_num": int(sd[f"model.{expected[-1]}.weight"].shape[0]),
    }
    return opts, resnet_generator_rules(n_down, 0)


# ----------------------------------------------------------------------------- options
def _int_option(name: str, value) -> int | None:
    if value is None:
        return None
    try:
        return int(str(value))
    except ValueError:
        raise OfficialFormatError(f"{name}={value}: expected an integer") from None


def _bool_option(name: str, value) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    text = str(value).lower()
    if text not in ("true", "false", "1", "0", "yes", "no"):
        raise OfficialFormatError(f"{name}={value}: expected true or false")
    return text in ("true", "1", "yes")


def split_input(
    g_in: int,
    file: Path,
    *,
    e_feat: int | None,
    d_cond: int | None,
    label_nc: int | None,
    instance: bool | None,
    feat_num: int | None,
) -> tuple[int, bool, int]:
    """(label_nc, instance, feat_num) of a G input of ``g_in`` channels (the module docstring's rule)."""
    told = {
        k: v
        for k, v in (
            ("E", e_feat),
            ("D", None if d_cond is None else g_in - d_cond),
            ("the feat_num option", feat_num),
        )
        if v is not None
    }
    if len(set(told.values())) > 1:
        raise OfficialFormatError(
            f"{file}: the feature channels disagree: "
            + ", ".join(f"{k} says {v}" for k, v in told.items())
            + f" (G input {g_in} = label_nc + instance + feat_num)"
        )
    feats = next(iter(told.values()), 0)
    cond = g_in - feats
    if instance is None:
        instance = True if label_nc is None else cond - label_nc == 1
    if label_nc is None:
        label_nc = cond - int(instance)
    if feats < 0 or label_nc < 1 or label_nc + int(instance) + feats != g_in:
        raise OfficialFormatError(
            f"{file}: G input of {g_in} channels does not split into label_nc {label_nc} + "
            f"instance {int(instance)} + feat_num {feats}"
        )
    if feats and not instance:
        raise OfficialFormatError(
            f"{file}: features without instance maps (--label_feat / --no_instance): imtrans' "
            "pix2pixHD encodes features per instance only"
        )
    return label_nc, bool(instance), feats


# ----------------------------------------------------------------------------- read
def read(
    path: Path,
    epoch: str | None = None,
    label_nc=None,
    instance=None,
    feat_num=None,
    clusters: str | None = None,
) -> Imported:
    label_nc, feat_num = _int_option("label_nc", label_nc), _int_option("feat_num", feat_num)
    instance = _bool_option("instance", instance)
    if label_nc is not None and label_nc < 1:
        raise OfficialFormatError(
            f"label_nc={label_nc}: imtrans' pix2pixHD translates label maps (--label_nc 0 feeds images)"
        )
    files, label = find_files(path, epoch)
    if "G" not in files:
        raise OfficialFormatError(f"{path}: no generator file (latest_net_G.pth ...)")
    networks, found = {}, {}
    for name, parse in (("G", _generator), ("D", _discriminator), ("E", _encoder)):
        if name not in files:
            continue
        file = files[name]
        sd = state_dict_in(read_file(file), file)
        _refuse_batchnorm(sd, file)
        found[name], rules = parse(sd, file)
        networks[name] = Network(sd, rules, file)
    g, d, e = found["G"], found.get("D"), found.get("E")
    output_nc = g["output_nc"]
    d_cond = None if d is None else d["input_nc"] - output_nc
    label_nc, instance, feats = split_input(
        g["input_nc"],
        files["G"],
        e_feat=None if e is None else e["feat_num"],
        d_cond=d_cond,
        label_nc=label_nc,
        instance=instance,
        feat_num=feat_num,
    )
    if e is not None and e["input_nc"] != output_nc:
        raise OfficialFormatError(
            f"{files['E']}: encodes {e['input_nc']}-channel photos, the G makes {output_nc} channels"
        )
    options = {
        **{k: v for k, v in g.items() if k != "input_nc"},
        "label_nc": label_nc,
        "no_instance": not instance,
        "instance_feat": bool(feats),
        "feat_num": feats,
    }
    overrides = [
        "model=pix2pixhd",
        # the labels data module: label maps (+ instance maps) -> photos; the model reads
        # label_nc / use_instance / output_nc from it
        "data=labels",
        f"data.label_nc={label_nc}",
        f"data.use_instance={str(instance).lower()}",
        f"data.output_nc={output_nc}",
        f"model.netG={g['netG']}",
        f"model.generator.ngf={g['ngf']}",
        f"model.generator.n_downsample={g['n_downsample_global']}",
        f"model.generator.n_blocks={g['n_blocks_global']}",
    ]
    if g["netG"] == "local":
        overrides.append(f"model.generator.n_blocks_local={g['n_blocks_local']}")
    if d is not None:
        options.update({k: v for k, v in d.items() if k != "input_nc"})
        overrides += [
            f"model.discriminator.ndf={d['ndf']}",
            f"model.discriminator.n_layers={d['n_layers_D']}",
            f"model.discriminator.num_D={d['num_D']}",
        ]
        if d["no_ganFeat_loss"]:
            overrides.append("loss.weights.feat=0")  # --no_ganFeat_loss trained without it
    if e is not None:
        options.update(nef=e["nef"], n_downsample_E=e["n_downsample_E"])
        overrides += [f"model.encoder.nef={e['nef']}", f"model.encoder.n_downsample={e['n_downsample_E']}"]
    notes, buffers = [], {}
    if feats:
        overrides += ["model.instance_feat=true", f"model.feat_num={feats}"]
        folder = path if path.is_dir() else path.parent
        cluster_file = Path(clusters).expanduser() if clusters else folder / CLUSTERS
        if clusters or cluster_file.is_file():
            centres = load_clusters(cluster_file)
            n_clusters = cluster_count(cluster_file, centres)
            buffers = cluster_buffers(centres, cluster_file, label_nc, feats, n_clusters)
            overrides.append(f"model.n_clusters={n_clusters}")
            options["cluster_path"] = cluster_file.name
            notes.append(
                f"feature clusters from {cluster_file.name} for {int((buffers['feat_counts'] > 0).sum())} "
                "classes: translate(num_samples=S) draws a centre per instance as test.py does"
            )
        else:
            notes.append(
                f"no {CLUSTERS}: translate draws zero features until clustered (reference= encodes a photo with E)"
            )
    elif clusters:
        raise OfficialFormatError(f"clusters={clusters}: this generator takes no features (feat_num 0)")
    if label is not None:
        options["which_epoch"] = label
    iter_txt = (path if path.is_dir() else path.parent) / "iter.txt"
    if label == "latest" and iter_txt.is_file():
        # iter.txt is rewritten with each 'latest' save; other epochs' files are older
        options["epoch"], options["epoch_iter"] = read_iter(iter_txt)
        notes.append(f"iter.txt: epoch {options['epoch']}, epoch_iter {options['epoch_iter']}")
    if "D" not in networks:
        notes.append(
            "no D file: the discriminator starts fresh with the model config's ndf / n_layers / num_D"
        )
    return Imported(
        overrides=overrides,
        networks=networks,
        sources=[files[n] for n in NETWORKS if n in files] + ([cluster_file] if buffers else []),
        official_options=options,
        buffers=buffers,
        notes=notes,
    )
