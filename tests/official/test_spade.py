"""SPADE / GauGAN official checkpoints (NVlabs/SPADE): the converted networks reproduce the
official test-path outputs (VAE cases with the recorded eps), the official input building and
discriminate() outputs; spectral-norm u/v and BatchNorm counters kept as stored; options read
from opt.txt, from the importer options or the dataset presets; every option the files cannot
tell refused in one line when missing or contradicted (normal vs more)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from imtrans.nets.spade import reparameterize, semantic_map
from imtrans.official import OfficialFormatError
from imtrans.official.formats import spade as fmt
from tests.official.helpers import cases, fixture, max_diff

FIX = fixture("spade")
CITY, ADE = FIX / "cityscapes_small", FIX / "ade20k_vae_small"
#: the fixtures README: an independent implementation matches to 3.3e-6 (1.1e-5 full size)
ATOL = 1e-4


def official(folder: Path) -> dict[str, dict]:
    return {
        n: torch.load(folder / f"latest_net_{n}.pth", weights_only=True)
        for n in fmt.NETWORKS
        if (folder / f"latest_net_{n}.pth").is_file()
    }


def networks(folder: Path, **options) -> tuple[dict, dict]:
    """Our networks (eval mode, CPU) loaded from the folder's files through ``fmt.convert``
    with its opt.txt, and the model config."""
    sds, config = fmt.convert(official(folder), options, fmt.read_opt_txt(folder / "opt.txt"))
    nets = fmt.build_networks(config, "cpu")
    for name, net in nets.items():
        if name in sds:
            net.load_state_dict(sds[name], strict=True)
        net.eval()
    return nets, config


def semantics(folder: Path, case_input: dict) -> torch.Tensor:
    opts = fmt.read_opt_txt(folder / "opt.txt")
    nc = int(opts["label_nc"]) + (opts["contain_dontcare_label"] == "True")
    inst = None if opts["no_instance"] == "True" else case_input["inst"]
    return semantic_map(case_input["label"], nc, inst)


@pytest.mark.parametrize("folder", [CITY, ADE], ids=lambda p: p.name)
def test_cases_reproduce_the_official_outputs(folder):
    nets, _ = networks(folder)
    g, e = nets["netG"], nets.get("netE")
    with torch.no_grad():
        for name, case in cases(folder).items():
            seg = semantics(folder, case["input"])
            if e is None:
                out = g(seg)
            else:
                mu, logvar = e(case.get("image", case["reference"]))
                assert max_diff(mu, case["mu"]) < ATOL and max_diff(logvar, case["logvar"]) < ATOL, name
                # test.py draws eps inside; the case records it (a2b_testpy), or uses z = mu
                z = reparameterize(mu, logvar, case["eps"]) if "eps" in case else mu
                if "z" in case:
                    assert max_diff(z, case["z"]) < ATOL
                out = g(seg, z)
            assert out.shape == case["output"].shape
            assert max_diff(out, case["output"]) < ATOL, name
    assert set(cases(ADE)) == {"a2b_testpy", "a2b_mu"}


@pytest.mark.parametrize("folder", [CITY, ADE], ids=lambda p: p.name)
def test_input_building_is_exact(folder):
    ref = torch.load(folder / "preprocess.pt", weights_only=True)
    nc = ref["label_nc"] + int(ref["contain_dontcare_label"])
    sem = semantic_map(ref["label"], nc, None if ref["no_instance"] else ref["inst"])
    assert torch.equal(sem, ref["semantics"])


def test_discriminate_outputs_and_losses():
    """losses.pt: the official discriminate() on cat(fake pair, real pair), split in halves,
    and the hinge / feature-matching values those outputs give (lambda_feat 10, num_D 2)."""
    nets, config = networks(CITY)
    ref = torch.load(CITY / "losses.pt", weights_only=True)
    sem = semantic_map(ref["label"], config["label_nc"], ref["inst"])
    with torch.no_grad():
        pred = nets["netD"](torch.cat([torch.cat([sem, ref["fake"]], 1), torch.cat([sem, ref["real"]], 1)]))
    fake = [[o[:1] for o in scale] for scale in pred]
    real = [[o[1:] for o in scale] for scale in pred]
    assert [len(s) for s in fake] == [5, 5]
    for ours, theirs in ((fake, ref["pred_fake"]), (real, ref["pred_real"])):
        for s, scale in enumerate(theirs):
            for i, out in enumerate(scale):
                assert max_diff(ours[s][i], out) < ATOL, (s, i)
    # the official loss values (no VGG term), recomputed from our outputs
    num_d = len(pred)
    gan = sum(-f[-1].mean() for f in fake) / num_d
    feat = sum(F.l1_loss(f, r) for fs, rs in zip(fake, real) for f, r in zip(fs[:-1], rs[:-1])) * 10 / num_d
    d_fake = sum(F.relu(1 + f[-1]).mean() for f in fake) / num_d
    d_real = sum(F.relu(1 - r[-1]).mean() for r in real) / num_d
    for ours, theirs in (
        (gan, ref["G_losses"]["GAN"]),
        (feat, ref["G_losses"]["GAN_Feat"]),
        (d_fake, ref["D_losses"]["D_Fake"]),
        (d_real, ref["D_losses"]["D_real"]),
    ):
        assert abs(ours.item() - theirs.item()) < ATOL


def test_stored_spectral_vectors_and_norm_counters_are_kept():
    """Eval uses the stored u, v (no power iteration): they are loaded unchanged and stay so
    through an eval forward. num_batches_tracked is 0 in the files (SynchronizedBatchNorm2d never
    counts) and is loaded as it is; a file without it (PyTorch < 0.4.1) gets 0."""
    files = official(CITY)
    nets, _ = networks(CITY)
    g = nets["netG"]
    with torch.no_grad():
        g(semantics(CITY, cases(CITY)["a2b"]["input"]))
    state = g.state_dict()
    for key in ("up_0.conv_s.weight_u", "head_0.conv_0.weight_v", "up_3.conv_1.weight_u"):
        assert torch.equal(state[key], files["G"][key]), key
    counters = [k for k in files["G"] if k.endswith("num_batches_tracked")]
    assert len(counters) == 18 and all(files["G"][k] == 0 and state[k] == 0 for k in counters)
    d_key = "discriminator_1.model2.0.0.weight_u"
    assert torch.equal(nets["netD"].state_dict()[d_key], files["D"][d_key])
    old = {k: v for k, v in files["G"].items() if not k.endswith("num_batches_tracked")}
    sds, _ = fmt.convert({"G": old}, {}, fmt.read_opt_txt(CITY / "opt.txt"))
    assert all(sds["netG"][k] == 0 for k in counters)


def test_read_folder_takes_opt_txt_and_iter_txt():
    imported = fmt.read(CITY)
    opts = imported.official_options
    assert (opts["label_nc"], opts["contain_dontcare_label"], opts["no_instance"]) == (8, False, False)
    assert (opts["num_upsampling_layers"], opts["crop_size"], opts["aspect_ratio"]) == ("more", 128, 2.0)
    assert (opts["ngf"], opts["nhidden"], opts["ndf"], opts["n_layers_D"], opts["num_D"]) == (2, 8, 2, 4, 2)
    assert opts["latent_size_sh_sw"] == [1, 2] and opts["norm_G"] == "spectralspadesyncbatch3x3"
    assert (opts["which_epoch"], opts["epoch"], opts["epoch_iter"]) == ("latest", 1, 80)
    assert sorted(imported.networks) == ["netD", "netG"]
    assert "num_upsampling_layers more from opt.txt" in imported.notes
    assert {"model=spade", "model.generator.num_upsampling_layers=more", "model.encoder=null"} <= set(
        imported.overrides
    )
    vae = fmt.read(ADE)
    assert sorted(vae.networks) == ["netD", "netE", "netG"]
    assert vae.official_options["use_vae"] and vae.official_options["contain_dontcare_label"]
    assert "model.encoder._target_=imtrans.nets.spade.SPADEEncoder" in vae.overrides


def _alone(tmp_path: Path, folder: Path = CITY, name: str = "G") -> Path:
    """One official file in a folder without opt.txt (as the published downloads)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(folder / f"latest_net_{name}.pth", tmp_path / f"latest_net_{name}.pth"))


def _refused(path: Path, **options) -> str:
    with pytest.raises(OfficialFormatError) as info:
        fmt.read(path, **options)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_generator_alone_needs_the_options_the_files_lack(tmp_path):
    g = _alone(tmp_path)
    assert "do not say which are the dontcare and instance-edge channels" in _refused(g)
    assert "= label_nc 8 + 1" in _refused(g, label_nc="8")
    size = dict(label_nc="8", no_instance="false")
    assert "crop_size is not in the files" in _refused(g, **size, num_upsampling_layers="more")
    size.update(crop_size="128", aspect_ratio="2")
    assert "num_upsampling_layers is not in the files ('normal' and 'more'" in _refused(g, **size)
    assert "label_nc=35: " in _refused(g, dataset_mode="cityscapes")  # the published 35 classes, not 8
    imported = fmt.read(g, **size, num_upsampling_layers="more")
    assert (
        sorted(imported.networks) == ["netG"] and imported.official_options["contain_dontcare_label"] is False
    )
    assert any(n.startswith("no D file") for n in imported.notes)
    with pytest.raises(OfficialFormatError, match=r"crop_size=abc: expected an integer"):
        fmt.read(g, **{**size, "crop_size": "abc"}, num_upsampling_layers="more")


def test_normal_on_a_more_checkpoint_is_refused(tmp_path):
    """'normal' loads the same tensors strictly but starts from a 2x larger latent (the same
    output size): different images. An option against opt.txt is refused; 'most' needs up_4."""
    msg = _refused(CITY, num_upsampling_layers="normal")
    assert msg == (
        f"num_upsampling_layers=normal: {CITY / 'opt.txt'} says more; drop the option (the run was trained "
        "with opt.txt's value) or import the .pth file from another folder"
    )
    given = {"label_nc": 8, "no_instance": False, "crop_size": 128, "aspect_ratio": 2.0}
    assert "has no up_4 block" in _refused(_alone(tmp_path), **given, num_upsampling_layers="most")
    case = cases(CITY)["a2b"]
    nets, _ = networks(CITY)
    sds, config = fmt.convert({"G": official(CITY)["G"]}, {**given, "num_upsampling_layers": "normal"})
    normal = fmt.build_networks(config, "cpu")["netG"]
    normal.load_state_dict(sds["netG"])
    seg = semantics(CITY, case["input"])
    with torch.no_grad():
        wrong = normal.eval()(seg)  # the pitfall: same size, a 2 x 4 latent instead of 1 x 2
        assert wrong.shape == case["output"].shape and max_diff(wrong, case["output"]) > 0.1
        assert max_diff(nets["netG"](seg), case["output"]) < ATOL


def test_vae_generator_alone_tells_its_upsampling_from_fc(tmp_path):
    g = _alone(tmp_path, ADE)
    opts = dict(label_nc="8", contain_dontcare_label="true", crop_size="256", aspect_ratio="4")
    imported = fmt.read(g, **opts)
    assert (
        imported.official_options["num_upsampling_layers"] == "normal"
        and imported.official_options["no_instance"]
    )
    assert any("only one whose latent size fits the VAE fc" in n for n in imported.notes)
    assert any(n.startswith("no E file") for n in imported.notes)
    wrong = {**opts, "aspect_ratio": "2"}
    assert "num_upsampling_layers is not in the files" in _refused(g, **wrong)  # neither fits
    assert "the latent map has 512 values, the VAE fc of" in _refused(
        g, **wrong, num_upsampling_layers="normal"
    )


def test_foreign_and_inconsistent_files_are_refused(tmp_path):
    d_as_g = tmp_path / "d" / "latest_net_G.pth"
    d_as_g.parent.mkdir()
    shutil.copy(CITY / "latest_net_D.pth", d_as_g)
    assert "holds a MultiscaleDiscriminator (discriminator_0.* keys), but its name says G" in _refused(d_as_g)
    # an opt.txt of another run beside the files
    folder = tmp_path / "other"
    _alone(folder)
    (folder / "opt.txt").write_text((CITY / "opt.txt").read_text().replace("ngf: 2 ", "ngf: 64"))
    assert "opt.txt: says ngf 64, but" in _refused(folder)
    # a D of another label set
    mixed = tmp_path / "mixed"
    _alone(mixed)
    d = official(CITY)["D"]
    d = {k: (v[:, :-1] if k.endswith("model0.0.weight") else v) for k, v in d.items()}
    torch.save(d, mixed / "latest_net_D.pth")
    given = dict(
        label_nc="8", no_instance="false", crop_size="128", aspect_ratio="2", num_upsampling_layers="more"
    )
    assert "D reads 11 channels" in _refused(mixed, **given)


@pytest.mark.parametrize("folder", [CITY, ADE], ids=lambda p: p.name)
def test_import_writes_a_run_folder_that_translates(folder, tmp_path):
    """End to end through ``imtrans import spade``: ``model=spade`` rebuilt from the run folder
    gives every case, the VAE ones through ``style=`` (test.py's recorded z) and
    ``reference=`` (z = mu of the encoder)."""
    pytest.importorskip("imtrans.methods.spade")
    from imtrans.load import load_model
    from tests.official.helpers import do_import, translate_case

    out = do_import("spade", folder, tmp_path / "run")
    module = load_model(out)
    for name, case in cases(folder).items():
        assert max_diff(translate_case(module, case), case["output"]) < ATOL, name


def test_imported_run_fine_tunes(tmp_path):
    """The overrides in import.json train: 2 iterations from the imported weights (G and D) on
    label maps of the run's classes and size (64 x 128)."""
    pytest.importorskip("imtrans.methods.spade")
    import numpy as np
    from PIL import Image

    from tests.official.helpers import assert_finetuned, do_import, finetune

    imported = do_import("spade", CITY, tmp_path / "imported")
    root = tmp_path / "data"
    rng = np.random.RandomState(0)
    for split in ("train", "test"):
        for i in range(2):
            label = np.kron(rng.randint(0, 8, (8, 16)), np.ones((8, 8), dtype=np.int64)).astype(np.uint8)
            photo = rng.randint(0, 256, (8, 3), dtype=np.uint8)[label]
            for kind, array in (("label", label), ("inst", label), ("img", photo)):
                (root / f"{split}_{kind}").mkdir(parents=True, exist_ok=True)
                Image.fromarray(array).save(root / f"{split}_{kind}" / f"{i}.png")
    data = [
        "data=labels",
        f"data.root={root}",
        "data.load_size=128",
        "data.num_workers=0",
        "loss.weights.vgg=0",
    ]
    before, ckpt, _ = finetune(imported, data, tmp_path / "tuned")
    assert_finetuned(before, ckpt, ["netG", "netD"])
