"""A job's rows: one per pass (direct and derived), from its windows, FLOP counts and idle
baseline; and its trace, each sample labelled with its window."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..contracts.vocabulary import derivable
from ..energy.efficiency import add_efficiency
from ..energy.nvml import throttle_names
from .passes import derive, per_iteration
from .stats import Estimate, estimate


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
        # windows superseded by longer ones (jobs/passes.SPREAD): in the trace, under their own name
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


def _flops_for(workload, counted, convention, headline, analytic_cols):
    """Headline FLOPs per pass, and where they came from."""
    out = {}
    for name in (
        "forward",
        "forward_train",
        "forward_backward",
        "forward_backward_local",
        "backward",
    ):
        if name in counted:
            out[name] = (
                counted[name].with_convention(convention),
                f"FlopCounterMode ({convention} attention)",
            )
    opt = workload.optimizer_flops() if hasattr(workload, "optimizer_flops") else 0
    if "forward_backward" in out:
        out["optimizer"] = (opt, "analytic AdamW (14 FLOPs/parameter)")
        out["train_step"] = (out["forward_backward"][0] + opt, "FlopCounterMode + analytic AdamW")
    if headline == "analytic":
        out = {k: (v["flops_analytic"], "analytic") for k, v in analytic_cols.items()}
    return out


def build_rows(workload, windows, counted, analytic_cols, profiled, idle, measure, base, other):
    """One row per direct and derived pass; ``base``: the job's identity and provenance columns."""
    convention, headline = workload.attention_convention, workload.headline
    direct = tuple(windows)
    derived = derivable(direct)
    est = {
        "time": derive({p: per_iteration(ws) for p, ws in windows.items()}, derived),
        "energy": derive({p: per_iteration(ws, "energy_j") for p, ws in windows.items()}, derived),
    }
    has_trace = all("energy_trace_j" in w.readings for ws in windows.values() for w in ws)
    if has_trace:
        est["trace"] = derive(
            {p: per_iteration(ws, "energy_trace_j") for p, ws in windows.items()}, derived
        )
    idle_w = idle.get("idle_power_w", math.nan)
    # dynamic energy: above what the idle device would have used over the same time
    dyn = {p: _dynamic(ws, idle_w) for p, ws in windows.items()}
    est["dynamic"] = derive(dyn, derived)
    flops = _flops_for(workload, counted, convention, headline, analytic_cols)
    rows = []
    for p in (*direct, *(d.name for d in derived)):
        ws = windows.get(p, [])
        t, e = est["time"][p], est["energy"][p]
        f, source = flops.get(p, (math.nan, ""))
        c = counted.get(p)
        row = {
            **base,
            "workload": workload.kind,
            "pass": p,
            "derived": p not in windows,
            **_numerics(p, windows, derived),
            "launch": _launch(p, windows, derived),
            **_launch_check(p, windows),
            "precision": workload.precision_mode,
            **workload.describe(),
            "flops": f,
            "flops_source": source,
            "flops_counted": c.total if c else pd.NA,
            "flops_counted_attention": c.attention if c else pd.NA,
            **analytic_cols.get(p, {}),
            "flops_profiler": profiled.get(p, pd.NA),
            "repeats": measure.repeats,
            "min_window_s": measure.min_window_s,
            "windows": len(ws)
            if ws
            else min(len(windows[d.minuend]) for d in derived if d.name == p),
            "iterations_per_window": min((w.iterations for w in ws), default=pd.NA),
            "window_s_min": min(
                (w.elapsed_s for w in ws), default=_component_min(windows, derived, p)
            ),
            "window_s_mean": float(np.mean([w.elapsed_s for w in ws])) if ws else math.nan,
            "time_per_iter_s": t.mean,
            "time_per_iter_sem_s": t.sem,
            "energy_j_per_iter": e.mean,
            "energy_j_per_iter_sem": e.sem,
            "energy_cv": e.cv,
            "energy_trace_j_per_iter": est["trace"][p].mean if has_trace else math.nan,
            "dynamic_energy_j_per_iter": est["dynamic"][p].mean,
            "dynamic_energy_j_per_iter_sem": est["dynamic"][p].sem,
            "idle_power_w": idle_w,
            "power_mean_w": _mean_reading(ws, "power_mean_w") if ws else math.nan,
            "power_max_w": max(
                (w.readings.get("power_max_w", math.nan) for w in ws), default=math.nan
            ),
            "power_counter_mean_w": (
                sum(w.readings.get("energy_j", math.nan) for w in ws) / sum(w.elapsed_s for w in ws)
            )
            if ws
            else math.nan,
            "sm_clock_mean_mhz": _mean_reading(ws, "sm_clock_mean_mhz") if ws else math.nan,
            "mem_clock_mean_mhz": _mean_reading(ws, "mem_clock_mean_mhz") if ws else math.nan,
            "temperature_max_c": max(
                (w.readings.get("temperature_max_c", math.nan) for w in ws), default=math.nan
            ),
            "clock_event_reasons": int(_or_reasons(ws)),
            "throttle_reasons": ",".join(throttle_names(_or_reasons(ws))),
            "counter_period_s": _mean_reading(ws, "counter_period_s") if ws else math.nan,
            "other_processes": len(other),
        }
        rows.append(row)
    df = add_efficiency(pd.DataFrame(rows))
    df["counter_vs_trace_pct"] = (
        100
        * (df["energy_j_per_iter"] - df["energy_trace_j_per_iter"])
        / df["energy_trace_j_per_iter"]
    )
    return df


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


def _component_min(windows, derived, p):
    for d in derived:
        if d.name == p:
            return min(w.elapsed_s for name in (d.minuend, d.subtrahend) for w in windows[name])
    return math.nan


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
