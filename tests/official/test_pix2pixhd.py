"""pix2pixHD official checkpoints (NVIDIA): outputs equal to the official ones, the newest
snapshot and iter.txt, feature clusters (features_clustered_010.npy) into the sampling buffers,
the encoder, the flat D of --no_ganFeat_loss, legacy InstanceNorm statistics, bad inputs with
their one-line errors, the rename rules at the paper configuration, fine-tuning."""

from __future__ import annotations

import io
import json
import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from imtrans.load import load_model
from imtrans.nets.pix2pixhd import GlobalGenerator, LocalEnhancer
from imtrans.official import OfficialFormatError, rename_keys
from imtrans.official.formats import pix2pixhd as fmt
from tests.official.helpers import (
    ATOL,
    assert_finetuned,
    cases,
    do_import,
    finetune,
    fixture,
    import_error,
    key_table,
    max_diff,
    translate_case,
)

FIX = fixture("pix2pixhd")
REPO = Path(__file__).resolve().parents[2]
CASE = cases(FIX)["a2b"]


def sd_of(name: str) -> dict:
    return torch.load(FIX / f"latest_net_{name}.pth", weights_only=True)


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    return do_import("pix2pixhd", FIX, tmp_path_factory.mktemp("hd") / "run")


def test_folder_import_matches_the_official_output(imported):
    module = load_model(imported)
    for name, case in cases(FIX).items():
        assert max_diff(translate_case(module, case), case["output"]) < ATOL, name
    record = json.loads((imported / "import.json").read_text())
    assert record["networks_imported"] == ["D", "G"] and record["networks_fresh"] == []
    opts = record["official_options"]
    assert (opts["netG"], opts["ngf"], opts["n_downsample_global"], opts["n_blocks_global"]) == (
        "global",
        2,
        4,
        3,
    )
    assert (opts["label_nc"], opts["no_instance"], opts["feat_num"]) == (8, False, 0)
    assert (opts["ndf"], opts["n_layers_D"], opts["num_D"]) == (4, 3, 2)
    assert (opts["which_epoch"], opts["epoch"], opts["epoch_iter"]) == ("latest", 1, 0)  # iter.txt
    assert "data.label_nc=8" in record["overrides"] and "data.use_instance=true" in record["overrides"]
    assert module.label_nc == 8 and module.use_instance and module.G.model[0][1].in_channels == 9


def _snapshots(folder: Path, labels) -> None:
    folder.mkdir(parents=True)
    for label in labels:
        for name in ("G", "D"):
            shutil.copy(FIX / f"latest_net_{name}.pth", folder / f"{label}_net_{name}.pth")
    shutil.copy(FIX / "iter.txt", folder / "iter.txt")


def _files(out: Path) -> list[str]:
    return [Path(f["path"]).name for f in json.loads((out / "import.json").read_text())["files"]]


def test_newest_snapshot_as_the_official_resume_and_epoch_option(tmp_path):
    folder = tmp_path / "checkpoints" / "label2city"
    _snapshots(folder, ["5", "10"])  # no latest: the highest epoch (10 > 5, not by name)
    out = do_import("pix2pixhd", folder, tmp_path / "a")
    assert _files(out) == ["10_net_G.pth", "10_net_D.pth"]
    # iter.txt describes the 'latest' files only
    assert "epoch_iter" not in json.loads((out / "import.json").read_text())["official_options"]
    _snapshots(tmp_path / "c2", ["5", "latest"])
    assert _files(do_import("pix2pixhd", tmp_path / "c2", tmp_path / "b")) == [
        "latest_net_G.pth",
        "latest_net_D.pth",
    ]
    assert _files(do_import("pix2pixhd", folder, tmp_path / "c", epoch="5")) == ["5_net_G.pth", "5_net_D.pth"]
    with pytest.raises(OfficialFormatError, match=r"no snapshot '7'; snapshots: 5, 10"):
        do_import("pix2pixhd", folder, tmp_path / "d", epoch="7")


def test_single_generator_file_with_fresh_discriminator(tmp_path):
    out = do_import("pix2pixhd", FIX / "latest_net_G.pth", tmp_path / "g")
    record = json.loads((out / "import.json").read_text())
    assert record["networks_fresh"] == ["D"]
    assert max_diff(load_model(out).translate(CASE["input"]), CASE["output"]) < ATOL


def _feature_g(feat_num: int = 3) -> dict:
    """The fixture G with feat_num more input channels: a G trained with --instance_feat."""
    g = dict(sd_of("G"))
    w = g["model.1.weight"]
    extra = torch.randn(w.shape[0], feat_num, *w.shape[2:], generator=torch.Generator().manual_seed(3)) * 0.02
    g["model.1.weight"] = torch.cat([w, extra], 1)
    return g


def _official_encoder(nef=2, n_down=2, feat_num=3, input_nc=3) -> dict:
    """An Encoder state dict in the official layout (pad, conv 1, then a conv every 3 positions
    for n_down down and n_down up levels, pad, conv 5 + 6 n_down), seeded random weights."""
    g = torch.Generator().manual_seed(5)
    layers = {1: (input_nc, nef, 7)}  # position: (in, out, kernel)
    ch = nef
    for i in range(n_down):
        layers[4 + 3 * i] = (ch, 2 * ch, 3)
        ch *= 2
    for i in range(n_down):
        layers[4 + 3 * (n_down + i)] = (ch, ch // 2, 3)
        ch //= 2
    layers[5 + 6 * n_down] = (ch, feat_num, 7)
    sd = {}
    for pos, (cin, cout, k) in layers.items():
        transposed = 4 + 3 * n_down <= pos < 4 + 6 * n_down  # ConvTranspose2d weights: in x out
        shape = (cin, cout, k, k) if transposed else (cout, cin, k, k)
        sd[f"model.{pos}.weight"] = torch.randn(shape, generator=g) * 0.02
        sd[f"model.{pos}.bias"] = torch.randn(cout, generator=g) * 0.02
    return sd


def test_feature_clusters_fill_the_sampling_buffers(tmp_path):
    """features_clustered_010.npy (np.save of {label: k x feat_num}, written here as
    encode_features.py writes it) becomes feat_centers/feat_counts; translate(num_samples)
    gives each instance one centre of its class, as the official sample_features."""
    folder = tmp_path / "feat"
    folder.mkdir()
    torch.save(_feature_g(), folder / "latest_net_G.pth")
    shutil.copy(FIX / "latest_net_D.pth", folder / "latest_net_D.pth")
    torch.save(_official_encoder(), folder / "latest_net_E.pth")
    rng = np.random.default_rng(0)
    centres = {0: rng.normal(size=(10, 3)), 5: rng.normal(size=(4, 3)), 7: rng.normal(size=(1, 3))}
    np.save(folder / fmt.CLUSTERS, centres)
    out = do_import("pix2pixhd", folder, tmp_path / "run")
    record = json.loads((out / "import.json").read_text())
    assert record["buffers_imported"] == ["feat_centers", "feat_counts"]
    assert record["networks_imported"] == ["D", "E", "G"]
    assert record["official_options"]["feat_num"] == 3 and record["official_options"]["nef"] == 2
    assert Path(record["files"][-1]["path"]).name == fmt.CLUSTERS
    module = load_model(out)
    assert module.use_features and module.n_clusters == 10
    assert module.feat_counts.tolist() == [10, 0, 0, 0, 0, 4, 0, 1]
    for label, value in centres.items():
        assert torch.equal(module.feat_centers[label, : len(value)], torch.from_numpy(value).float())
        assert not module.feat_centers[label, len(value) :].any()
    # E loaded: its first conv is the file's
    assert torch.equal(module.E.model[0][1].weight, torch.load(folder / "latest_net_E.pth")["model.1.weight"])
    # sampling: every instance gets one official centre of its class; other classes 0
    inst = CASE["input"]["inst"][:1]
    torch.manual_seed(0)
    for _ in range(3):
        feat = module.sample_features(inst)
        for i in inst.unique().tolist():
            label = i if i < 1000 else i // 1000
            values = feat.permute(0, 2, 3, 1)[inst == i]
            assert torch.equal(values, values[:1].expand_as(values))  # one centre per instance
            if label in centres:
                rows = torch.from_numpy(centres[label]).float()
                assert (rows == values[0]).all(1).any(), i
            else:
                assert not values.any()
    samples = module.translate(CASE["input"], num_samples=2)
    assert samples.shape == (2, 2, 3, 64, 128) and torch.isfinite(samples).all()


def test_cluster_file_is_read_safely_and_checked(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("a pickle may run code",))

    def npy(name, obj):
        path = tmp_path / name
        with open(path, "wb") as f:
            np.lib.format.write_array_header_1_0(f, {"descr": "|O", "fortran_order": False, "shape": ()})
            pickle.dump(np.array(obj, dtype=object), f)
        return path

    evil = npy("evil.npy", {1: Payload()})
    with pytest.raises(OfficialFormatError) as info:
        fmt.load_clusters(evil)
    assert (
        str(info.value)
        == f"{evil}: not a readable cluster file (.npy of a dict: refused global builtins.print)"
    )
    plain = tmp_path / "plain.npy"
    np.save(plain, np.zeros((3, 3)))
    with pytest.raises(
        OfficialFormatError, match=r"plain.npy: a float64 array of shape \(3, 3\), not the pickled dict"
    ):
        fmt.load_clusters(plain)
    cut = tmp_path / "cut.npy"
    buf = io.BytesIO()
    np.save(buf, {1: np.zeros((2, 3))})
    cut.write_bytes(buf.getvalue()[:-20])
    with pytest.raises(OfficialFormatError, match="cut.npy: not a readable cluster file"):
        fmt.load_clusters(cut)
    wrong = {1: np.zeros((2, 4))}
    with pytest.raises(
        OfficialFormatError, match=r"label 1: centres of shape \(2, 4\), expected k x 3 with k <= 10"
    ):
        fmt.cluster_buffers(wrong, cut, 8, 3, 10)
    with pytest.raises(OfficialFormatError, match=r"label 9 is not a class id in \[0, 8\)"):
        fmt.cluster_buffers({9: np.zeros((1, 3))}, cut, 8, 3, 10)
    # a bad file in the checkpoint folder stops the import before anything is written
    folder = tmp_path / "feat"
    folder.mkdir()
    torch.save(_feature_g(), folder / "latest_net_G.pth")
    shutil.copy(FIX / "latest_net_D.pth", folder / "latest_net_D.pth")
    shutil.copy(evil, folder / fmt.CLUSTERS)
    assert "refused global builtins.print" in _error(folder, tmp_path)


def test_discriminator_without_intermediate_features(tmp_path):
    """--no_ganFeat_loss: one flat Sequential per scale, 'layer<s>.<position>'."""
    n_layers = 3
    pos = {0: 0, **{n: 2 + 3 * (n - 1) for n in range(1, n_layers + 1)}, n_layers + 1: 2 + 3 * n_layers}
    flat = {}
    for key, value in sd_of("D").items():
        s, stage, leaf = re.fullmatch(r"scale(\d+)_layer(\d+)\.0\.(\w+)", key).groups()
        flat[f"layer{s}.{pos[int(stage)]}.{leaf}"] = value
    folder = tmp_path / "flat"
    folder.mkdir()
    shutil.copy(FIX / "latest_net_G.pth", folder / "latest_net_G.pth")
    torch.save(flat, folder / "latest_net_D.pth")
    out = do_import("pix2pixhd", folder, tmp_path / "run")
    record = json.loads((out / "import.json").read_text())
    assert "loss.weights.feat=0" in record["overrides"] and record["official_options"]["no_ganFeat_loss"]
    ours = load_model(out).D.state_dict()
    assert torch.equal(ours["scales.1.stages.4.bias"], sd_of("D")["scale1_layer4.0.bias"])
    assert torch.equal(ours["scales.0.stages.2.0.weight"], sd_of("D")["scale0_layer2.0.weight"])


def test_legacy_instance_norm_statistics_are_dropped(tmp_path):
    """PyTorch <= 0.3 saved running_mean/var for InstanceNorm layers (norm positions)."""
    g = dict(sd_of("G"))
    g["model.2.running_mean"] = torch.zeros(2)
    g["model.2.running_var"] = torch.ones(2)
    g["model.16.conv_block.2.running_mean"] = torch.zeros(32)
    torch.save(g, tmp_path / "latest_net_G.pth")
    out = do_import("pix2pixhd", tmp_path / "latest_net_G.pth", tmp_path / "run")
    record = json.loads((out / "import.json").read_text())
    assert record["dropped_keys"] == [
        "latest_net_G.pth: model.2.running_mean",
        "latest_net_G.pth: model.2.running_var",
        "latest_net_G.pth: model.16.conv_block.2.running_mean",
    ]
    assert max_diff(load_model(out).translate(CASE["input"]), CASE["output"]) < ATOL


def _error(path, tmp_path, **opts) -> str:
    return import_error("pix2pixhd", path, tmp_path, **opts)


def _save(tmp_path, name, sd=None, content=None) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if sd is not None:
        torch.save(sd, path)
    else:
        path.write_bytes(content)
    return path


def test_bad_inputs_give_one_line_and_write_nothing(tmp_path):
    g = sd_of("G")
    cut = _save(tmp_path, "cut_net_G.pth", content=(FIX / "latest_net_G.pth").read_bytes()[:4000])
    assert _error(cut, tmp_path).startswith(
        f"{cut}: not a readable PyTorch checkpoint (truncated or another format"
    )
    (tmp_path / "empty").mkdir()
    assert (
        _error(tmp_path / "empty", tmp_path)
        == f"{tmp_path / 'empty'}: no <epoch>_net_<G|D|E>.pth files in this folder"
    )
    only_d = _save(tmp_path, "d/latest_net_D.pth", sd=sd_of("D"))
    assert _error(only_d.parent, tmp_path) == f"{only_d.parent}: no generator file (latest_net_G.pth ...)"
    extra = _save(tmp_path, "x_net_G.pth", sd={**g, "model.16.conv_block.9.weight": torch.zeros(1)})
    assert (
        _error(extra, tmp_path)
        == f"{extra}: unmapped key 'model.16.conv_block.9.weight' (not a key of this method's networks)"
    )
    odd = _save(
        tmp_path, "odd_net_G.pth", sd={**g, "model.16.conv_block.5.weight": torch.zeros(32, 32, 5, 5)}
    )
    assert _error(odd, tmp_path) == (
        f"{odd}: key 'model.5.body.1.1.weight' has shape (32, 32, 5, 5), imtrans G built from the options "
        "read has (32, 32, 3, 3) (a shape that fits no option)"
    )
    # the wrong METHOD: CycleGAN's discriminator as G, pix2pixHD's D as G, a CycleGAN D as D
    cyclegan_d = fixture("cyclegan") / "latest_net_D_A.pth"
    if cyclegan_d.exists():
        as_g = _save(tmp_path, "cg/latest_net_G.pth", sd=torch.load(cyclegan_d, weights_only=True))
        assert _error(as_g, tmp_path) == (
            f"{as_g}: no key 'model.1.weight', which this method's network has (first key of the file: "
            "'model.0.weight'; the wrong METHOD for this file?)"
        )
        shutil.copy(FIX / "latest_net_G.pth", as_g.parent / "5_net_G.pth")
        shutil.copy(cyclegan_d, as_g.parent / "5_net_D.pth")
        assert _error(as_g.parent, tmp_path, epoch=5) == (
            f"{as_g.parent / '5_net_D.pth'}: no 'scale<s>_layer<l>.*' or 'layer<s>.*' keys: not a "
            "MultiscaleDiscriminator (first key 'model.0.weight'; the wrong METHOD for this file?)"
        )
    munit = fixture("munit") / "gen_00000001.pt"
    if munit.exists():  # a dict {'a': sd, 'b': sd}, not one network's state dict
        assert "not a state dict" in _error(munit, tmp_path)
    d_as_g = _save(tmp_path, "dg_net_G.pth", sd=sd_of("D"))
    assert _error(d_as_g, tmp_path) == f"{d_as_g}: holds a discriminator, but its name says G"
    # the G input does not split as the options say
    assert _error(FIX, tmp_path, label_nc=5) == (
        f"{FIX / 'latest_net_G.pth'}: G input of 9 channels does not split into label_nc 5 + instance 0 + feat_num 0"
    )
    assert _error(FIX, tmp_path, feat_num=3) == (
        f"{FIX / 'latest_net_G.pth'}: the feature channels disagree: D says 0, the feat_num option says 3 "
        "(G input 9 = label_nc + instance + feat_num)"
    )
    assert _error(FIX, tmp_path, instance="maybe") == "instance=maybe: expected true or false"
    batch = _save(
        tmp_path,
        "bn_net_G.pth",
        sd={**g, "model.2.weight": torch.ones(2), "model.2.running_mean": torch.zeros(2)},
    )
    assert _error(batch, tmp_path) == (
        f"{batch}: key 'model.2.running_mean' is a BatchNorm statistic (--norm batch); only --norm instance is supported"
    )


def test_options_split_the_generator_input():
    f = Path("G.pth")
    assert fmt.split_input(36, f, e_feat=None, d_cond=None, label_nc=None, instance=None, feat_num=None) == (
        35,
        True,
        0,
    )
    assert fmt.split_input(36, f, e_feat=None, d_cond=None, label_nc=36, instance=None, feat_num=None) == (
        36,
        False,
        0,
    )
    assert fmt.split_input(36, f, e_feat=None, d_cond=None, label_nc=None, instance=False, feat_num=None) == (
        36,
        False,
        0,
    )
    assert fmt.split_input(39, f, e_feat=3, d_cond=None, label_nc=None, instance=None, feat_num=None) == (
        35,
        True,
        3,
    )
    assert fmt.split_input(39, f, e_feat=None, d_cond=36, label_nc=None, instance=None, feat_num=None) == (
        35,
        True,
        3,
    )
    assert fmt.split_input(39, f, e_feat=None, d_cond=None, label_nc=None, instance=None, feat_num=3) == (
        35,
        True,
        3,
    )


@pytest.mark.parametrize(
    ("name", "parse"),
    [
        ("G_global512p", fmt._generator),
        ("G_local1024p", fmt._generator),
        ("D_numD3", fmt._discriminator),
        ("E", fmt._encoder),
    ],
)
def test_rules_map_the_paper_configuration_keys(name, parse):
    """Options read from the shapes alone (meta tensors) and the rules give the TSV's keys."""
    rows = key_table(f"pix2pixhd_{name}.tsv")
    sd = {official: torch.empty(shape, device="meta") for official, _, shape in rows}
    opts, rules = parse(sd, Path(name))
    renamed, dropped = rename_keys(sd, rules, Path(name))
    assert dropped == [] and list(renamed) == [ours for _, ours, _ in rows]
    expected = {
        "G_global512p": {
            "netG": "global",
            "ngf": 64,
            "n_downsample_global": 4,
            "n_blocks_global": 9,
            "input_nc": 36,
        },
        "G_local1024p": {
            "netG": "local",
            "ngf": 32,
            "n_blocks_global": 9,
            "n_blocks_local": 3,
            "output_nc": 3,
        },
        "D_numD3": {"ndf": 64, "n_layers_D": 3, "num_D": 3, "input_nc": 39},
        "E": {"nef": 16, "n_downsample_E": 4, "feat_num": 3, "input_nc": 3},
    }[name]
    assert {k: opts[k] for k in expected} == expected


def test_local_enhancer_file_imports_and_translates(tmp_path):
    """A small LocalEnhancer in the official key layout (the 1024p TSV's key correspondence,
    ngf 2): the import rebuilds netG local and computes the same function."""
    rows = key_table("pix2pixhd_G_local1024p.tsv")
    torch.manual_seed(0)
    ours = LocalEnhancer(9, 3, ngf=2, n_downsample=4, n_blocks=9, n_blocks_local=3)
    for p in ours.parameters():
        torch.nn.init.normal_(p, 0, 0.1)
    state = ours.state_dict()
    official = {o: state[i] for o, i, _ in rows}
    torch.save(official, tmp_path / "latest_net_G.pth")
    out = do_import("pix2pixhd", tmp_path, tmp_path / "run")
    record = json.loads((out / "import.json").read_text())
    assert (
        record["official_options"]["netG"] == "local"
        and "model.generator.n_blocks_local=3" in record["overrides"]
    )
    module = load_model(out)
    assert isinstance(module.G, LocalEnhancer) and not isinstance(module.G, GlobalGenerator)
    with torch.no_grad():
        expected = ours(module.encode_input(CASE["input"]["label"], CASE["input"]["inst"]))
    assert max_diff(module.translate(CASE["input"]), expected) == 0.0


def _label_data(root: Path) -> None:
    """The case's label and instance maps (ids 0..7, instances label*1000+k) with random photos."""
    g = torch.Generator().manual_seed(0)
    for split in ("train", "test"):
        for kind in ("label", "inst", "img"):
            (root / f"{split}_{kind}").mkdir(parents=True)
        for i in range(2 if split == "train" else 1):
            label = CASE["input"]["label"][i].numpy().astype(np.uint8)
            inst = CASE["input"]["inst"][i].numpy().astype(np.uint16)
            photo = (torch.rand(64, 128, 3, generator=g) * 255).byte().numpy()
            Image.fromarray(label).save(root / f"{split}_label" / f"{i}.png")
            Image.fromarray(inst).save(root / f"{split}_inst" / f"{i}.png")
            Image.fromarray(photo).save(root / f"{split}_img" / f"{i}.png")


def test_finetune_through_init_from(imported, tmp_path):
    root = tmp_path / "labels"
    _label_data(root)
    data = [
        "data=labels",
        f"data.root={root}",
        "data.load_size=128",
        "data.num_workers=0",
        "data.num_fixed=1",
        "data.val_size=1",
        "loss.weights.vgg=0",  # no VGG19 weights file needed
    ]
    before, ckpt, _ = finetune(imported, data, tmp_path / "ft")
    assert_finetuned(before, ckpt, ["G", "D"])
    assert int(ckpt["state_dict"]["_iteration"]) == 2
