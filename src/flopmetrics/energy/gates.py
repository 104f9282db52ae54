"""Plausibility gates: every row is checked against physics and measurement hygiene.

Rows are kept and flagged, never dropped. Each gate adds a boolean column ``gate_<name>``
(True = passed or not applicable); ``gates_passed`` is their conjunction and
``gate_failures`` lists the failed ones.

==================  ===========================================================================
``peak_flops``      achieved FLOP/s <= the datasheet's dense peak for the precision
``flops_per_joule`` FLOPs/J <= peak / TDP (the most a GPU can do per Joule at its rated power)
``power``           mean power <= enforced power limit + 10 % (:data:`POWER_TOLERANCE`)
``window``          every window ran at least the configured minimum, and at least
                    ``COUNTER_PERIODS`` steps of the energy counter where one was read (a
                    shorter window is mostly interpolation between two counter readings)
``bandwidth``       a serving pass moved its bytes (weights, KV cache) no faster than the
                    datasheet's memory bandwidth (``bandwidth_fraction`` <= 1)
``exclusive``       no other compute process shared the GPU
``throttle``        no hardware slowdown of the clocks during the windows (``hw_slowdown``,
                    ``hw_thermal``, ``hw_power_brake``: emergency measures of the board). The
                    driver's own regulation is flagged, not failed: the software power cap
                    (clocks held so the board stays at its power limit, the normal operating
                    point of a saturated H100) in ``power_capped``, software thermal slowdown
                    (clocks lowered to hold the temperature target under sustained load) in
                    ``thermally_limited``; such a row measures the GPU as it runs in that state
``finite``          every window computed on finite numbers (column ``numerics`` is ``finite``);
                    ``non_finite`` fails, and so does ``unknown``: a row measured before the
                    check existed (no column) is not trusted
``status``          the job ran (not out of memory, nothing non-finite)
==================  ===========================================================================
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..contracts.vocabulary import NODE_RANK
from . import datasheet

POWER_TOLERANCE = 1.10
COUNTER_PERIODS = 3
FLAGGED_ONLY = ("sw_power_cap", "sw_thermal")  # driver regulation: flagged in a column, not failed
GATES = (
    "status",
    "finite",
    "peak_flops",
    "flops_per_joule",
    "power",
    "window",
    "bandwidth",
    "exclusive",
    "throttle",
)


def limits(row) -> tuple[float, float]:
    """(peak FLOP/s, max FLOPs/J) for a row's GPU and precision; NaN where unknown (CPU)."""
    key, label = str(row.get("gpu_key", "") or ""), str(row.get("gpu_label", "") or "")
    precision = str(row.get("precision", ""))
    if key:
        spec = datasheet.by_key(key)
    elif label and label != "cpu":
        spec = datasheet.most_lenient(label, precision)
    else:
        return math.nan, math.nan
    peak, per_j = spec.peak_flops(precision), spec.max_flops_per_joule(precision)
    # a node row sums N GPUs' FLOPs over the same time: N peaks (FLOPs/J, a ratio, is unchanged)
    return (math.nan if peak is None else peak * gpus(row)), (math.nan if per_j is None else per_j)


def gpus(row) -> int:
    """How many GPUs a row's numbers are the sum of: a distributed job's node row (``rank`` -1)
    its world size, any other row one."""
    rank = row.get("rank")
    if rank is not None and not pd.isna(rank) and int(rank) == NODE_RANK:
        return int(row.get("world_size") or 1)
    return 1


def _le(value, limit) -> bool:
    """value <= limit, True when either is unknown (gate not applicable)."""
    if value is None or limit is None or pd.isna(value) or pd.isna(limit):
        return True
    return bool(value <= limit)


def apply(df: pd.DataFrame, limits=limits) -> pd.DataFrame:
    """Gate every row; ``limits(row) -> (peak FLOP/s, FLOPs/J limit)`` (default: the datasheet
    entry of the row's GPU; the thesis audit passes the limits of the variants a row's power
    allows)."""
    df = df.copy()
    lims = [limits(r) for r in df.to_dict("records")]
    df["peak_flops_per_s"] = [p for p, _ in lims]
    df["max_flops_per_j"] = [j for _, j in lims]
    get = lambda col: df[col] if col in df else pd.Series([np.nan] * len(df), index=df.index)  # noqa: E731
    status = df["status"] if "status" in df else pd.Series(["ok"] * len(df), index=df.index)
    derived = (
        df["derived"].astype(bool)
        if "derived" in df
        else pd.Series([False] * len(df), index=df.index)
    )
    df["gate_status"] = status.eq("ok")
    numerics = (
        df["numerics"].fillna("unknown")
        if "numerics" in df
        else pd.Series(["unknown"] * len(df), index=df.index)
    )
    df["numerics"] = numerics
    df["gate_finite"] = numerics.eq("finite")
    df["gate_peak_flops"] = [
        _le(v, p) for v, p in zip(get("flops_per_s"), df["peak_flops_per_s"], strict=False)
    ]
    df["gate_flops_per_joule"] = [
        _le(v, j) for v, j in zip(get("flops_per_j"), df["max_flops_per_j"], strict=False)
    ]
    df["gate_power"] = [
        True if d else _le(p, (lim * POWER_TOLERANCE) if not pd.isna(lim) else math.nan)
        for d, p, lim in zip(derived, get("power_mean_w"), get("power_limit_w"), strict=False)
    ]
    df["gate_window"] = [
        _le(m, w) and _le(COUNTER_PERIODS * c, w)
        for m, w, c in zip(
            get("min_window_s"), get("window_s_min"), get("counter_period_s"), strict=False
        )
    ]
    df["gate_bandwidth"] = [_le(f, 1.0) for f in get("bandwidth_fraction")]
    df["gate_exclusive"] = get("other_processes").fillna(0).astype(float).eq(0)
    reasons = (
        (
            df["throttle_reasons"].astype(object).where(df["throttle_reasons"].notna(), "")
            if "throttle_reasons" in df
            else pd.Series([""] * len(df), index=df.index)
        )
        .astype(str)
        .str.split(",")
    )
    df["power_capped"] = [("sw_power_cap" in r) for r in reasons]
    df["thermally_limited"] = [("sw_thermal" in r) for r in reasons]
    df["gate_throttle"] = [not (set(r) - {"", *FLAGGED_ONLY}) for r in reasons]
    gate_cols = [f"gate_{g}" for g in GATES]
    df["gates_passed"] = df[gate_cols].all(axis=1)
    df["gate_failures"] = [
        ";".join(g for g in GATES if not r[f"gate_{g}"]) for r in df[gate_cols].to_dict("records")
    ]
    return df
