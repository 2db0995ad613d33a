"""Every Hydra preset of the ``data`` group instantiates and exposes the keys models interpolate."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from imtrans.data import (
    DataError,
    DomainsDataModule,
    LabelDataModule,
    PairedDataModule,
    ShapesDataModule,
    UnpairedDataModule,
)

CONF = Path(__file__).resolve().parents[2] / "imtrans" / "conf"
PRESETS = {
    "unpaired": UnpairedDataModule,
    "paired": PairedDataModule,
    "labels": LabelDataModule,
    "domains": DomainsDataModule,
    "shapes": ShapesDataModule,
    "shapes_paired": ShapesDataModule,
    "cat2dog": UnpairedDataModule,
    "afhq": DomainsDataModule,
    "celeba_hq": DomainsDataModule,
    "horse2zebra": UnpairedDataModule,
    "selfie2anime": UnpairedDataModule,
    "summer2winter_yosemite": UnpairedDataModule,
    "edges2shoes": PairedDataModule,
    "edges2handbags": PairedDataModule,
    "facades": PairedDataModule,
    "cityscapes": LabelDataModule,
    "ade20k": LabelDataModule,
    "coco_stuff": LabelDataModule,
    "cityscapes_cut": UnpairedDataModule,
    "afhq_cat2dog": UnpairedDataModule,
}


def _config(name: str, data_dir: Path, **top):
    """A minimal run config: ``paths.data_dir``, optional top-level keys, the preset as ``data``."""
    data = OmegaConf.load(CONF / "data" / f"{name}.yaml")
    return OmegaConf.merge({"paths": {"data_dir": str(data_dir)}, **top}, {"data": data})


def test_every_preset_file_is_listed():
    assert {p.stem for p in (CONF / "data").glob("*.yaml")} == set(PRESETS)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_instantiates(name: str, tmp_path: Path):
    cfg = _config(name, tmp_path)
    for key in ("input_nc", "output_nc", "batch_size", "num_workers", "crop_size"):
        assert key in cfg.data, f"data={name} lacks {key}"
    dm = instantiate(cfg.data)
    assert type(dm) is PRESETS[name]
    assert dm.input_nc == cfg.data.input_nc and dm.output_nc == cfg.data.output_nc
    assert dm.batch_size == cfg.data.batch_size and dm.crop_size == cfg.data.crop_size
    if "root" in cfg.data:
        folder = cfg.data.name or name  # a view of another data set reads that one's folder
        assert Path(dm.root) == tmp_path / folder
        # The data is not there: setup names data.root and the folder (and the download helper).
        with pytest.raises(DataError, match="data.root") as info:
            dm.setup("fit")
        assert str(info.value).startswith(str(tmp_path / folder))
        if cfg.data.name is not None:
            assert f"python -m imtrans.data.download {folder}" in str(info.value)


def test_preset_values():
    def data(name: str, **top):
        return _config(name, Path("/data"), **top).data

    def values(name: str, *keys: str) -> tuple:
        return tuple(data(name)[key] for key in keys)

    assert values("shapes", "crop_size", "paired", "batch_size", "num_workers") == (64, False, 1, 0)
    assert data("shapes_paired").paired is True
    assert values("cat2dog", "load_size", "crop_size", "batch_size") == (256, 216, 2)
    for name in ("horse2zebra", "summer2winter_yosemite"):
        assert values(name, "load_size", "crop_size", "flip", "batch_size") == (286, 256, True, 1)
    for name in ("edges2shoes", "edges2handbags"):
        assert values(name, "layout", "load_size", "crop_size") == ("ab", 256, 256)
    assert values("facades", "direction", "load_size", "crop_size") == ("BtoA", 286, 256)
    city = values("cityscapes", "label_nc", "use_instance", "preprocess", "load_size", "input_nc")
    assert city == (35, True, "scale_width", 1024, 35)
    # SPADE's ADE20K and COCO-Stuff options: 150 / 182 classes + dontcare, 286 -> 256 crop, 256 at test
    sizes = ("preprocess", "load_size", "crop_size", "eval_load_size", "flip")
    for name, label_nc, instance in (("ade20k", 150, False), ("coco_stuff", 182, True)):
        labels = values(name, "label_nc", "contain_dontcare_label", "use_instance", "input_nc")
        assert labels == (label_nc, True, instance, label_nc + 1)
        assert values(name, *sizes) == ("resize_and_crop", 286, 256, 256, True)
    assert data("horse2zebra").seed == 0 and data("horse2zebra", seed=7).seed == 7  # follows the run seed


def test_presets_compose_as_a_hydra_group(tmp_path: Path):
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        overrides = ["+data=shapes", f"+paths.data_dir={tmp_path}", "data.size=32"]
        cfg = compose(config_name=None, overrides=overrides)
    dm = instantiate(cfg.data)
    assert dm.size == 32 and dm.crop_size == 32 and dm.fixed_batch(1)["A"].shape == (1, 3, 32, 32)
