"""CPU energy (RAPL) and the stand-in for "nothing can be measured here"."""

from __future__ import annotations

import math
from pathlib import Path

from ..contracts.errors import MeterError


class RaplMeter:
    """Sum of CPU package energy counters under /sys/class/powercap (wrap-around handled)."""

    name = "rapl"

    def __init__(self, root: str | Path = "/sys/class/powercap"):
        self.zones = []
        for zone in sorted(Path(root).glob("intel-rapl:*")):
            if zone.name.count(":") != 1:  # packages only; sub-zones are parts of them
                continue
            energy, max_range = zone / "energy_uj", zone / "max_energy_range_uj"
            try:
                int(energy.read_text())
                self.zones.append((energy, int(max_range.read_text())))
            except (OSError, ValueError):
                continue
        if not self.zones:
            raise MeterError(f"no readable RAPL package counters under {root}")

    def _read(self) -> list[int]:
        return [int(e.read_text()) for e, _ in self.zones]

    def begin(self, t_start: float) -> None:
        self._e0 = self._read()

    def end(self, t_end: float) -> dict[str, float]:
        total = 0
        for (_, max_range), a, b in zip(self.zones, self._e0, self._read(), strict=False):
            total += b - a if b >= a else b + max_range - a
        return {"energy_j": total / 1e6}


class NullMeter:
    """Stands in where nothing can be measured: energy is NaN and the status says why."""

    name = "none"

    def __init__(self, reason: str):
        self.reason = reason

    def begin(self, t_start: float) -> None:
        pass

    def end(self, t_end: float) -> dict[str, float]:
        return {"energy_j": math.nan}
