"""The training sample grids read without the README: titles drawn from the inference spec
(two-domain tasks, samples, attention maps, paired targets; multi-domain source rows, target
columns and a reference block of the target domains), and the folder-per-domain fixed batch
holding every domain."""

from __future__ import annotations

from types import SimpleNamespace

import hydra
import numpy as np
import pytest
import torch
from PIL import Image

from imtrans.callbacks import images
from imtrans.callbacks.images import SampleGrid, translation_grid
from tests.helpers import compose_config, method_overrides, random_batch, tiny_run_overrides
from tests.methods.test_stargan_v2 import run_overrides

PAD = 2


def tiny(model: str, data: str = "shapes", size: int = 32):
    """A tiny, untrained module of ``model`` (no Trainer, no data read)."""
    cfg = compose_config(tiny_run_overrides(model, data, extra=[f"data.size={size}"]))
    return hydra.utils.instantiate(cfg.model)


@pytest.fixture
def spy(monkeypatch):
    """The rows and titles every ``make_grid`` call of ``translation_grid`` gets."""
    calls = []
    original = images.make_grid

    def recording(rows, pad=2, col_titles=None, row_titles=None):
        calls.append(SimpleNamespace(rows=rows, cols=col_titles, row_titles=row_titles))
        return original(rows, pad, col_titles, row_titles)

    monkeypatch.setattr(images, "make_grid", recording)
    return calls


def band(grid: torch.Tensor, rows: int, cols: int, size: int) -> tuple[int, int]:
    """(height of the title band above the cells, width of the band left of them) of a uint8
    3 x H x W grid of ``rows`` x ``cols`` cells of ``size`` px: what its size leaves over."""
    return (
        grid.shape[1] - rows * (size + PAD) - PAD,
        grid.shape[2] - cols * (size + PAD) - PAD,
    )


def has_ink(region: torch.Tensor) -> bool:
    """Black title text: some pixels clearly darker than the white background."""
    return bool((region.int().sum(0) < 3 * 128).any())


def test_two_domain_grid_titles_each_direction(spy):
    model = tiny("cyclegan")
    grid = translation_grid(model, random_batch(n=2), num_samples=6)  # deterministic: one output
    (call,) = spy
    assert call.cols == ["input A", "a2b", "input B", "b2a"] and call.row_titles is None
    assert all(len(row) == len(call.cols) for row in call.rows)
    top, left = band(grid, rows=2, cols=4, size=32)
    # the title band sits above the first cells and holds text; no row titles (width unchanged)
    assert top > 0 and left == 0 and has_ink(grid[:, :top])
    assert not has_ink(grid[:, top : top + PAD])  # the band ends above the first cells


def test_attention_maps_and_paired_target_are_titled(spy):
    ugatit = tiny("ugatit", size=64)
    translation_grid(ugatit, random_batch(n=1, size=64))
    assert spy[-1].cols == [
        "input A", "a2b", "a2b G", "a2b D_global", "a2b D_local",
        "input B", "b2a", "b2a G", "b2a D_global", "b2a D_local",
    ]  # fmt: skip
    pix2pix = tiny("pix2pix", "shapes_paired")
    # the paired flag comes from the trainer's datamodule
    pix2pix._trainer = SimpleNamespace(datamodule=SimpleNamespace(paired=True))
    translation_grid(pix2pix, random_batch(n=2))
    assert spy[-1].cols == ["input", "a2b", "target"]
    assert all(len(row) == 3 for row in spy[-1].rows)


def test_multimodal_columns_are_numbered_and_keep_their_style(spy):
    model = tiny("munit")
    batch = random_batch(n=2)
    torch.manual_seed(1)
    first = translation_grid(model, batch, num_samples=3)
    torch.manual_seed(2)
    again = translation_grid(model, batch, num_samples=3)
    assert spy[0].cols == ["input A", "a2b 1", "a2b 2", "a2b 3", "input B", "b2a 1", "b2a 2", "b2a 3"]
    # column k is the same code in every grid, whatever the global random state
    assert torch.equal(first, again)
    assert not torch.equal(spy[0].rows[0][1], spy[0].rows[0][2])


# ---------------------------------------------------------------------- multi-domain
@pytest.fixture
def stargan(tmp_path):
    """(untrained tiny StarGAN v2 of 3 domains, its folder-per-domain datamodule with 4 fixed
    items), the domain names set as training sets them."""
    cfg = compose_config(run_overrides(tmp_path, 1, ["data.num_fixed=4"]))
    model, dm = hydra.utils.instantiate(cfg.model), hydra.utils.instantiate(cfg.data)
    model._domain_names = list(dm.domains)
    return model, dm


def test_domains_fixed_batch_takes_every_domain_in_turn(stargan, tmp_path):
    _, dm = stargan
    assert dm.domains == ["a", "b", "c"]
    batch = dm.fixed_batch()
    assert batch["domain"].tolist() == [0, 1, 2, 0] and batch["image"].shape == (4, 3, 32, 32)
    assert [p.split("/")[-2] for p in batch["path"]] == ["a", "b", "c", "a"]
    again = hydra.utils.instantiate(compose_config(run_overrides(tmp_path, 1)).data).fixed_batch(4)
    assert torch.equal(batch["image"], again["image"])  # deterministic, no setup needed
    assert dm.fixed_batch(2)["domain"].tolist() == [0, 1]
    assert dm.fixed_batch(100)["domain"].tolist() == [0, 1, 2] * 4  # 4 images per domain
    # the val_size cap keeps a split's first items (one domain): the grid inputs ignore it
    capped = hydra.utils.instantiate(compose_config(run_overrides(tmp_path, 1, ["data.val_size=2"])).data)
    assert capped.fixed_batch(3)["domain"].tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="at least 1"):
        dm.fixed_batch(0)


def test_stargan_grid_rows_targets_and_references(stargan, spy, monkeypatch):
    model, dm = stargan
    batch = dm.fixed_batch()
    calls = []
    original = model.translate

    def recording(x, direction=None, **kw):
        calls.append(kw)
        return original(x, direction, **kw)

    monkeypatch.setattr(model, "translate", recording)
    grid = translation_grid(model, batch, num_samples=2)
    (call,) = spy
    latent = ["a 1", "a 2", "b 1", "b 2", "c 1", "c 2"]
    assert call.cols == ["input", *latent, "ref a", "ref b", "ref c"]
    assert call.row_titles == ["reference", "a", "b", "c", "a"]  # the inputs' source domains
    assert len(call.rows) == len(call.row_titles)
    assert all(len(row) == len(call.cols) for row in call.rows)  # as many columns as titles
    # the reference row: white above the input and latent columns, then the references
    top_row = call.rows[0]
    assert all((cell == 1).all() for cell in top_row[:7])
    # each reference is a fixed image of the domain it guides into (the last of that domain)
    refs = [c for c in calls if c.get("reference") is not None]
    assert [c["target_domain"] for c in refs] == [0, 1, 2]
    for c, cell in zip(refs, top_row[7:]):
        (j,) = [j for j in range(4) if torch.equal(batch["image"][j], c["reference"][0])]
        assert batch["domain"][j] == c["target_domain"]
        assert torch.equal(cell, c["reference"][0])
    assert [refs[0]["reference"][0].equal(batch["image"][j]) for j in (0, 3)] == [False, True]
    # latent-guided: every domain, the same fixed codes for each domain
    latents = [c for c in calls if c.get("reference") is None]
    assert [c["target_domain"] for c in latents] == [0, 0, 1, 1, 2, 2]
    assert torch.equal(latents[0]["style"], latents[2]["style"])
    top, left = band(grid, rows=5, cols=10, size=32)
    assert top > 0 and has_ink(grid[:, :top]) and left > 0 and has_ink(grid[:, top:, :left])


def test_sample_grid_callback_writes_the_titled_png(stargan, tmp_path):
    model, dm = stargan
    callback = SampleGrid(str(tmp_path / "samples"), num_styles=2)
    path = callback.write(SimpleNamespace(datamodule=dm, loggers=[]), model, "iter_0000000")
    grid = torch.from_numpy(np.array(Image.open(path))).permute(2, 0, 1)
    # a reference row and 4 inputs; input + 3 domains x 2 styles + 3 references
    top, left = band(grid, rows=1 + 4, cols=1 + 3 * 2 + 3, size=32)
    assert top > 0 and left > 0 and has_ink(grid[:, :top]) and has_ink(grid[:, top:, :left])


def test_drit_multi_hook_is_the_titled_generic_grid(tmp_path, spy):
    cfg = compose_config(method_overrides("drit_multi", tmp_path, 1))
    model = hydra.utils.instantiate(cfg.model)
    batch = {"image": torch.rand(2, 3, 32, 32) * 2 - 1, "domain": torch.tensor([0, 1])}
    hook = model.sample_grid(batch, num_samples=2)
    assert torch.equal(hook, translation_grid(model, batch, num_samples=2))
    names = model.inference_spec().domains
    assert spy[0].cols == [
        "input",
        *[f"{d} {k}" for d in names for k in (1, 2)],
        *[f"ref {d}" for d in names],
    ]
    assert spy[0].row_titles == ["reference", *names]
