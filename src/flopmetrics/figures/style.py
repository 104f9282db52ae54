"""What every figure shares: a headless matplotlib, the pass order, colours and colour maps, a
heatmap drawn without seaborn, the empty-figure notice and the selection of rows that carry
energy."""

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
    "colormap",
    "heatmap",
    "thinned",
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


def colormap(name: str):
    """A colour map by name: matplotlib's, or seaborn's (registered by importing it, only
    where one of its names is asked for)."""
    if name not in matplotlib.colormaps and name.removesuffix("_r") not in matplotlib.colormaps:
        seaborn()
    return matplotlib.colormaps[name]


MAX_TICKS = 16  # labels on one axis of a figure with many positions


def thinned(count: int, most: int = MAX_TICKS) -> list[int]:
    """Which of ``count`` positions along an axis get a label: every k-th, at most ``most``
    (as seaborn thins a long axis)."""
    return list(range(0, count, max(1, -(-count // most))))


def heatmap(ax, grid: pd.DataFrame, cmap: str, annotate: bool, fmt: str, **options):
    """``grid`` (rows top to bottom, columns left to right, NaN blank) as coloured cells, each
    labelled with its value where ``annotate``; ``options``: ``vmin``, ``vmax``, ``fontsize``.
    Returns the image, for a colour bar."""
    values = grid.to_numpy(dtype=float)
    image = ax.imshow(
        values,
        cmap=colormap(cmap),
        vmin=options.get("vmin"),
        vmax=options.get("vmax"),
        aspect="auto",
        interpolation="nearest",
    )
    for axis, labels in ((ax.xaxis, grid.columns), (ax.yaxis, grid.index)):
        ticks = thinned(len(labels))
        axis.set_ticks(ticks, [_tick(labels[i]) for i in ticks])
    if grid.shape[1] > MAX_TICKS // 2:
        ax.tick_params(axis="x", labelrotation=90)
    ax.set_xlabel(grid.columns.name or "")
    ax.set_ylabel(grid.index.name or "")
    if annotate:
        low, high = image.get_clim()
        for (i, j), v in np.ndenumerate(values):
            if np.isfinite(v):  # dark text on light cells, light on dark ones
                light = np.mean(image.cmap(image.norm(v))[:3]) > 0.5 if high > low else True
                ax.text(
                    j,
                    i,
                    format(v, fmt),
                    ha="center",
                    va="center",
                    fontsize=options.get("fontsize", 8),
                    color="black" if light else "white",
                )
    return image


def _tick(value) -> str:
    return f"{value:g}" if isinstance(value, int | float | np.number) else str(value)


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
