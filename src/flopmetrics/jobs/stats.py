"""Small statistics helpers: mean with standard error, per-iteration estimates over windows, and
differences of measured passes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..contracts.vocabulary import DerivedPass
from ..energy.windows import Window


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

    def __sub__(self, other: Estimate) -> Estimate:
        """Difference of two independent estimates; their SEMs add in quadrature."""
        return Estimate(
            self.mean - other.mean, math.hypot(self.sem, other.sem), min(self.count, other.count)
        )

    def scale(self, factor: float) -> Estimate:
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


def per_iteration(windows: Sequence[Window], key: str | None = None) -> Estimate:
    """Per-iteration time (``key=None``) or per-iteration reading ``key`` over windows."""
    if key is None:
        return estimate([w.elapsed_s / w.iterations for w in windows])
    return estimate([w.readings[key] / w.iterations for w in windows])


def relative_error(windows: Sequence[Window]) -> float:
    """SEM / mean of the per-iteration energy (time where no meter reads energy); inf for one
    window."""
    energies = [w.readings.get("energy_j", math.nan) for w in windows]
    key = "energy_j" if all(math.isfinite(e) for e in energies) else None
    est = per_iteration(windows, key)
    return est.sem / abs(est.mean) if est.count > 1 and est.mean else math.inf


def derive(estimates: dict[str, Estimate], derived: Sequence[DerivedPass]) -> dict[str, Estimate]:
    """Add derived passes to ``estimates`` (errors propagated in quadrature)."""
    out = dict(estimates)
    for dp in derived:
        out[dp.name] = out[dp.minuend] - out[dp.subtrahend]
    return out
