"""A job's rows: one per pass (direct and derived), from its windows, FLOP counts and idle
baseline; and its trace, each sample labelled with its window."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..contracts.vocabulary import ATTENTION_BACKWARD_PER_FORWARD, derivable
from ..energy.efficiency import add_efficiency
from ..energy.nvml import throttle_names
from .stats import Estimate, derive, estimate, per_iteration


def _mean_reading(windows, key) -> float:
    vals = [w.readings.get(key, math.nan) for w in windows]
    return float(np.nanmean(vals)) if vals and not all(math.isnan(v) for v in vals) else math.nan


def label_trace(trace, windows, idle_window):
    """Name the window of each sample, and put each window's exact edges and iteration count
    on its samples, so every row's energy can be recomputed from the saved trace (windows a
    pass superseded by longer ones are named "<pass> (superseded)")."""
    trace = trace.copy()
    trace["window"] = ""
    trace["repeat"] = -1
    trace[["window_start_t", "window_end_t"]] = np.nan
    trace["window_iterations"] = 0
    spans = [(idle_window, "idle", 0)] if idle_window else []
    for name, ws in windows.items():
        spans += [(w, name, i) for i, w in enumerate(ws)]
        # windows superseded by longer ones (jobs/protocol.SPREAD): in the trace, under their own
        # name
        spans += [
            (w, f"{name} (superseded)", i) for i, w in enumerate(ws[0].replaces if ws else [])
        ]
    for w, name, i in spans:
        inside = (trace["t"] >= w.start_s) & (trace["t"] <= w.end_s)
        trace.loc[inside, ["window", "repeat"]] = [name, i]
        trace.loc[inside, ["window_start_t", "window_end_t", "window_iterations"]] = [
            w.start_s,
            w.end_s,
            w.iterations,
        ]
    t0 = trace["t"].iloc[0]
    trace["t_rel_s"] = trace["t"] - t0
    return trace


def build_rows(workload, windows, counts, idle, measure, base) -> pd.DataFrame:
    """One row per direct and derived pass; ``counts``: the configuration's FLOP counts
    (``counted``, ``analytic``, ``profiled``), ``base``: its identity, device and provenance
    columns."""
    derived = derivable(tuple(windows))
    idle_w = idle.get("idle_power_w", math.nan)
    est = _estimates(windows, derived, idle_w)
    flops = workload.headline_flops(counts.counted, counts.analytic)
    rows = []
    for p in (*windows, *(d.name for d in derived)):
        ws = windows.get(p, [])
        rows.append(
            {
                **base,
                "pass": p,
                "derived": p not in windows,
                **_numerics(p, windows, derived),
                "launch": _launch(p, windows, derived),
                **_launch_check(p, windows),
                "precision": workload.precision_mode,
                **workload.describe(),
                **_flop_columns(p, flops, counts),
                "repeats": measure.repeats,
                "min_window_s": measure.min_window_s,
                **_window_columns(p, windows, derived),
                **_estimate_columns(p, est),
                "idle_power_w": idle_w,
                **_reading_columns(ws),
            }
        )
    df = add_efficiency(pd.DataFrame(rows))
    df["counter_vs_trace_pct"] = (
        100
        * (df["energy_j_per_iter"] - df["energy_trace_j_per_iter"])
        / df["energy_trace_j_per_iter"]
    )
    return df


def _estimates(windows, derived, idle_w) -> dict:
    """Per pass (derived passes by difference): time, energy, trace energy (where every window
    has it) and dynamic energy (above what the idle device would have used over the same time)."""
    est = {
        "time": derive({p: per_iteration(ws) for p, ws in windows.items()}, derived),
        "energy": derive({p: per_iteration(ws, "energy_j") for p, ws in windows.items()}, derived),
        "dynamic": derive({p: _dynamic(ws, idle_w) for p, ws in windows.items()}, derived),
    }
    if all("energy_trace_j" in w.readings for ws in windows.values() for w in ws):
        trace = {p: per_iteration(ws, "energy_trace_j") for p, ws in windows.items()}
        est["trace"] = derive(trace, derived)
    return est


def _estimate_columns(p, est) -> dict:
    t, e, dyn = est["time"][p], est["energy"][p], est["dynamic"][p]
    return {
        "time_per_iter_s": t.mean,
        "time_per_iter_sem_s": t.sem,
        "energy_j_per_iter": e.mean,
        "energy_j_per_iter_sem": e.sem,
        "energy_cv": e.cv,
        "energy_trace_j_per_iter": est["trace"][p].mean if "trace" in est else math.nan,
        "dynamic_energy_j_per_iter": dyn.mean,
        "dynamic_energy_j_per_iter_sem": dyn.sem,
    }


def _flop_columns(p, flops, counts) -> dict:
    f, source = flops.get(p, (math.nan, ""))
    c = counts.counted.get(p)
    return {
        "flops": f,
        "flops_source": source,
        "flops_counted": c.total if c else pd.NA,
        "flops_counted_attention": c.attention if c else pd.NA,
        # the attention convention of these counts (flopmetrics.flops.counted)
        "attention_backward_per_forward": ATTENTION_BACKWARD_PER_FORWARD,
        **counts.analytic.get(p, {}),
        "flops_profiler": counts.profiled.get(p, pd.NA),
    }


def _window_columns(p, windows, derived) -> dict:
    ws = windows.get(p, [])
    if not ws:  # a derived pass: its parts' windows
        parts = [x for d in derived if d.name == p for x in (d.minuend, d.subtrahend)]
        return {
            "windows": min(len(windows[d.minuend]) for d in derived if d.name == p),
            "iterations_per_window": pd.NA,
            "window_s_min": min(w.elapsed_s for x in parts for w in windows[x]),
            "window_s_mean": math.nan,
        }
    return {
        "windows": len(ws),
        "iterations_per_window": min(w.iterations for w in ws),
        "window_s_min": min(w.elapsed_s for w in ws),
        "window_s_mean": float(np.mean([w.elapsed_s for w in ws])),
    }


def _reading_columns(ws) -> dict:
    """What the meters read over a pass's windows (NaN for a derived pass)."""
    if not ws:
        nan = dict.fromkeys(
            ("power_mean_w", "power_max_w", "power_counter_mean_w", "sm_clock_mean_mhz"), math.nan
        )
        return {
            **nan,
            "mem_clock_mean_mhz": math.nan,
            "temperature_max_c": math.nan,
            "clock_event_reasons": 0,
            "throttle_reasons": "",
            "counter_period_s": math.nan,
        }
    reasons = _or_reasons(ws)
    return {
        "power_mean_w": _mean_reading(ws, "power_mean_w"),
        "power_max_w": max(w.readings.get("power_max_w", math.nan) for w in ws),
        "power_counter_mean_w": sum(w.readings.get("energy_j", math.nan) for w in ws)
        / sum(w.elapsed_s for w in ws),
        "sm_clock_mean_mhz": _mean_reading(ws, "sm_clock_mean_mhz"),
        "mem_clock_mean_mhz": _mean_reading(ws, "mem_clock_mean_mhz"),
        "temperature_max_c": max(w.readings.get("temperature_max_c", math.nan) for w in ws),
        "clock_event_reasons": int(reasons),
        "throttle_reasons": ",".join(throttle_names(reasons)),
        "counter_period_s": _mean_reading(ws, "counter_period_s"),
    }


def _numerics(p, windows, derived) -> dict:
    """``numerics`` of a pass (finite, non_finite or unknown over all its windows; a derived
    pass takes both of its parts), the first non-finite tensor, and the status that follows."""
    parts = (
        [p]
        if p in windows
        else [x for d in derived if d.name == p for x in (d.minuend, d.subtrahend)]
    )
    ws = [w for name in parts for w in windows[name]]
    bad = [w for w in ws if w.numerics == "non_finite"]
    if bad:
        numerics = "non_finite"
    else:
        numerics = "finite" if ws and all(w.numerics == "finite" for w in ws) else "unknown"
    first = f"{bad[0].name}: {bad[0].first_nonfinite}" if bad else ""
    return {
        "numerics": numerics,
        "numerics_first_nonfinite": first,
        "status": "non_finite" if bad else "ok",
        "error": f"non-finite values in {first}" if bad else "",
    }


def _launch(p, windows, derived) -> str:
    """How a pass's iterations were issued: eager or cuda_graph; a derived pass whose two parts
    were issued differently is ``mixed``."""
    parts = (
        [p]
        if p in windows
        else [x for d in derived if d.name == p for x in (d.minuend, d.subtrahend)]
    )
    kinds = {w.launch for name in parts for w in windows[name]}
    return kinds.pop() if len(kinds) == 1 else "mixed"


def _launch_check(p, windows) -> dict:
    """``launch: auto``'s measurements of a direct pass, eager (%): the host's time to issue
    one iteration over its time, and, where that did not clear it, the GPU's profiled idle share."""
    check = windows[p][0].launch_check if p in windows and windows[p] else {}
    return {
        "host_issue_pct": 100 * check.get("host_issue_share", math.nan),
        "gpu_idle_pct": 100 * check.get("gpu_idle_share", math.nan),
    }


def _or_reasons(ws) -> int:
    out = 0
    for w in ws:
        r = w.readings.get("clock_event_reasons", 0)
        out |= int(r) if not math.isnan(r) else 0
    return out


def _dynamic(ws, idle_w) -> Estimate:
    return estimate(
        [(w.readings.get("energy_j", math.nan) - idle_w * w.elapsed_s) / w.iterations for w in ws]
    )
