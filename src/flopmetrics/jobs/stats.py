"""Small statistics helpers: mean with standard error, and differences of measured passes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Estimate:
    """A mean with its standard error (SEM) over ``count`` repeats."""

    mean: float
    sem: float
    count: int

    @property
    def cv(self) -> float:
        """Coefficient of variation of the repeats (sample std / mean)."""
        if self.count < 2 or self.mean == 0:
            return math.nan
        return self.sem * math.sqrt(self.count) / abs(self.mean)

    def __sub__(self, other: "Estimate") -> "Estimate":
        """Difference of two independent estimates; their SEMs add in quadrature."""
        return Estimate(
            self.mean - other.mean, math.hypot(self.sem, other.sem), min(self.count, other.count)
        )

    def scale(self, factor: float) -> "Estimate":
        return Estimate(self.mean * factor, abs(self.sem * factor), self.count)


def estimate(values: Sequence[float]) -> Estimate:
    """Mean and SEM (sample standard deviation / sqrt(n)); SEM is NaN for one value."""
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("cannot estimate from no values")
    n = len(vals)
    mean = math.fsum(vals) / n
    if n < 2:
        return Estimate(mean, math.nan, n)
    var = math.fsum((v - mean) ** 2 for v in vals) / (n - 1)
    return Estimate(mean, math.sqrt(var / n), n)
