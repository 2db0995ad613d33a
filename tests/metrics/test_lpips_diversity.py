"""LPIPS diversity of every protocol on hand-made sample sets whose pairs are known.

Each input's samples are copies of two images X and Y, laid out so that each pairing rule gives
a different, hand-counted share of (X, Y) pairs; the expected score is that share times
LPIPS(X, Y) (identical images are at distance 0).
"""

from __future__ import annotations

import pytest
import torch

from imtrans.metrics import Evaluator, get_protocol

# protocol: (labels of the samples of one input (0 = X, 1 = Y), differing pairs, all pairs)
DESIGNS = {
    "munit": (([0, 1, 1, 0] * 10)[:38], 19, 19),  # disjoint (0,1), (2,3), ...: every pair differs
    "bicyclegan": ([0, 0, 1, 1] * 5, 9, 19),  # consecutive: 9 of the 19 neighbours differ
    "stargan_v2": ([0] * 3 + [1] * 7, 21, 45),  # all pairs: 3 x 7 differ
    "quick": ([0, 1] * 4, 16, 28),
}


# At the images' own 32 px instead of the paper protocols' 256 px: the pairs are under test here.
SMALL = {"image_size": None}


def _images(n, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, 32, 32, generator=g) * 255).round().to(torch.uint8)


@pytest.fixture(scope="module")
def xy():
    return _images(2, 0), _images(2, 1)  # X and Y for 2 inputs


def _expected(ev, x, y, share):
    d = ev.lpips_pairs(ev.quantize(ev.signed(x)), ev.quantize(ev.signed(y)))
    return float(d.double().mean()) * share


@pytest.mark.parametrize("name", sorted(DESIGNS))
def test_diversity_of_sample_folders(name, xy, metric_weights):
    labels, differ, total = DESIGNS[name]
    ev = Evaluator(get_protocol(name, SMALL), batch_size=8)
    ev.prepare()
    x, y = xy
    groups = [torch.stack([(x, y)[lab][i] for lab in labels]) for i in range(2)]
    result = ev.diversity(groups)
    assert len(ev.protocol.pairs) == total
    assert result["lpips_div"] == pytest.approx(_expected(ev, x, y, differ / total), rel=1e-5)
    assert result["lpips_div"] > 0


@pytest.mark.parametrize("name", ["munit", "bicyclegan", "quick"])
def test_diversity_through_translation(name, xy, metric_weights):
    """The engine the callback uses: a sampler whose outputs follow the design."""
    labels, differ, total = DESIGNS[name]
    ev = Evaluator(get_protocol(name, {**SMALL, "num_inputs": 2}), batch_size=1)
    ev.prepare()
    x, y = xy
    pool = torch.stack([x, y]).float() / 127.5 - 1  # 2 x N x 3 x H x W

    def sampler(inp, index, num_samples):
        assert num_samples == len(labels)
        return torch.stack([pool[lab, index] for lab in labels], 1)

    inputs = [{"A": torch.zeros(3, 32, 32)} for _ in range(3)]
    scores = ev.evaluate_direction(sampler, inputs, "A", "B", multimodal=True)
    assert scores["n_inputs"] == 2
    assert scores["lpips_div"] == pytest.approx(_expected(ev, x, y, differ / total), rel=1e-5)
    # deterministic methods have no diversity
    assert "lpips_div" not in ev.evaluate_direction(lambda i, idx, s: pool[0, idx][:, None], inputs, "A", "B")


def test_cut_has_no_pairs(metric_weights):
    ev = Evaluator(get_protocol("cut"))
    ev.prepare()
    assert ev.protocol.pairs == [] and ev.diversity([_images(2, 0)]) == {}


def test_too_few_samples_is_an_error(metric_weights):
    ev = Evaluator(get_protocol("bicyclegan"))
    ev.prepare()
    with pytest.raises(ValueError, match="needs 20 samples"):
        ev.diversity([_images(5, 0)])
