"""What every figure shares: a headless matplotlib, the pass order, the empty-figure notice and
the selection of rows that carry energy."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: jobs and CI have no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from ..contracts.vocabulary import PASSES, PRECISIONS  # noqa: E402

__all__ = [
    "plt",
    "FigureError",
    "PASS_ORDER",
    "PRECISIONS",
    "precision_colors",
    "require",
    "empty",
    "with_energy",
    "gpu_label",
]

PASS_ORDER = list(PASSES)


def precision_colors() -> dict[str, tuple]:
    """One colour per precision, the same in every figure (colourblind-safe)."""
    return dict(zip(PRECISIONS, sns.color_palette("colorblind", len(PRECISIONS)), strict=False))


NEEDED = {"tflops_per_j", "status", "experiment", "pass", "precision", "gpu_label"}


class FigureError(ValueError):
    pass


def require(df: pd.DataFrame, what: str) -> pd.DataFrame:
    if df.empty:
        raise FigureError(f"no rows for {what}")
    return df


def empty(message: str):
    """A figure that says why there is nothing to draw (a run without such data still has a
    report)."""
    fig, ax = plt.subplots(figsize=(6, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    return fig


def with_energy(df: pd.DataFrame, nodes: bool = False) -> pd.DataFrame:
    """Rows that ran and have a positive, finite TFLOPs/J: those of one device (``nodes``: the
    node rows of distributed jobs instead, whose energy is N GPUs')."""
    if not NEEDED <= set(df.columns):
        return df.iloc[0:0].reindex(columns=sorted(NEEDED | set(df.columns)))
    ok = np.isfinite(df["tflops_per_j"].astype(float)) & (df["tflops_per_j"].astype(float) > 0)
    node = (
        df["strategy"].fillna("none").ne("none")
        if "strategy" in df
        else pd.Series(False, index=df.index)
    )
    return df[ok & df["status"].eq("ok") & (node if nodes else ~node)]


def gpu_label(df: pd.DataFrame) -> pd.Series:
    """The GPU label, marked where the row is committed reference data."""
    src = df.get("source", pd.Series(["measured"] * len(df), index=df.index)).astype(str)
    return df["gpu_label"].astype(str) + np.where(src.eq("reference"), " (reference)", "")
