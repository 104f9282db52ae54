"""Window energy from the GPU's energy counter, and recomputing windows from a saved trace.

The counter (Volta and newer) steps only about every 100 ms on the cards measured here and each
step is reported some time after the energy it holds was spent. :class:`NvmlCounterMeter` therefore
reads the counter *between* its steps: it interpolates the sampler's record of (step time,
value) linearly at the window's two edges. Where the GPU runs the same work just before and
just after the window (the guard iterations of :func:`flopmetrics.energy.windows.run_window`),
power is steady across each edge and the interpolation is exact whatever the reporting delay,
since the delay shifts both edges alike.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd

from ..contracts.errors import MeterError


class NvmlCounterMeter:
    """Window energy from the GPU's energy counter, read between its steps (see module doc).

    ``sampler`` keeps the record of counter steps; it must be running before the window opens.
    ``energy_j`` is the interpolated reading; ``energy_counter_raw_j`` the plain difference of
    the last values before each edge, which is off by up to one step at each end.
    """

    name = "nvml_counter"

    def __init__(self, sampler, wait_s: float = 2.0):
        self.sampler = sampler
        self.wait_s = wait_s

    def begin(self, t_start: float) -> None:
        self._t0 = t_start

    def covers(self, t: float, margin_s: float = 0.02) -> bool:
        """Whether the counter has stepped more than ``margin_s`` after ``t`` (a step holds the
        energy of about 5 ms before it is seen): work run until then frames an edge at ``t``."""
        ticks = self.sampler.ticks()
        if len(ticks) and ticks[-1, 0] > t + margin_s:
            return True
        self._check_alive(t)
        return False

    def _check_alive(self, t: float, waited: bool = False) -> None:
        """Raise where the counter can no longer step after ``t``: its sampler failed, or no
        step came for ``wait_s`` (``waited``: that long was just waited for one); work run until
        it steps would otherwise run for ever."""
        check = getattr(self.sampler, "check", None)
        if check:
            check()
        if waited or time.perf_counter() > t + self.wait_s:
            raise MeterError(
                f"the NVML energy counter did not step within {self.wait_s} s after the window"
            )

    def end(self, t_end: float) -> dict[str, float]:
        return self.read(self._t0, t_end)

    def read(self, t_start: float, t_end: float) -> dict[str, float]:
        """The reading of any past window ``[t_start, t_end]`` (the record keeps every step)."""
        if not self.sampler.wait_for(t_end, self.wait_s, tick=True):
            self._check_alive(t_end, waited=True)
        ticks = self.sampler.ticks()
        return counter_window(ticks[:, 0], ticks[:, 1], t_start, t_end)


def counter_window(t: np.ndarray, e: np.ndarray, t0: float, t1: float) -> dict[str, float]:
    """Energy over ``[t0, t1]`` from the counter's steps (times ``t``, values ``e``), interpolated
    linearly between steps at both edges; also the plain difference of the last values before
    each edge, and the step period near the window."""
    if not len(t) or t[0] > t0:
        raise MeterError(
            "no energy-counter step was recorded before the window opened; start the sampler "
            "earlier"
        )
    if len(t) < 2 or t[-1] <= t1:
        raise MeterError("no energy-counter step was recorded after the window closed")
    if not ((t > t0) & (t <= t1)).any():
        raise MeterError("window shorter than one energy-counter period; use longer windows")
    before_start, before_end = (
        np.searchsorted(t, t0, "right") - 1,
        np.searchsorted(t, t1, "right") - 1,
    )
    near = t[max(before_start - 1, 0) : before_end + 3]
    return {
        "energy_j": float(np.interp(t1, t, e) - np.interp(t0, t, e)),
        "energy_counter_raw_j": float(e[before_end] - e[before_start]),
        "counter_period_s": float(np.median(np.diff(near))),
    }


def windows_from_trace(trace: pd.DataFrame) -> pd.DataFrame:
    """Recompute every window's energy from a saved job trace (its counter steps and instant
    power): one row per (window, repeat) with its edges, iterations, ``energy_j`` (counter) and
    ``energy_trace_j`` (integrated instant power)."""
    steps = (
        trace[["counter_step_t", "counter_step_j"]]
        .dropna()
        .drop_duplicates()
        .sort_values("counter_step_t")
    )
    t, e = steps["counter_step_t"].to_numpy(), steps["counter_step_j"].to_numpy()
    sample_t, power = trace["t"].to_numpy(), trace["power_instant_w"].to_numpy(float)
    out = []
    labelled = trace[trace["window"].ne("")]
    for (name, repeat), g in labelled.groupby(["window", "repeat"], sort=False):
        t0, t1 = float(g["window_start_t"].iloc[0]), float(g["window_end_t"].iloc[0])
        out.append(
            {
                "window": name,
                "repeat": int(repeat),
                "start_t": t0,
                "end_t": t1,
                "iterations": int(g["window_iterations"].iloc[0]),
                "energy_j": counter_window(t, e, t0, t1)["energy_j"],
                "energy_trace_j": integrate_power(sample_t, power, t0, t1),
            }
        )
    return pd.DataFrame(out)


def integrate_power(t: np.ndarray, p: np.ndarray, t0: float, t1: float) -> float:
    """Trapezoid integral of power samples ``p(t)`` over ``[t0, t1]`` (J), interpolating at the
    edges."""
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
    energy = integrate_power(
        trace["t"].to_numpy(), trace["power_instant_w"].to_numpy(float), t0, t1
    )
    reasons = 0
    for r in inside["clock_event_reasons"]:
        reasons |= int(r)
    return {
        "energy_trace_j": energy,
        "power_mean_w": energy / (t1 - t0) if t1 > t0 else math.nan,
        "power_max_w": float(inside["power_instant_w"].max()) if len(inside) else math.nan,
        "power_average_1s_mean_w": float(inside["power_average_w"].mean())
        if len(inside)
        else math.nan,
        "sm_clock_mean_mhz": float(inside["sm_clock_mhz"].mean()) if len(inside) else math.nan,
        "mem_clock_mean_mhz": float(inside["mem_clock_mhz"].mean()) if len(inside) else math.nan,
        "temperature_max_c": float(inside["temperature_c"].max()) if len(inside) else math.nan,
        "clock_event_reasons": float(reasons),
        "trace_samples": float(len(inside)),
    }
