"""The node's rows of a distributed job, from its ranks' rows and windows: energy summed over
the ranks window by window (so the node's repeat error is that of the sums, not a guess from
the ranks'), time that of the slowest rank, FLOPs summed, and every column that is the same on
all ranks kept. A node row is gated against the node's limits: N GPUs' peak and power limit."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from ..contracts.vocabulary import NODE_RANK, derivable
from ..energy import gates
from ..energy.efficiency import add_efficiency
from ..jobs.provenance import config_hash
from ..jobs.stats import derive, estimate

# columns that differ from rank to rank and are reduced here (the rest must agree, or are dropped)
SUMMED = (
    "flops",
    "flops_counted",
    "flops_counted_attention",
    "idle_power_w",
    "power_limit_w",
    "other_processes",
)
SLOWEST = ("kernel_ms", "nccl_kernel_ms")  # profiled kernel time: the busiest rank's


def window_table(windows: dict) -> pd.DataFrame:
    """One row per measured window of one rank: what the node's sums are made of."""
    rows = [
        {
            "pass": p,
            "repeat": i,
            "iterations": w.iterations,
            "elapsed_s": w.elapsed_s,
            **{
                k: w.readings.get(k, math.nan)
                for k in ("energy_j", "energy_trace_j", "energy_zeus_j")
            },
        }
        for p, ws in windows.items()
        for i, w in enumerate(ws)
    ]
    return pd.DataFrame(
        rows,
        columns=[
            "pass",
            "repeat",
            "iterations",
            "elapsed_s",
            "energy_j",
            "energy_trace_j",
            "energy_zeus_j",
        ],
    )


def node_windows(windows: pd.DataFrame, idle_w: float) -> pd.DataFrame:
    """The node's windows: each repeat's energies summed over the ranks, its time the slowest
    rank's; ``windows`` holds every rank's (column ``rank``). Iteration counts were agreed across
    ranks; a mismatch means the windows were not the same, and is an error."""
    g = windows.groupby(["pass", "repeat"], sort=False)
    if (g["iterations"].nunique() > 1).any():
        raise ValueError(
            "ranks ran different iteration counts in one window: their windows were not the same"
        )
    node = g.agg(
        iterations=("iterations", "first"),
        elapsed_s=("elapsed_s", "max"),
        ranks=("rank", "nunique"),
        energy_j=("energy_j", lambda e: e.sum(min_count=len(e))),
        energy_trace_j=("energy_trace_j", lambda e: e.sum(min_count=len(e))),
        # Zeus watches every GPU from rank 0 alone: its one reading is the node's
        energy_zeus_j=("energy_zeus_j", lambda e: e.sum(min_count=1)),
    ).reset_index()
    node["dynamic_j"] = node["energy_j"] - idle_w * node["elapsed_s"]
    return node


def _per_iteration(node: pd.DataFrame, column: str | None) -> dict:
    out = {}
    for p, ws in node.groupby("pass", sort=False):
        values = ws["elapsed_s"] if column is None else ws[column]
        out[p] = estimate(list(values / ws["iterations"]))
    return out


def node_rows(ranks: pd.DataFrame, windows: pd.DataFrame) -> pd.DataFrame:
    """One row per pass for the node (``rank`` = -1)."""
    world = int(ranks["world_size"].iloc[0])
    if sorted(ranks["rank"].unique()) != list(range(world)):
        raise ValueError(
            f"a node row needs all {world} ranks' rows; got ranks {sorted(ranks['rank'].unique())}"
        )
    idle_w = float(ranks.drop_duplicates("rank")["idle_power_w"].sum(min_count=world))
    node = node_windows(windows, idle_w)
    direct = tuple(node["pass"].drop_duplicates())
    derived = derivable(direct)
    est = {
        k: derive(_per_iteration(node, c), derived)
        for k, c in (
            ("time", None),
            ("energy", "energy_j"),
            ("trace", "energy_trace_j"),
            ("zeus", "energy_zeus_j"),
            ("dynamic", "dynamic_j"),
        )
    }
    first = json.loads(ranks.sort_values("rank")["config_json"].iloc[0])
    node_hash = config_hash({k: v for k, v in first.items() if k not in ("rank", "local_rank")})
    rows = []
    for p, these in ranks.groupby("pass", sort=False):
        row = {c: these[c].iloc[0] for c in these.columns if these[c].astype(str).nunique() == 1}
        row.update(
            {c: these[c].sum(min_count=len(these)) for c in SUMMED if c in these}
        )  # NaN stays NaN
        row.update({c: these[c].max() for c in SLOWEST if c in these})
        t, e = est["time"][p], est["energy"][p]
        row.update(
            rank=NODE_RANK,
            local_rank=NODE_RANK,
            device="node",
            ranks=len(these),
            gpu_uuid=",".join(these.sort_values("rank")["gpu_uuid"].astype(str)),
            rank_batch_size=int(these["batch_size"].iloc[0]),
            batch_size=int(these["batch_size"].iloc[0])
            * (world if these["scaling"].iloc[0] == "strong" else 1),
            global_batch_size=int(these["batch_size"].iloc[0]) * world,
            status="ok"
            if these["status"].eq("ok").all()
            else ";".join(sorted(set(these["status"]) - {"ok"})),
            numerics="finite"
            if these["numerics"].eq("finite").all()
            else ("non_finite" if these["numerics"].eq("non_finite").any() else "unknown"),
            time_per_iter_s=t.mean,
            time_per_iter_sem_s=t.sem,
            energy_j_per_iter=e.mean,
            energy_j_per_iter_sem=e.sem,
            energy_cv=e.cv,
            energy_trace_j_per_iter=est["trace"][p].mean,
            energy_zeus_j_per_iter=est["zeus"][p].mean,
            dynamic_energy_j_per_iter=est["dynamic"][p].mean,
            dynamic_energy_j_per_iter_sem=est["dynamic"][p].sem,
            window_s_min=these["window_s_min"].min(),
            power_max_w=these["power_max_w"].sum(),
            power_mean_w=e.mean / t.mean if p in direct else math.nan,
            power_counter_mean_w=e.mean / t.mean if p in direct else math.nan,
            temperature_max_c=these["temperature_max_c"].max(),
            throttle_reasons=",".join(
                sorted({r for v in these["throttle_reasons"] for r in str(v).split(",") if r})
            ),
            rank_energy_j_per_iter_sum=these["energy_j_per_iter"].sum(min_count=len(these)),
            timestamp_utc=these["timestamp_utc"].min(),
            config_hash=node_hash,
        )
        rows.append(row)
    df = add_efficiency(pd.DataFrame(rows))
    df["counter_vs_trace_pct"] = (
        100
        * (df["energy_j_per_iter"] - df["energy_trace_j_per_iter"])
        / df["energy_trace_j_per_iter"]
    )
    df["counter_vs_zeus_pct"] = (
        100
        * (df["energy_j_per_iter"] - df["energy_zeus_j_per_iter"])
        / df["energy_zeus_j_per_iter"]
    )
    return gates.apply(
        df.drop(
            columns=[c for c in df if c.startswith("gate")]
            + ["peak_flops_per_s", "max_flops_per_j"],
            errors="ignore",
        )
    )


def median_counter_vs_trace(ranks: pd.DataFrame) -> float:
    """Median |counter - trace| / trace (%) over the ranks' directly measured rows."""
    direct = ranks[~ranks["derived"].astype(bool)]
    return float(np.nanmedian(direct["counter_vs_trace_pct"].abs())) if len(direct) else math.nan
