"""Mixed precision: bf16 and fp16 runs of every method on the CPU, and the fp16 contract
(one gradient scaler per update, unscaled clipping, no scheduler step for a skipped update)."""

from __future__ import annotations

import json
from functools import partial

import lightning as L
import pytest
import torch
from lightning.pytorch.plugins.precision import MixedPrecision
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from imtrans.load import load_model
from imtrans.methods.base import TranslationModule
from imtrans.precision import CachedCastPrecision, PerUpdateScalerPrecision
from imtrans.run import train
from tests.helpers import FP16_CPU, METHODS, compose_config, method_overrides
from tests.methods import test_pix2pixhd

RUN = ["callbacks.sample_grid=null", "metrics=none"]


def _overrides(model: str, tmp_path, extra: list[str]) -> list[str]:
    return method_overrides(model, tmp_path, 2 if model in ("drit_multi", "pix2pixhd") else 3, [*RUN, *extra])


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
@pytest.mark.parametrize("model", METHODS)
def test_mixed_precision_run(model, precision, tmp_path):
    if model == "pix2pixhd" and not test_pix2pixhd.CITYSCAPES.is_dir():
        pytest.skip("../shared/data/cityscapes_sample missing")
    extra = ["trainer.precision=bf16-mixed"] if precision == "bf16" else FP16_CPU
    out = tmp_path / "run"
    cfg = compose_config(_overrides(model, tmp_path, extra), output_dir=out)
    train(cfg)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["iteration"] == cfg.iters
    restored = load_model(out)
    # parameters stay float32 (autocast only changes the compute), and finite
    for name, p in restored.named_parameters():
        assert p.dtype == torch.float32 and torch.isfinite(p).all(), name
    if precision == "fp16":
        ckpt = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)
        scalers = ckpt["PerUpdateScalerPrecision"]["scalers"]
        # every optimizer stepped under a scaler of its own update
        stepped = {name for key in scalers for name in key.split("+")}
        assert stepped == set(restored.optimizer_groups()), sorted(scalers)
        assert all(s["scale"] > 0 for s in scalers.values())


# ---------------------------------------------------------------------------- the fp16 contract
class Toy(TranslationModule):
    """A linear G and D, one update each per iteration; SGD lr 1 and StepLR halving the rate
    after every iteration (interval ``iteration``). ``inf_at = (name, iteration)`` makes that
    update's gradients infinite, as an fp16 overflow would."""

    def __init__(self, inf_at=None, clip_norm=None):
        super().__init__(
            # small weights: at the initial scale 2**16 an O(1) gradient overflows fp16
            loss={"weights": {"d": 1e-2, "g": 1e-2}},
            optimizer=partial(torch.optim.SGD, lr=1.0),
            scheduler=partial(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5),
            scheduler_interval="iteration",
        )
        torch.manual_seed(0)
        self.G, self.D = nn.Linear(4, 4), nn.Linear(4, 1)
        self.inf_at, self.clip_norm = inf_at, clip_norm
        self.history: dict[int, dict[str, torch.Tensor]] = {}

    def optimizer_groups(self):
        return {"D": self.D.parameters(), "G": self.G.parameters()}

    def generator_modules(self):
        return {"G": self.G}

    def _maybe_overflow(self, name, out):
        if self.inf_at == (name, self.iteration):
            out.register_hook(lambda g: g * float("inf"))
        return out

    def training_step(self, batch, batch_idx):
        (x,) = batch
        self.history[self.iteration] = {"before": self.D.weight.detach().clone()}

        def d_loss():
            out = self._maybe_overflow("D", self.D(self.G(x).detach()))
            return self.weigh({"d": out.float().pow(2).mean()})

        def g_loss():
            out = self._maybe_overflow("G", self.D(self.G(x)))
            return self.weigh({"g": (out.float() - 1).pow(2).mean()})

        self.optimize("D", d_loss, clip_norm=self.clip_norm)
        g_before = [p.detach().clone() for p in self.G.parameters()]
        self.optimize("G", g_loss, clip_norm=self.clip_norm)
        self.history[self.iteration]["after"] = self.D.weight.detach().clone()
        self.history[self.iteration]["g_step"] = torch.cat(
            [(p.detach() - b).flatten() for p, b in zip(self.G.parameters(), g_before)]
        )


def _fit(module, plugin, iters=4):
    data = DataLoader(TensorDataset(torch.randn(2 * iters, 4)), batch_size=2)
    trainer = L.Trainer(
        accelerator="cpu",
        plugins=[plugin],
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, data)
    return trainer


def test_fp16_one_scaler_per_update_and_no_scheduler_step_when_skipped(tmp_path):
    toy = Toy(inf_at=("D", 2))
    trainer = _fit(toy, PerUpdateScalerPrecision("cpu"))
    plugin = trainer.precision_plugin
    assert sorted(plugin.scalers) == ["D", "G"]
    # D's overflow at iteration 2 halved D's scale only (no growth within 2000 steps)
    assert plugin.scalers["D"].get_scale() == 2.0**15
    assert plugin.scalers["G"].get_scale() == 2.0**16
    # ... skipped D's step at iteration 2, and only that one
    for it, h in toy.history.items():
        assert torch.equal(h["before"], h["after"]) == (it == 2), it
    # Schedulers step after iterations 1-3 (the step for 4 is pending at the end): G three
    # times; D twice, its iteration-2 update having been skipped.
    lr = {name: opt.param_groups[0]["lr"] for name, opt in zip(["D", "G"], trainer.optimizers)}
    assert lr == {"D": 0.25, "G": 0.125}
    # the scalers travel in the checkpoint and come back into a fresh plugin
    trainer.save_checkpoint(tmp_path / "c.ckpt")
    fresh = PerUpdateScalerPrecision("cpu")
    fresh.load_state_dict(torch.load(tmp_path / "c.ckpt", weights_only=False)["PerUpdateScalerPrecision"])
    assert {k: s.get_scale() for k, s in fresh.scalers.items()} == {"D": 2.0**15, "G": 2.0**16}


def test_fp16_clips_unscaled_gradients():
    toy = Toy(clip_norm=0.001)
    _fit(toy, PerUpdateScalerPrecision("cpu"), iters=1)
    # SGD with lr 1: the step is the clipped gradient, of norm 0.001 (not 0.001 / 65536)
    assert toy.history[1]["g_step"].norm().item() == pytest.approx(0.001, rel=1e-3)


def test_lightning_single_scaler_plugin_is_replaced():
    toy = Toy()
    trainer = _fit(toy, MixedPrecision("16-mixed", "cpu"), iters=2)
    assert isinstance(trainer.precision_plugin, PerUpdateScalerPrecision)
    assert sorted(trainer.precision_plugin.scalers) == ["D", "G"]


def test_fp16_step_outside_an_update_is_an_error():
    class Bare(Toy):
        def training_step(self, batch, batch_idx):
            self.manual_backward(self.D(self.G(batch[0])).float().mean())

    with pytest.raises(RuntimeError, match="outside an update"):
        _fit(Bare(), PerUpdateScalerPrecision("cpu"), iters=1)


class TwoDUpdates(Toy):
    """Two D updates in one iteration, as StarGAN v2 makes (latent, then reference), and a G
    update. The second D update records D's score and the same score computed with fresh
    casts of D's current weights (autocast's weight cache off)."""

    def training_step(self, batch, batch_idx):
        (x,) = batch
        self.optimize("D", lambda: self.weigh({"d": self.D(self.G(x).detach()).float().pow(2).mean()}))

        def d_loss_again():
            out = self.D(self.G(x).detach())
            with torch.autocast("cpu", dtype=torch.get_autocast_dtype("cpu"), cache_enabled=False):
                fresh = self.D(self.G(x).detach())
            self.history[self.iteration] = {"used": out.detach().float(), "fresh": fresh.detach().float()}
            return self.weigh({"d": out.float().pow(2).mean()})

        self.optimize("D", d_loss_again)
        self.optimize("G", lambda: self.weigh({"g": (self.D(self.G(x)).float() - 1).pow(2).mean()}))


@pytest.mark.parametrize("plugin", [MixedPrecision("bf16-mixed", "cpu"), PerUpdateScalerPrecision("cpu")])
def test_cast_cache_is_on_and_a_network_updated_twice_uses_its_new_weights(plugin):
    # Lightning's autocast spans the whole training_step. imtrans turns autocast's weight-cast
    # cache on (a weight cast once per update, not at every call) and must drop it after each
    # optimizer step, or D's second update would get the casts of D's first-update weights.
    toy = TwoDUpdates()
    trainer = _fit(toy, plugin, iters=2)
    assert isinstance(trainer.precision_plugin, CachedCastPrecision)
    with trainer.precision_plugin.autocast_context_manager():
        assert torch.is_autocast_cache_enabled()
    for it, h in toy.history.items():
        assert torch.equal(h["used"], h["fresh"]), it
