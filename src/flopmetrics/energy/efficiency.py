"""Efficiency columns of a table of passes: the same arithmetic for our rows and imported ones."""

from __future__ import annotations

import pandas as pd


def add_efficiency(df: pd.DataFrame) -> pd.DataFrame:
    """``flops_per_s``, ``flops_per_j`` (with its SEM from the energy's), ``tflops_per_j`` from
    ``flops``, ``time_per_iter_s`` and ``energy_j_per_iter`` (+ ``_sem``), in place."""
    df["flops_per_s"] = df["flops"] / df["time_per_iter_s"]
    df["flops_per_j"] = df["flops"] / df["energy_j_per_iter"]
    df["flops_per_j_sem"] = (
        df["flops_per_j"] * df["energy_j_per_iter_sem"] / df["energy_j_per_iter"]
    )
    df["tflops_per_j"] = df["flops_per_j"] / 1e12
    return df
