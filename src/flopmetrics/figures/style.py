"""What every figure shares: a headless matplotlib, the pass order, the empty-figure notice and
the selection of rows that carry energy."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: jobs and CI have no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..contracts.vocabulary import PASSES, PRECISIONS  # noqa: E402

__all__ = [
    "plt",
    "FigureError",
    "PASS_ORDER",
    "PRECISIONS",
    "precision_colors",
    "palette",
    "seaborn",
    "require",
    "empty",
    "with_energy",
    "gpu_label",
]

PASS_ORDER = list(PASSES)


# seaborn's "colorblind" and "pastel" palettes, as its 0.13 defines them (figures that need no
# other seaborn function then start without importing it)
PALETTES = {
    "colorblind": (
        "#0173b2", "#de8f05", "#029e73", "#d55e00", "#cc78bc",
        "#ca9161", "#fbafe4", "#949494", "#ece133", "#56b4e9",
    ),
    "pastel": (
        "#a1c9f4", "#ffb482", "#8de5a1", "#ff9f9b", "#d0bbff",
        "#debb9b", "#fab0e4", "#cfcfcf", "#fffea3", "#b9f2f0",
    ),
}  # fmt: skip


def palette(name: str, n: int) -> list[str]:
    """``n`` colours of palette ``name``, cycled where it has fewer (as seaborn does)."""
    colours = PALETTES[name]
    return [colours[i % len(colours)] for i in range(n)]


def precision_colors() -> dict[str, str]:
    """One colour per precision, the same in every figure (colourblind-safe)."""
    return dict(zip(PRECISIONS, palette("colorblind", len(PRECISIONS)), strict=True))


def seaborn():
    """The seaborn module, for the figures that draw with it."""
    # late: seaborn takes about 2 s to import, more than the rest of a figure job's imports
    import seaborn as sns

    return sns


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
