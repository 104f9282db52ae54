"""One attention convention in every row: the full score matrix, its backward at twice its
forward (:mod:`flopmetrics.flops.counted`), whatever precision and kernel ran it.

Rows written before 2026-12-03 booked a fused kernel's attention backward (fp16, bf16: flash,
cuDNN) at 2.5x its forward, as PyTorch's counter does, and the closed form booked 2.5x in every
precision; fp32's math path was counted at 2x. Such a row has no ``attention_backward_per_forward``
column; reading it here takes the excess out of its headline, counted and closed-form FLOPs
(half a forward attention per backward), recomputes its efficiency, and marks it. The forward
attention comes from the forward pass of the same configuration in the same table.
"""

from __future__ import annotations

import pandas as pd

from ..contracts.vocabulary import ATTENTION_BACKWARD_PER_FORWARD as BACKWARD_PER_FORWARD
from ..energy.efficiency import add_efficiency

COLUMN = "attention_backward_per_forward"
OLD = 2.5  # what the fused kernels' counter and the closed form booked before
WITH_BACKWARD = ("backward", "forward_backward", "forward_backward_local", "train_step")
CONFIGURATION = (
    "experiment",
    "model",
    "precision",
    "batch_size",
    "seq_len",
    "world_size",
    "strategy",
    "scaling",
    "rank",
    "gpu_uuid",
)


def one_convention(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with every row in the headline attention convention (see the module docstring)."""
    if df.empty or "pass" not in df:
        return df
    old = df[COLUMN].isna() if COLUMN in df else pd.Series(True, index=df.index)
    if not old.any():
        return df
    df = df.copy()
    with_backward = old & df["pass"].isin(WITH_BACKWARD)
    counted = _excess(df, with_backward, "flops_counted_attention")
    _subtract(df, ["flops_counted", "flops_counted_attention"], counted)
    if "flops_source" in df:  # the headline is the counter's where its source says so
        source = df["flops_source"].astype(str)
        share = source.str.contains("causal").map({True: 0.5, False: 1.0})
        _subtract(
            df, ["flops"], counted.where(source.str.startswith("FlopCounterMode"), 0.0) * share
        )
    analytic = _excess(df, with_backward, "flops_analytic_attention")
    _subtract(df, ["flops_analytic", "flops_analytic_attention"], analytic)
    df.loc[old, COLUMN] = BACKWARD_PER_FORWARD
    if {"time_per_iter_s", "energy_j_per_iter", "energy_j_per_iter_sem"} <= set(df):
        add_efficiency(df)
    return df


def _excess(df: pd.DataFrame, applies: pd.Series, source: str) -> pd.Series:
    """Per row where ``applies``: the old booking's excess, half its configuration's forward
    attention (``source`` of its forward pass in this table); 0 elsewhere."""
    keys = [c for c in CONFIGURATION if c in df]
    if source not in df or not keys:
        return pd.Series(0.0, index=df.index)
    forward = df[source].where(df["pass"].isin(["forward", "forward_train"])).astype(float)
    # one grouped transform, not a groupby and a merge: it runs on every table read
    attention = forward.groupby([df[k] for k in keys], dropna=False).transform("max")
    return ((OLD - BACKWARD_PER_FORWARD) * attention.astype(float).fillna(0.0)).where(applies, 0.0)


def _subtract(df: pd.DataFrame, columns: list[str], excess: pd.Series) -> None:
    for column in columns:
        if column in df:
            df[column] = df[column].astype(float) - excess.where(df[column].notna(), 0.0)
