"""Skipped scores cost nothing: with the metric weights missing and no weight-free score, the
evaluator translates nothing (the StarGAN v2 test phase that generated every task's samples for
scores it had announced as skipped); where some scores remain, only the samples they read are
drawn, and those scores are the same numbers as with every score computed. A long evaluation
shows a progress bar naming what it computes."""

from __future__ import annotations

import functools
import json

import pytest
import torch

from imtrans.data import DomainsDataModule
from imtrans.data.shapes import ShapesDataset
from imtrans.metrics import Evaluator, get_protocol, module_sampler
from imtrans.metrics.evaluator import evaluate_domain_tasks, module_domain_names, samples_needed
from tests.methods.test_drit import make_domains
from tests.metrics.test_stargan_v2_protocol import ToyDomains
from tests.metrics.toy import ToyMultimodal


def count_translate(model, record) -> None:
    """Record ``record(kwargs)`` for each ``model.translate`` call; the signature stays (the
    evaluator reads it to know whether reference mode applies)."""
    translate = model.translate

    @functools.wraps(translate)
    def counted(*args, **kwargs):
        record(kwargs)
        return translate(*args, **kwargs)

    model.translate = counted


class Counting:
    """A sampler that records (inputs, samples) of every call and passes it on."""

    def __init__(self, sampler):
        self.sampler, self.calls = sampler, []

    def __call__(self, x, index, num_samples, *rest):
        self.calls.append((len(index), num_samples))
        return self.sampler(x, index, num_samples, *rest)


class ToySequential(ToyMultimodal):
    """ToyMultimodal without ``style_dim``: the evaluator lets it draw its own codes, one sample
    after another from the global generator (as the real methods' ``translate`` does)."""

    def __init__(self, seed: int = 0):
        super().__init__(seed)
        self.style_dim = None  # after the layers that were sized by it

    def generate(self, x, direction, style=None):
        if style is None:
            style = torch.randn(x.shape[0], 4, device=x.device)
        return torch.tanh(self.gen[direction](x) + self.style[direction](style)[:, :, None, None])


def _unpaired(n=8, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        {
            "A": torch.rand(3, size, size, generator=g) * 2 - 1,
            "B": torch.rand(3, size, size, generator=g) * 2 - 1,
        }
        for _ in range(n)
    ]


def _evaluator(no_weights: bool, monkeypatch, tmp_path, **kw) -> Evaluator:
    if no_weights:  # an empty hub cache, no download: every notice, FID/KID/LPIPS skipped
        monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    protocol = get_protocol("quick", {"num_inputs": 4, "samples_per_input": 4, **kw.pop("overrides", {})})
    ev = Evaluator(protocol, batch_size=2, notify=None, **kw)
    ev.prepare()
    return ev


def _domains(tmp_path):
    make_domains(tmp_path / "data", domains=("cat", "dog"), n=2, size=32)
    dm = DomainsDataModule(tmp_path / "data", load_size=32, crop_size=32, flip=False, verify="none")
    dm.setup("test")
    return dm


def test_samples_needed():
    assert samples_needed() == 0
    assert samples_needed(single=True) == 1
    assert samples_needed(fid=2, pairs=[(0, 1)], single=True) == 2
    assert samples_needed(pairs=[(0, 1), (2, 3)]) == 4
    assert samples_needed(all_of=8, fid=1) == 8


def test_no_weights_and_no_weight_free_score_translates_nothing(tmp_path, monkeypatch):
    ev = _evaluator(True, monkeypatch, tmp_path)
    assert len(ev.notices) == 2 and ev.inception is None and ev.lpips is None
    data = _unpaired()
    for multimodal in (True, False):
        sampler = Counting(module_sampler(ToyMultimodal(), "a2b"))
        scores = ev.evaluate_direction(sampler, data, "A", "B", reference=data, multimodal=multimodal)
        assert scores == {} and sampler.calls == []
    # shapes data with its exact scores switched off: nothing either
    shapes = ShapesDataset("val", 4, size=32)
    ev.want["shapes"] = False
    for direction, src, tgt in (("a2b", "A", "B"), ("b2a", "B", "A")):
        sampler = Counting(module_sampler(ToyMultimodal(), direction))
        assert ev.evaluate_direction(sampler, shapes, src, tgt, reference=shapes, multimodal=True) == {}
        assert sampler.calls == []


def test_no_weights_multi_domain_tasks_translate_nothing(tmp_path, monkeypatch):
    """StarGAN v2's case: FID and LPIPS are a multi-domain task's only scores; without their
    weights no task runs, in either mode."""
    dm = _domains(tmp_path)
    ev = _evaluator(True, monkeypatch, tmp_path)
    model = ToyDomains()
    model.num_domains = 2
    calls = []
    count_translate(model, calls.append)
    inputs = dm.dataset("test")
    names = module_domain_names(model, dm, inputs)
    assert evaluate_domain_tasks(ev, model, inputs, dm.dataset("train"), names, "train") == {}
    assert calls == []


def test_weight_free_scores_stay_and_draw_only_what_they_read(tmp_path, monkeypatch):
    """Without weights: the shapes scores and paired PSNR/SSIM are still computed; paired scores
    and the outline IoU read one sample per input, the style spread every sample."""
    ev = _evaluator(True, monkeypatch, tmp_path)
    shapes = ShapesDataset("val", 4, size=32)
    a2b = Counting(module_sampler(ToyMultimodal(), "a2b"))
    scores = ev.evaluate_direction(a2b, shapes, "A", "B", reference=shapes, multimodal=True)
    assert set(scores) == {"content_iou", "style_div_fg", "style_div_bg", "n_inputs"}
    assert a2b.calls == [(2, 4), (2, 4)]  # the style spread reads all 4 samples of each input
    b2a = Counting(module_sampler(ToyMultimodal(), "b2a"))
    scores = ev.evaluate_direction(b2a, shapes, "B", "A", reference=shapes, multimodal=True)
    assert set(scores) == {"outline_iou", "n_inputs"} and b2a.calls == [(2, 1), (2, 1)]
    data = _unpaired()
    paired = Counting(module_sampler(ToyMultimodal(), "a2b"))
    scores = ev.evaluate_direction(paired, data, "A", "B", reference=data, multimodal=True, paired=True)
    assert set(scores) == {"psnr_8bit", "ssim", "n_inputs"} and paired.calls == [(2, 1), (2, 1)]


@pytest.mark.parametrize("toy", [ToyMultimodal, ToySequential])
def test_fewer_samples_give_the_same_scores(toy, tmp_path, monkeypatch):
    """Paired data: with LPIPS (random weights) every sample is drawn for the diversity pairs;
    without, one. PSNR and SSIM are the same numbers either way (codes seeded per (input,
    sample), or drawn one after another per block)."""
    data = _unpaired()
    full_ev = _evaluator(False, monkeypatch, tmp_path, fid=False, kid=False)
    assert full_ev.lpips is not None
    full = Counting(module_sampler(toy(), "a2b", seed=3))
    with_lpips = full_ev.evaluate_direction(full, data, "A", "B", multimodal=True, paired=True)
    few_ev = _evaluator(False, monkeypatch, tmp_path, fid=False, kid=False, lpips=False)
    few = Counting(module_sampler(toy(), "a2b", seed=3))
    without = few_ev.evaluate_direction(few, data, "A", "B", multimodal=True, paired=True)
    assert {n for _, n in full.calls} == {4} and {n for _, n in few.calls} == {1}
    assert "lpips_div" in with_lpips and "lpips_div" not in without
    for name in ("psnr_8bit", "ssim"):
        assert without[name] == with_lpips[name], name


def test_multi_domain_fid_draws_its_samples_only(tmp_path):
    """FID without LPIPS: each task draws the protocol's ``fid_samples_per_input`` (1 of 3), in
    both modes (the reference images the first sample would take with all 3), and the FIDs are
    those of the full draw."""
    dm = _domains(tmp_path)
    inputs, reference = dm.dataset("test"), dm.dataset("train")
    protocol = get_protocol("quick", {"samples_per_input": 3, "num_inputs": 2})
    results, draws = [], []
    for lpips in (True, False):
        ev = Evaluator(protocol, batch_size=2, notify=None, kid=False, lpips=lpips)
        ev.prepare()
        assert ev.inception is not None and (ev.lpips is not None) == lpips
        model = ToyDomains()
        model.num_domains = 2
        seen = []
        count_translate(model, lambda kwargs, _s=seen: _s.append(kwargs.get("num_samples", 1)))
        names = module_domain_names(model, dm, inputs)
        results.append(evaluate_domain_tasks(ev, model, inputs, reference, names, "train"))
        draws.append(seen)
    full, fid_only = results
    assert max(draws[0]) == 3 and set(draws[1]) == {1}
    assert len(draws[1]) < len(draws[0])  # reference mode: one translate per drawn sample
    fids = sorted(k for k in full if k.endswith("/fid"))
    assert fids and fids == sorted(k for k in fid_only if k.endswith("/fid"))
    for key in fids:
        assert fid_only[key] == pytest.approx(full[key], rel=1e-9), key
    assert not any(k.endswith("lpips_div") for k in fid_only)


def test_progress_bar_names_the_work(tmp_path, monkeypatch, capfd):
    ev = _evaluator(True, monkeypatch, tmp_path, progress_delay=0)
    shapes = ShapesDataset("val", 4, size=32)
    ev.evaluate_direction(
        module_sampler(ToyMultimodal(), "a2b"), shapes, "A", "B", multimodal=True, label="val a2b"
    )
    err = capfd.readouterr().err
    assert "val a2b: content_iou, style_div_fg, style_div_bg (4 inputs x 4 samples)" in err, err
    quiet = _evaluator(True, monkeypatch, tmp_path, progress_delay=0, progress=False)
    quiet.evaluate_direction(module_sampler(ToyMultimodal(), "a2b"), shapes, "A", "B", multimodal=True)
    assert capfd.readouterr().err == ""
    # the default waits a few seconds: a quick evaluation prints nothing
    default = _evaluator(True, monkeypatch, tmp_path)
    default.evaluate_direction(module_sampler(ToyMultimodal(), "a2b"), shapes, "A", "B", multimodal=True)
    assert capfd.readouterr().err == ""


def test_stargan_v2_run_without_weights_never_translates(tmp_path, monkeypatch):
    """The reported case, end to end: a tiny StarGAN v2 fit+test with metrics=stargan_v2 and no
    weight file (evaluations during fit and at test): translate is never called, and the run
    writes metrics.json with the protocol record saying what was skipped."""
    import lightning as L

    from imtrans.run import train
    from tests.helpers import compose_config, method_overrides

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))

    class CountTranslate(L.Callback):
        calls = 0

        def on_fit_start(self, trainer, module):
            translate = module.translate

            def counted(*args, **kwargs):
                CountTranslate.calls += 1
                return translate(*args, **kwargs)

            module.translate = counted

    extra = ["callbacks.sample_grid=null", "metrics=stargan_v2", "metrics.every_n_iters=1", "task=fit+test"]
    cfg = compose_config(
        method_overrides("stargan_v2", tmp_path, iters=2, extra=extra), output_dir=tmp_path / "run"
    )
    train(cfg, extra_callbacks=[CountTranslate()])
    assert CountTranslate.calls == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["iteration"] == 2 and not [k for k in metrics if k.startswith(("val/", "test/"))]
    assert set(metrics["metrics_protocol"]["weights"].values()) == {"missing: metrics skipped"}
