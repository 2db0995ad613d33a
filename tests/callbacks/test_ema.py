"""Generator EMA: the formula after N steps, used by translate, saved and reloaded."""

from __future__ import annotations

import lightning as L
import torch

from imtrans.load import load_model
from imtrans.run import train
from tests.helpers import compose_config, tiny_run_overrides


class RecordWeights(L.Callback):
    """G_A's weights after each iteration's updates (what the EMA averages at that iteration)."""

    def __init__(self):
        self.history: list[dict[str, torch.Tensor]] = []

    def on_train_batch_end(self, trainer, module, *_):
        self.history.append({k: v.detach().clone() for k, v in module.G_A.state_dict().items()})


def test_ema_formula_and_translate(tmp_path):
    decay, start, n = 0.9, 2, 6
    overrides = tiny_run_overrides(
        "cyclegan",
        "shapes",
        iters=n,
        extra=[
            "callbacks=ema",
            f"callbacks.ema.decay={decay}",
            f"callbacks.ema.start_iter={start}",
            "callbacks.progress_bar=null",
        ],
    )
    cfg = compose_config(overrides, output_dir=tmp_path)
    record = RecordWeights()
    train(cfg, extra_callbacks=[record])
    expected = {}
    for t, weights in enumerate(record.history, start=1):
        for k, w in weights.items():
            if not w.is_floating_point():
                continue
            expected[k] = w.clone() if t <= start else decay * expected[k] + (1 - decay) * w
    model = load_model(tmp_path)
    assert model.ema is not None and model.use_ema
    ema = model.ema["G_A"].state_dict()
    for k, v in expected.items():
        assert torch.allclose(ema[k], v, atol=1e-6), k
    # the average differs from the last weights, and translate uses the average
    assert not torch.allclose(ema["model.0.1.weight"], record.history[-1]["model.0.1.weight"])
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        by_ema = model.ema["G_A"].eval()(x)
        by_live = model.G_A.eval()(x)
    assert torch.allclose(model.translate(x), by_ema, atol=1e-6)
    assert not torch.allclose(by_ema, by_live)
    model.use_ema = False
    assert torch.allclose(model.translate(x), by_live, atol=1e-6)
    # after the swap, the live modules are back in place
    assert model.G_A is not model.ema["G_A"]
