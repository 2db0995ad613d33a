"""A tiny multimodal TranslationModule for metric tests: output = tanh(conv(x) + style-dependent colour)."""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from imtrans.methods.base import TranslationModule
from imtrans.methods.spec import InferenceSpec, Style


class ToyMultimodal(TranslationModule):
    is_multimodal = True
    style_dim = 4

    def __init__(self, seed: int = 0):
        super().__init__(loss={}, optimizer=torch.optim.SGD)
        torch.manual_seed(seed)
        self.gen = nn.ModuleDict({d: nn.Conv2d(3, 3, 3, padding=1) for d in ("a2b", "b2a")})
        self.style = nn.ModuleDict({d: nn.Linear(self.style_dim, 3) for d in ("a2b", "b2a")})

    def generator_modules(self):
        return {"gen": self.gen, "style": self.style}

    def inference_spec(self) -> InferenceSpec:
        return replace(super().inference_spec(), samples=True, style=Style(self.style_dim))

    def optimizer_groups(self):
        return {"g": self.parameters()}

    def generate(self, x, direction, style=None):
        if style is None:
            style = torch.randn(x.shape[0], self.style_dim, device=x.device)
        return torch.tanh(self.gen[direction](x) + self.style[direction](style)[:, :, None, None])
