"""How a training step scales from one GPU to a node of N: per distributed configuration (weak
scaling: the same work per rank), the node's step time, power and FLOPs/J, the scaling
efficiency (FLOPs/J at N over FLOPs/J at one rank of the same strategy) and what communication
costs, two ways:

- ``communication_share_pct`` (DDP only): the energy that gradient synchronization adds to
  forward+backward (the step against the same step under ``no_sync``), as a share of it;
- ``extra_vs_one_rank_pct`` (every strategy): the node's train step against N times the
  one-rank step, which also holds what sharding changes (FSDP's gathers and its smaller
  optimizer step);
- ``nccl_kernel_share_pct``: the train step's NCCL kernel time (profiled after the windows, the
  busiest rank) over its step time; NCCL kernels overlap compute, so this is how long
  communication ran, not how long it held the step up.
"""

from __future__ import annotations

import math

import pandas as pd

from ..contracts.vocabulary import NODE_RANK

KEYS = ["source", "gpu_label", "model", "precision", "seq_len", "rank_batch_size", "strategy"]
COLUMNS = [
    *KEYS,
    "world_size",
    "step_time_s",
    "node_power_w",
    "train_step_j",
    "train_step_cv",
    "tflops_per_j",
    "scaling_efficiency",
    "communication_j",
    "communication_share_pct",
    "communication_time_share_pct",
    "extra_vs_one_rank_pct",
    "nccl_kernel_ms",
    "nccl_kernel_share_pct",
    "gpu_uuid",
]


def _one(rows: pd.DataFrame, pass_name: str, column: str) -> float:
    hit = rows.loc[rows["pass"] == pass_name, column]
    return float(hit.iloc[0]) if len(hit) else math.nan


def scaling(energy: pd.DataFrame) -> pd.DataFrame:
    """One row per weak-scaling distributed configuration among ``energy``'s node rows (gated)."""
    if "rank" not in energy or "strategy" not in energy:
        return pd.DataFrame(columns=COLUMNS)
    node = energy[
        energy["rank"].eq(NODE_RANK)
        & energy["scaling"].eq("weak")
        & energy["gates_passed"].astype(bool)
    ]
    if node.empty:
        return pd.DataFrame(columns=COLUMNS)
    out = []
    for key, group in node.groupby(KEYS, sort=True, dropna=False):
        one = group[group["world_size"] == 1]
        for n, rows in group.groupby("world_size", sort=True):
            step_e, step_t = (
                _one(rows, "train_step", "energy_j_per_iter"),
                _one(rows, "train_step", "time_per_iter_s"),
            )
            fb_e, fb_t = (
                _one(rows, "forward_backward", "energy_j_per_iter"),
                _one(rows, "forward_backward", "time_per_iter_s"),
            )
            comm_e, comm_t = (
                _one(rows, "communication", "energy_j_per_iter"),
                _one(rows, "communication", "time_per_iter_s"),
            )
            eff = _one(rows, "train_step", "flops_per_j")
            one_step_e = _one(one, "train_step", "energy_j_per_iter")
            out.append(
                {
                    **dict(zip(KEYS, key, strict=False)),
                    "world_size": int(n),
                    "step_time_s": step_t,
                    "node_power_w": step_e / step_t,
                    "train_step_j": step_e,
                    "train_step_cv": _one(rows, "train_step", "energy_cv"),
                    "tflops_per_j": eff / 1e12,
                    "scaling_efficiency": eff / _one(one, "train_step", "flops_per_j"),
                    "communication_j": comm_e,
                    "communication_share_pct": 100 * comm_e / fb_e,
                    "communication_time_share_pct": 100 * comm_t / fb_t,
                    "extra_vs_one_rank_pct": 100 * (step_e / (n * one_step_e) - 1),
                    **_nccl(rows, step_t),
                    "gpu_uuid": _one_text(rows, "gpu_uuid"),
                }
            )
    return pd.DataFrame(out, columns=COLUMNS)


def _nccl(rows: pd.DataFrame, step_t: float) -> dict:
    """The train step's NCCL kernel time (busiest rank, profiled) and its share of the step time."""
    ms = _one(rows, "train_step", "nccl_kernel_ms") if "nccl_kernel_ms" in rows else math.nan
    return {"nccl_kernel_ms": ms, "nccl_kernel_share_pct": 100 * ms / (1e3 * step_t)}


def _one_text(rows: pd.DataFrame, column: str) -> str:
    return str(rows[column].iloc[0]) if column in rows and len(rows) else ""
