"""``augment=none`` changes nothing: the per-term losses of 2 iterations of every method on its
tiny configuration (fixed seed) equal those recorded before the augmentation was wired in.

The fixture ``losses_before_augment.json`` was written at the commit before issue 18 by
``python -m tests.augment.test_unchanged --record`` (OMP_NUM_THREADS=1, as the tests run).
Its ``cut`` entry was recorded again at issue 19, when imtrans's InstanceNorm started to correct
torch's CPU backward for non-contiguous gradients (``imtrans.nets.blocks.InstanceNorm2d``;
CUT's PatchNCE reads features through a permute) and its up-sampler's replicate padding became
slices (the same values; gradients summed in another order): iteration 1 is as before,
iteration 2 follows the corrected gradients (nce 5.983 -> 5.927).

The values were recorded on one CPU; another sums float32 in another order, so they are compared
with a tolerance (iteration 1: relative 1e-4; iteration 2, after one Adam step: 1e-3), below what a
change of a loss moves."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import lightning as L
import pytest

from imtrans.run import train
from tests.helpers import METHODS, compose_config, method_overrides

FIXTURE = Path(__file__).with_name("losses_before_augment.json")
RUN = ["task=fit", "metrics=none", "callbacks.sample_grid=null", "seed=0"]


class _Record(L.Callback):
    def __init__(self):
        self.losses: dict[str, dict[str, float]] = {}

    def on_train_batch_end(self, trainer, module, *_):
        metrics = trainer.callback_metrics
        self.losses[str(module.iteration)] = {
            k: float(v) for k, v in metrics.items() if k.startswith("train/")
        }


def losses_of(model: str, tmp_path: Path, extra: list[str] | None = None) -> dict[str, dict[str, float]]:
    """``{iteration: {train/<term>: value}}`` of a 2-iteration tiny run of ``model``."""
    record = _Record()
    cfg = compose_config(
        method_overrides(model, tmp_path, 2, [*RUN, *(extra or [])]), output_dir=tmp_path / "run"
    )
    train(cfg, extra_callbacks=[record])
    return record.losses


#: fixture key -> (method, overrides): every method, and DRIT with full updates from the first
#: iteration (its first two are content-discriminator-only at d_iter 3)
CASES = {**{m: (m, []) for m in METHODS}, "drit-full": ("drit", ["model.d_iter=1"])}


def _available(model: str) -> bool:
    from tests.methods import test_pix2pixhd

    return model != "pix2pixhd" or test_pix2pixhd.CITYSCAPES.is_dir()


@pytest.mark.parametrize("case", CASES)
def test_augment_none_keeps_the_losses(case, tmp_path):
    model, extra = CASES[case]
    if not _available(model):
        pytest.skip("../shared/data/cityscapes_sample missing")
    expected = json.loads(FIXTURE.read_text())[case]
    got = losses_of(model, tmp_path, [*extra, "augment=none"])
    assert sorted(got) == ["1", "2"]
    # Same code path, same seed, one thread: equal up to the order in which another CPU sums
    # float32. Iteration 1 is a forward pass of the initial weights (seen: 3e-8 to 4e-6 on an
    # AVX-512 EPYC against the Xeon that recorded the file); iteration 2 follows one Adam step,
    # which turns tiny gradient differences into steps of up to lr where gradients are near zero
    # (seen: 4.4e-4 relative, DRIT++ multi-domain kl_zc, with ONEDNN_MAX_CPU_ISA=AVX2). A change
    # of the losses themselves moves them by far more (CUT's corrected gradients: 1e-2).
    tolerance = {"1": {"rel": 1e-4, "abs": 1e-5}, "2": {"rel": 1e-3, "abs": 1e-4}}
    for it in ("1", "2"):
        assert sorted(got[it]) == sorted(expected[it]), it
        for term, value in expected[it].items():
            assert got[it][term] == pytest.approx(value, **tolerance[it]), (it, term, got[it][term] - value)


if __name__ == "__main__" and "--record" in sys.argv:
    losses = json.loads(FIXTURE.read_text()) if FIXTURE.is_file() else {}
    for case, (name, extra) in CASES.items():
        if _available(name) and (case not in losses or "--all" in sys.argv):
            with tempfile.TemporaryDirectory() as tmp:
                losses[case] = losses_of(name, Path(tmp), extra)
    FIXTURE.write_text(json.dumps(losses, indent=1, sort_keys=True) + "\n")
    print(f"wrote {FIXTURE}: {', '.join(losses)}")
