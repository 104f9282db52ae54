"""A fake of the NVML bindings (the subset flopmetrics uses), for the CPU-only CI.

It simulates one GPU whose board power follows a schedule set by the test, an energy counter
that, like the H100's, only steps every ``period_s`` (holding the exact integral of power up to
the last step), an instantaneous power field, a 1 s moving average, clocks, temperature and
clock-event reasons. Only this hardware edge is fake: every flopmetrics class above
``flopmetrics.energy.nvml.NvmlGpu`` runs unchanged, and the same code ran on a real H100.
"""

from __future__ import annotations

import bisect
import threading
import time
from types import SimpleNamespace


class FakeNvml:
    NVML_FI_DEV_POWER_INSTANT = 186

    def __init__(
        self,
        idle_w=60.0,
        period_s=0.1,
        has_counter=True,
        name="NVIDIA H100 80GB HBM3",
        power_limit_w=700.0,
        counter_delay_s=0.0,
    ):
        self._lock = threading.Lock()
        self.t_start = time.perf_counter()
        self.changes = [(self.t_start, idle_w)]  # (time, watts) steps of the power schedule
        self.period_s = period_s
        self.has_counter = has_counter
        self.counter_delay_s = counter_delay_s
        self.name = name
        self.power_limit_w = power_limit_w
        self.reasons = 0
        self.processes = []
        self.calls = 0

    # --- the simulation --------------------------------------------------------------
    def set_power(self, watts: float) -> None:
        with self._lock:
            self.changes.append((time.perf_counter(), float(watts)))

    def power_at(self, t: float) -> float:
        with self._lock:
            i = bisect.bisect_right([c[0] for c in self.changes], t) - 1
            return self.changes[max(i, 0)][1]

    def energy_between(self, t0: float, t1: float) -> float:
        """Exact integral of the schedule over [t0, t1] (J)."""
        with self._lock:
            changes = list(self.changes)
        total = 0.0
        for i, (ts, w) in enumerate(changes):
            te = changes[i + 1][0] if i + 1 < len(changes) else float("inf")
            lo, hi = max(ts, t0), min(te, t1)
            if hi > lo:
                total += w * (hi - lo)
        return total

    def _last_tick(self, t: float) -> float:
        k = int((t - self.t_start - self.counter_delay_s) // self.period_s)
        return self.t_start + max(k, 0) * self.period_s

    # --- the NVML functions ------------------------------------------------------------
    def nvmlInit(self):
        pass

    def nvmlDeviceGetHandleByIndex(self, index):
        return SimpleNamespace(index=index)

    def nvmlDeviceGetHandleByUUID(self, uuid):
        return SimpleNamespace(index=0)

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        self.calls += 1
        if not self.has_counter:
            raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")
        return int(
            round(1000 * self.energy_between(self.t_start, self._last_tick(time.perf_counter())))
        )

    def nvmlDeviceGetFieldValues(self, handle, field_ids):
        assert list(field_ids) == [self.NVML_FI_DEV_POWER_INSTANT]
        value = SimpleNamespace(uiVal=int(round(self.power_at(time.perf_counter()) * 1000)))
        return [SimpleNamespace(nvmlReturn=0, value=value)]

    def nvmlDeviceGetPowerUsage(self, handle):
        now = time.perf_counter()
        return int(round(1000 * self.energy_between(now - 1.0, now)))  # 1 s moving average, mW

    def nvmlDeviceGetClockInfo(self, handle, clock):
        return 1980 if clock == 1 else 2619

    def nvmlDeviceGetTemperature(self, handle, sensor):
        return 45

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle):
        return self.reasons

    def nvmlDeviceGetEnforcedPowerLimit(self, handle):
        return int(self.power_limit_w * 1000)

    def nvmlDeviceGetName(self, handle):
        return self.name

    def nvmlDeviceGetUUID(self, handle):
        return "GPU-00000000-fake-0000-0000-000000000000"

    def nvmlSystemGetDriverVersion(self):
        return "999.99-fake"

    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        return [SimpleNamespace(pid=p) for p in self.processes]
