"""Errors of derived rows that reflect the scatter they really have (issue 31).

A derived pass (``backward`` = forward_backward - forward, ``optimizer`` = train_step -
forward_backward, ...) takes its SEM from its two parts. Where one card measured the same work
(the same FLOPs of one model, batch size, precision and pass: the optimizer's at every sequence
length) in several configurations, the values should agree within those SEMs; they scatter far
more (chi-squared per degree of freedom 3.5-46 seen on an H100). So each such set's Birge ratio
``sqrt(chi2 / dof)`` about its weighted mean, where above 1, scales every SEM of the set
(``sem_scatter_factor``; ``scatter_p``: the chi-squared test's p-value, scipy). The SEM of the
windows alone is kept in ``energy_j_per_iter_sem_windows``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

SAME_WORK = [
    "gpu_uuid",
    "gpu_label",
    "experiment",
    "model",
    "batch_size",
    "precision",
    "pass",
    "launch",
    "world_size",
    "strategy",
    "flops",
]
SCALED = ["energy_j_per_iter_sem", "dynamic_energy_j_per_iter_sem", "flops_per_j_sem"]


def with_scatter(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with the SEMs of its derived rows scaled to the scatter of the same work."""
    df = df.copy()
    if "energy_j_per_iter_sem" not in df:
        return df
    df["energy_j_per_iter_sem_windows"] = df["energy_j_per_iter_sem"]
    df["sem_scatter_factor"] = 1.0
    df["scatter_p"] = np.nan
    energy = pd.to_numeric(df["energy_j_per_iter"], errors="coerce")
    sem = pd.to_numeric(df["energy_j_per_iter_sem"], errors="coerce")
    derived = df["derived"].fillna(False).astype(bool) if "derived" in df else False
    usable = derived & np.isfinite(energy) & sem.gt(0)
    keys = [k for k in SAME_WORK if k in df]
    for _, g in df[usable].groupby(keys, dropna=False):
        if len(g) < 2:
            continue
        factor, p = _birge(energy[g.index].to_numpy(), sem[g.index].to_numpy())
        df.loc[g.index, "sem_scatter_factor"] = factor
        df.loc[g.index, "scatter_p"] = p
        for col in SCALED:
            if col in df:
                df.loc[g.index, col] = pd.to_numeric(df.loc[g.index, col]) * factor
    return df


def _birge(values: np.ndarray, sems: np.ndarray) -> tuple[float, float]:
    """(max(1, Birge ratio), chi-squared p-value) of values about their weighted mean."""
    weights = sems**-2.0
    mean = float(np.sum(weights * values) / np.sum(weights))
    chi2 = float(np.sum(((values - mean) / sems) ** 2))
    dof = len(values) - 1
    return max(1.0, float(np.sqrt(chi2 / dof))), float(stats.chi2.sf(chi2, dof))
