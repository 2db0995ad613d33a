"""Named protocols: their pairs, their records, the config group."""

from __future__ import annotations

import json

import hydra
import pytest

from imtrans.callbacks import Evaluation
from imtrans.errors import ConfigError
from imtrans.metrics import PROTOCOLS, get_protocol, sample_pairs
from tests.helpers import compose_config


def test_protocols_fix_inputs_samples_and_pairs():
    expect = {
        "munit": (100, 38, 19, "test"),
        "bicyclegan": (100, 20, 19, "test"),
        "stargan_v2": (None, 10, 45, "train"),
        "cut": (None, 1, 0, "test"),
        "quick": (32, 8, 28, "test"),
    }
    assert set(PROTOCOLS) == set(expect)
    for name, (inputs, samples, pairs, reference) in expect.items():
        p = PROTOCOLS[name]
        assert (p.num_inputs, p.samples_per_input, len(p.pairs), p.reference_split) == (
            inputs,
            samples,
            pairs,
            reference,
        )
    assert PROTOCOLS["munit"].pairs[:2] == [(0, 1), (2, 3)]
    assert PROTOCOLS["bicyclegan"].pairs[:2] == [(0, 1), (1, 2)]
    assert PROTOCOLS["stargan_v2"].fid_samples_per_input == 10
    assert sample_pairs(3, "all") == [(0, 1), (0, 2), (1, 2)]
    with pytest.raises(ValueError):
        sample_pairs(3, "disjoint")


def test_record_is_json_and_names_networks_and_overrides():
    rec = get_protocol("munit", {"num_inputs": 10}).record()
    json.dumps(rec)
    assert rec["name"] == "munit" and rec["inputs"] == 10 and rec["overrides"] == {"num_inputs": 10}
    assert rec["fid"]["weights"] == "weights-inception-2015-12-05-6726825d.pth"
    assert (
        rec["lpips"]["network"] == "alex" and rec["lpips"]["backbone_weights"] == "alexnet-owt-7be5be79.pth"
    )
    assert rec["image_size"] == 256 and "bilinear" in rec["resize_filter"]
    assert get_protocol("quick").record()["overrides"] == {}
    with pytest.raises(KeyError, match="unknown protocol fields"):
        get_protocol("quick", {"inputs": 3})
    with pytest.raises(ConfigError, match="not one of"):
        get_protocol("fid50k")


def test_fit_never_reads_the_test_split():
    assert PROTOCOLS["cut"].splits("val") == ("val", "val")
    assert PROTOCOLS["cut"].splits("test") == ("test", "test")
    assert PROTOCOLS["stargan_v2"].splits("val") == ("val", "train")


def _metrics_override(choice: str) -> str:
    in_defaults = "metrics" in compose_config([])
    return f"metrics={choice}" if in_defaults else f"+metrics={choice}"


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_config_group_builds_the_callback(name, tmp_path):
    cfg = compose_config([_metrics_override(name)], output_dir=tmp_path)
    cb = hydra.utils.instantiate(cfg.metrics)
    assert isinstance(cb, Evaluation) and cb.protocol.name == name
    assert cb.best_checkpoint == tmp_path / "checkpoints" / "best.ckpt"
    # the key form picks the same protocol
    cfg = compose_config([_metrics_override("quick"), f"metrics.protocol={name}"], output_dir=tmp_path)
    assert hydra.utils.instantiate(cfg.metrics).protocol.name == name


def test_config_overrides_are_recorded(tmp_path):
    cfg = compose_config(
        [_metrics_override("munit"), "+metrics.overrides.num_inputs=8", "metrics.weights_dir=/w"],
        output_dir=tmp_path,
    )
    cb = hydra.utils.instantiate(cfg.metrics)
    assert cb.protocol.num_inputs == 8 and cb.protocol_record()["overrides"] == {"num_inputs": 8}
    assert str(cb.evaluator.weights_dir) == "/w"
