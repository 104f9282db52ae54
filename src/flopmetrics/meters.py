"""Energy meters behind the small :class:`flopmetrics.measure.Meter` interface.

* :class:`NvmlCounterMeter` — the GPU's energy counter (Volta and newer). On an H100 the
  counter steps about every 100 ms, so a naive read at each window edge is off by up to one
  step at each end. With ``align=True`` the window opens on a counter tick, and at its end the
  partial last step is filled in at the window's own mean power (see :meth:`end`).
* :class:`PowerSampler` — a background thread (>= 20 Hz) recording instantaneous power, the
  1 s average, clocks, temperature and clock-event (throttle) reasons. It saves the raw
  trace of every job, integrates power over each window (a cross-check of the counter) and is
  the energy source where no counter exists.
* :class:`RaplMeter` — CPU package energy from ``/sys/class/powercap`` where readable.
* :class:`NullMeter` — no meter: NaN energy with an explicit status, never a made-up number.
"""

from __future__ import annotations

import math
import threading
import time
import types
from pathlib import Path

import numpy as np
import pandas as pd

from .nvml import NvmlGpu, read_sample, sample_forever


class MeterError(RuntimeError):
    pass


class NvmlCounterMeter:
    name = "nvml_counter"

    def __init__(self, gpu: NvmlGpu, align: bool = True, poll_s: float = 0.0005, tick_timeout_s: float = 1.0):
        self.gpu = gpu
        self.align = align
        self.poll_s = poll_s
        self.tick_timeout_s = tick_timeout_s
        self.period_s: float | None = None

    def _next_tick(self) -> tuple[float, float]:
        """Busy-poll until the counter changes; return (time of change, new value)."""
        start_value = self.gpu.energy_j()
        deadline = time.perf_counter() + self.tick_timeout_s
        while True:
            value = self.gpu.energy_j()
            now = time.perf_counter()
            if value != start_value:
                return now, value
            if now > deadline:
                raise MeterError(f"NVML energy counter did not change within {self.tick_timeout_s} s")
            time.sleep(self.poll_s)

    def measure_period(self, ticks: int = 5) -> float:
        """Median time between counter updates."""
        times = [self._next_tick()[0] for _ in range(ticks + 1)]
        self.period_s = float(np.median(np.diff(times)))
        return self.period_s

    def begin(self) -> None:
        if self.align:
            if self.period_s is None:
                self.measure_period()
            self._t0, self._e0 = self._next_tick()
        else:
            self._t0, self._e0 = time.perf_counter(), self.gpu.energy_j()

    def end(self, t_end: float) -> dict[str, float]:
        t1, e1 = t_end, self.gpu.energy_j()
        raw = e1 - self._e0
        if not self.align:
            return {"energy_j": raw, "energy_counter_raw_j": raw}
        # e1 holds the energy up to the last tick t1' <= t1. Find the next tick t2 to place t1'
        # at t2 - period, then add the part [t1', t1] at the window's mean power.
        t2, _ = self._next_tick()
        t_last = max(self._t0, min(t1, t2 - self.period_s))
        covered = t_last - self._t0
        if covered <= 0 or e1 == self._e0:  # no counter step inside the window
            raise MeterError("window shorter than one energy-counter period; use longer windows")
        mean_power = raw / covered
        return {
            "energy_j": raw + mean_power * (t1 - t_last),
            "energy_counter_raw_j": raw,
            "counter_period_s": self.period_s,
        }


SAMPLE_COLUMNS = ["t", "wall", "power_instant_w", "power_average_w", "energy_counter_j", "sm_clock_mhz",
                  "mem_clock_mhz", "temperature_c", "clock_event_reasons"]


class PowerSampler:
    """Background sampler of one GPU; also a meter (trace-integrated energy per window).

    With ``process=True`` (the default for the real NVML bindings) sampling runs in a separate
    process: a sampler *thread* in the measured process was measured to read the instantaneous
    power 1-8 % low on an H100, because a thread gets the GIL mostly while the main thread
    waits at synchronisation points, when the GPU drains and power dips. A thread (``False``)
    remains for fakes that cannot cross a process boundary (the CPU tests).
    """

    name = "nvml_trace"

    def __init__(self, gpu: NvmlGpu, hz: float = 50.0, process: bool | None = None, module: str = "pynvml"):
        if hz < 20:
            raise ValueError(f"sampler rate must be >= 20 Hz to resolve pass windows, got {hz}")
        self.gpu = gpu
        self.interval_s = 1.0 / hz
        self.process = process if process is not None else isinstance(gpu.nvml, types.ModuleType)
        self.samples: list[tuple] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._proc = None
        self.module = module  # the bindings the sampler process imports

    def _run_thread(self) -> None:
        next_t = time.perf_counter()
        while not self._stop.is_set():
            s = read_sample(self.gpu)
            with self._lock:
                self.samples.append(s)
            next_t += self.interval_s
            self._stop.wait(max(0.0, next_t - time.perf_counter()))

    def _receive(self, stream) -> None:
        for line in stream:
            values = line.split()
            if len(values) != len(SAMPLE_COLUMNS):
                continue
            s = tuple(float(v) for v in values)
            with self._lock:
                self.samples.append(s)

    def start(self) -> "PowerSampler":
        if not self.process:
            self._thread = threading.Thread(target=self._run_thread, name="flopmetrics-power-sampler", daemon=True)
            self._thread.start()
            return self
        import os
        import subprocess
        import sys

        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "flopmetrics.nvml", self.gpu.uuid(), repr(self.interval_s), self.module],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, bufsize=1, env=env)
        if self._proc.stdout.readline().strip() != "ready":
            self._proc.kill()
            raise MeterError(f"the power-sampler process did not start (exit code {self._proc.poll()})")
        self._thread = threading.Thread(target=self._receive, args=(self._proc.stdout,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
        if self._thread:
            self._thread.join(timeout=10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def trace(self) -> pd.DataFrame:
        with self._lock:
            return pd.DataFrame(list(self.samples), columns=SAMPLE_COLUMNS)

    # --- meter interface -----------------------------------------------------------------
    def begin(self) -> None:
        self._t0 = time.perf_counter()

    def end(self, t_end: float) -> dict[str, float]:
        t1 = t_end
        deadline = t1 + 1.0
        while time.perf_counter() < deadline:  # one sample past the edge, to interpolate there
            with self._lock:
                if self.samples and self.samples[-1][0] > t1:
                    break
            time.sleep(self.interval_s / 4)
        return window_stats(self.trace(), self._t0, t1)


def integrate_power(t: np.ndarray, p: np.ndarray, t0: float, t1: float) -> float:
    """Trapezoid integral of power samples ``p(t)`` over ``[t0, t1]`` (J), interpolating at edges."""
    ok = ~np.isnan(p)
    t, p = t[ok], p[ok]
    if len(t) < 2 or t0 >= t1:
        return math.nan
    inside = (t > t0) & (t < t1)
    ts = np.concatenate([[t0], t[inside], [t1]])
    ps = np.interp(ts, t, p)
    return float(np.sum(np.diff(ts) * (ps[1:] + ps[:-1]) / 2))


def window_stats(trace: pd.DataFrame, t0: float, t1: float) -> dict[str, float]:
    """Trace-derived readings of one window."""
    inside = trace[(trace["t"] >= t0) & (trace["t"] <= t1)]
    energy = integrate_power(trace["t"].to_numpy(), trace["power_instant_w"].to_numpy(float), t0, t1)
    reasons = 0
    for r in inside["clock_event_reasons"]:
        reasons |= int(r)
    return {
        "energy_trace_j": energy,
        "power_mean_w": energy / (t1 - t0) if t1 > t0 else math.nan,
        "power_max_w": float(inside["power_instant_w"].max()) if len(inside) else math.nan,
        "power_average_1s_mean_w": float(inside["power_average_w"].mean()) if len(inside) else math.nan,
        "sm_clock_mean_mhz": float(inside["sm_clock_mhz"].mean()) if len(inside) else math.nan,
        "mem_clock_mean_mhz": float(inside["mem_clock_mhz"].mean()) if len(inside) else math.nan,
        "temperature_max_c": float(inside["temperature_c"].max()) if len(inside) else math.nan,
        "clock_event_reasons": float(reasons),
        "trace_samples": float(len(inside)),
    }


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

    def begin(self) -> None:
        self._e0 = self._read()

    def end(self, t_end: float) -> dict[str, float]:
        total = 0
        for (_, max_range), a, b in zip(self.zones, self._e0, self._read()):
            total += b - a if b >= a else b + max_range - a
        return {"energy_j": total / 1e6}


class NullMeter:
    """Stands in where nothing can be measured: energy is NaN and the status says why."""

    name = "none"

    def __init__(self, reason: str):
        self.reason = reason

    def begin(self) -> None:
        pass

    def end(self, t_end: float) -> dict[str, float]:
        return {"energy_j": math.nan}
