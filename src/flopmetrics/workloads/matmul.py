"""One square matrix product: the efficiency frontier of a precision on a device."""

from __future__ import annotations

import torch

from ..flops.counted import count_flops
from .base import Workload, finite_check, release


def build(device: str, precision: str, workload: dict, seed: int, previous=None) -> MatmulWorkload:
    """The product of one configuration (``workload``: ``size``)."""
    del previous  # never reused
    release()
    return MatmulWorkload(device, precision, workload["size"], seed)


class MatmulWorkload(Workload):
    """One square ``N x N @ N x N`` product: the efficiency frontier of a precision."""

    passes = ("forward",)

    def __init__(self, device: str, precision: str, size: int, seed: int = 0):
        super().__init__(device, precision)
        # drawn where they are used: operands that do not fit fail there (an oom row)
        gen = torch.Generator(device=device).manual_seed(seed)
        dtype = self.precision.dtype if not self.mixed else torch.float32
        self.size = size
        self.a = torch.randn(size, size, generator=gen, device=device).to(dtype=dtype)
        self.b = torch.randn(size, size, generator=gen, device=device).to(dtype=dtype)
        self.parameters = 0

    def steps(self):
        def forward():
            with self.context():
                return self.a @ self.b

        return {"forward": forward}

    def counted(self):
        return {"forward": count_flops(self.steps()["forward"])}

    def describe(self):
        return {"size": self.size, "tokens": self.size}

    def analytic(self):
        return {"forward": {"flops_analytic": 2 * self.size**3}}

    def profiled(self):
        return {}

    def health(self, name, output):
        # NaN/Inf inputs give a non-finite product too, but name the input where one is bad
        return finite_check([self.a, self.b, output], ["input a", "input b", f"output of {name}"])
