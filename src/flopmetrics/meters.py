"""Energy meters behind the small :class:`flopmetrics.measure.Meter` interface.

* :class:`PowerSampler` — a background sampler (>= 20 Hz) recording instantaneous power, the
  1 s average, clocks, temperature and clock-event (throttle) reasons, and timing every step
  of the GPU's energy counter. It saves the raw trace of every job, integrates power over each
  window (a cross-check of the counter) and is the energy source where no counter exists. On an
  H100 the instant-power field updates only every ~100 ms and averages a shorter span, so its
  integral aliases with work that repeats near that period (measured: up to tens of percent per
  window for a load swinging between idle and full power); the counter does not.
* :class:`NvmlCounterMeter` — the GPU's energy counter (Volta and newer). On an H100 the counter
  steps only about every 100 ms and each step is reported some time after the energy it holds
  was spent. The meter therefore reads the counter *between* its steps: it interpolates the
  sampler's record of (step time, value) linearly at the window's two edges. Where the GPU runs
  the same work just before and just after the window (the guard iterations of
  :func:`flopmetrics.measure.run_window`), power is steady across each edge and the
  interpolation is exact whatever the reporting delay, since the delay shifts both edges alike.
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

from .nvml import NvmlGpu, sampling_loop


class MeterError(RuntimeError):
    pass


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

    def __init__(self, gpu: NvmlGpu, hz: float = 50.0, process: bool | None = None, module: str = "pynvml",
                 tick_poll_s: float = 0.001):
        if hz < 20:
            raise ValueError(f"sampler rate must be >= 20 Hz to resolve pass windows, got {hz}")
        self.gpu = gpu
        self.interval_s = 1.0 / hz
        self.tick_poll_s = tick_poll_s
        self.process = process if process is not None else isinstance(gpu.nvml, types.ModuleType)
        self.samples: list[tuple] = []
        self._ticks: list[tuple[float, float]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._proc = None
        self.module = module  # the bindings the sampler process imports

    def _add_sample(self, s: tuple) -> None:
        with self._lock:
            self.samples.append(s)

    def _add_tick(self, t: float, e: float) -> None:
        with self._lock:
            self._ticks.append((t, e))

    def _receive(self, stream) -> None:
        for line in stream:
            values = line.split()
            if values and values[0] == "T" and len(values) == 3:
                self._add_tick(float(values[1]), float(values[2]))
            elif len(values) == len(SAMPLE_COLUMNS):
                self._add_sample(tuple(float(v) for v in values))

    def start(self) -> "PowerSampler":
        if not self.process:
            self._thread = threading.Thread(
                target=sampling_loop, name="flopmetrics-power-sampler", daemon=True,
                args=(self.gpu, self.interval_s, self.tick_poll_s, self._add_sample, self._add_tick, self._stop.is_set))
            self._thread.start()
            return self
        import os
        import subprocess
        import sys

        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "flopmetrics.nvml", self.gpu.uuid(), repr(self.interval_s), self.module,
             repr(self.tick_poll_s)],
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

    def trace_with_steps(self) -> pd.DataFrame:
        """The trace plus, on each sample, the latest counter step before it (``counter_step_t``,
        ``counter_step_j``): every step is kept (samples outnumber steps), so the counter
        readings can be recomputed from the saved trace."""
        trace = self.trace()
        steps = pd.DataFrame(self.ticks(), columns=["counter_step_t", "counter_step_j"])
        if trace.empty or steps.empty:
            return trace.assign(counter_step_t=np.nan, counter_step_j=np.nan)
        return pd.merge_asof(trace.sort_values("t"), steps, left_on="t", right_on="counter_step_t",
                             direction="backward")

    def ticks(self) -> np.ndarray:
        """The energy counter's steps seen so far: rows of (time, joules)."""
        with self._lock:
            return np.array(self._ticks, dtype=float).reshape(-1, 2)

    def wait_for(self, t: float, timeout_s: float = 1.0, tick: bool = False) -> bool:
        """Wait until a sample (or, with ``tick``, a counter step) later than ``t`` was recorded."""
        deadline = time.perf_counter() + timeout_s
        while True:
            with self._lock:
                seq = self._ticks if tick else self.samples
                if seq and seq[-1][0] > t:
                    return True
            if time.perf_counter() > deadline:
                return False
            time.sleep(min(self.interval_s, 0.005))

    # --- meter interface -----------------------------------------------------------------
    def begin(self, t_start: float) -> None:
        self._t0 = t_start

    def end(self, t_end: float) -> dict[str, float]:
        self.wait_for(t_end)  # one sample past the edge, to interpolate there
        return window_stats(self.trace(), self._t0, t_end)


class NvmlCounterMeter:
    """Window energy from the GPU's energy counter, read between its steps (see module doc).

    ``sampler`` keeps the record of counter steps; it must be running before the window opens.
    ``energy_j`` is the interpolated reading; ``energy_counter_raw_j`` the plain difference of
    the last values before each edge, which is off by up to one step at each end.
    """

    name = "nvml_counter"

    def __init__(self, sampler: PowerSampler, wait_s: float = 2.0):
        self.sampler = sampler
        self.wait_s = wait_s

    def begin(self, t_start: float) -> None:
        self._t0 = t_start

    def end(self, t_end: float) -> dict[str, float]:
        if not self.sampler.wait_for(t_end, self.wait_s, tick=True):
            raise MeterError(f"the NVML energy counter did not step within {self.wait_s} s after the window")
        ticks = self.sampler.ticks()
        return counter_window(ticks[:, 0], ticks[:, 1], self._t0, t_end)


def counter_window(t: np.ndarray, e: np.ndarray, t0: float, t1: float) -> dict[str, float]:
    """Energy over ``[t0, t1]`` from the counter's steps (times ``t``, values ``e``), interpolated
    linearly between steps at both edges; also the plain difference of the last values before
    each edge, and the step period near the window."""
    if not len(t) or t[0] > t0:
        raise MeterError("no energy-counter step was recorded before the window opened; start the sampler earlier")
    if len(t) < 2 or t[-1] <= t1:
        raise MeterError("no energy-counter step was recorded after the window closed")
    if not ((t > t0) & (t <= t1)).any():
        raise MeterError("window shorter than one energy-counter period; use longer windows")
    before_start, before_end = np.searchsorted(t, t0, "right") - 1, np.searchsorted(t, t1, "right") - 1
    near = t[max(before_start - 1, 0):before_end + 3]
    return {
        "energy_j": float(np.interp(t1, t, e) - np.interp(t0, t, e)),
        "energy_counter_raw_j": float(e[before_end] - e[before_start]),
        "counter_period_s": float(np.median(np.diff(near))),
    }


def windows_from_trace(trace: pd.DataFrame) -> pd.DataFrame:
    """Recompute every window's energy from a saved job trace (its counter steps and instant
    power): one row per (window, repeat) with its edges, iterations, ``energy_j`` (counter) and
    ``energy_trace_j`` (integrated instant power)."""
    steps = trace[["counter_step_t", "counter_step_j"]].dropna().drop_duplicates().sort_values("counter_step_t")
    t, e = steps["counter_step_t"].to_numpy(), steps["counter_step_j"].to_numpy()
    sample_t, power = trace["t"].to_numpy(), trace["power_instant_w"].to_numpy(float)
    out = []
    labelled = trace[trace["window"].ne("")]
    for (name, repeat), g in labelled.groupby(["window", "repeat"], sort=False):
        t0, t1 = float(g["window_start_t"].iloc[0]), float(g["window_end_t"].iloc[0])
        out.append({"window": name, "repeat": int(repeat), "start_t": t0, "end_t": t1,
                    "iterations": int(g["window_iterations"].iloc[0]),
                    "energy_j": counter_window(t, e, t0, t1)["energy_j"],
                    "energy_trace_j": integrate_power(sample_t, power, t0, t1)})
    return pd.DataFrame(out)


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

    def begin(self, t_start: float) -> None:
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

    def begin(self, t_start: float) -> None:
        pass

    def end(self, t_end: float) -> dict[str, float]:
        return {"energy_j": math.nan}
