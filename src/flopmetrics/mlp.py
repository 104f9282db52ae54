"""The method's MLP: ``n`` layers of ``Z = W @ x`` (W: d x d, no bias) then sigmoid."""

from __future__ import annotations

import torch
from torch import nn

from .precision import Precision


class MLP(nn.Module):
    """``x`` is ``d x m`` (features x tokens), so each layer is a plain ``mm``."""

    def __init__(self, n: int, d: int):
        super().__init__()
        self.weights = nn.ParameterList(nn.Parameter(torch.empty(d, d)) for _ in range(n))
        for w in self.weights:
            # scaled so activations stay away from sigmoid saturation in deep stacks
            nn.init.normal_(w, std=d**-0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for w in self.weights:
            x = torch.sigmoid(w @ x)
        return x


def build_mlp(n: int, d: int, m: int, precision: Precision, device: str, seed: int = 0):
    """Return ``(model, x)`` on ``device`` in ``precision``; ``x`` does not require grad."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = MLP(n, d).to(device=device, dtype=precision.dtype)
    x = torch.randn(d, m, generator=gen).to(device=device, dtype=precision.dtype)
    return model, x
