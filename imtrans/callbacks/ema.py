"""Exponential moving average of the generator weights (Karras et al.; imaginaire's model averaging)."""

from __future__ import annotations

import lightning as L
import torch


class GeneratorEMA(L.Callback):
    """Keeps ``module.ema`` (copies of ``generator_modules()``) as an EMA of the trained weights.

    After iteration t (every ``every_n_iters``): ``ema = decay * ema + (1 - decay) * w`` once
    t > ``start_iter``; until then ``ema = w`` (averaging the random initial weights would only
    slow the average down). Buffers (BatchNorm statistics) are copied. Evaluation, sample
    grids, ``translate`` and export then use the EMA weights (``module.use_ema``); the
    copies are part of the module's state dict, so checkpoints and resumed runs keep them.
    """

    def __init__(self, decay: float = 0.999, start_iter: int = 0, every_n_iters: int = 1):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"callbacks.ema.decay must be in [0, 1), got {decay}")
        self.decay, self.start_iter, self.every_n_iters = decay, start_iter, every_n_iters

    def setup(self, trainer, module, stage):
        # Before the strategy wraps the module (DDP), so the frozen copies are never
        # registered as trainable parameters.
        module.enable_ema()

    @torch.no_grad()
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        it = module.iteration
        if it % self.every_n_iters:
            return
        weight = 1.0 if it <= self.start_iter else 1.0 - self.decay
        for name, ema in module.ema.items():
            live = getattr(module, name)
            for p_ema, p in zip(ema.parameters(), live.parameters()):
                p_ema.lerp_(p.detach(), weight)
            for b_ema, b in zip(ema.buffers(), live.buffers()):
                b_ema.copy_(b)
