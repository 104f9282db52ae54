"""Figures of the MLP FLOP validation (registered in :mod:`flopmetrics.figures.registry`)."""

from __future__ import annotations

import matplotlib.ticker
import numpy as np

from .style import heatmap, plt, precision_colors, require, seaborn


def pct_diff_heatmap(tables, style: dict, wildcards: dict):
    """Counted (FlopCounterMode) vs analytic (ours) FLOPs, percent, over (d, m), one panel per n.

    FlopCounterMode counts only matrix products, so the difference is the elementwise
    (sigmoid) share the counter misses; it shrinks as 1/d.
    """
    df, mlp_pass = tables["mlp"], wildcards["mlp_pass"]
    sub = require(df[df["pass"] == mlp_pass], f"pass {mlp_pass!r}")
    # FLOP counts do not depend on target or precision: one value per (n, d, m)
    sub = sub.groupby(["n", "d", "m"], as_index=False)["pct_diff_counted_vs_analytic"].first()
    ns = sorted(sub["n"].unique())
    fig, axes = plt.subplots(
        1, len(ns), figsize=(4.2 * len(ns) + 1, 4), squeeze=False, sharey=True, layout="constrained"
    )
    vmax = float(np.nanmax(np.abs(sub["pct_diff_counted_vs_analytic"]))) or 1.0
    for ax, n in zip(axes[0], ns, strict=False):
        grid = sub[sub["n"] == n].pivot(
            index="d", columns="m", values="pct_diff_counted_vs_analytic"
        )
        image = heatmap(
            ax,
            grid.sort_index(ascending=False),
            style["cmap"],
            style["annotate"] and grid.size <= 64,
            ".2f",
            vmin=-vmax,  # centred on 0
            vmax=vmax,
        )
        ax.set_title(f"n = {n}")
    fig.colorbar(image, ax=list(axes[0]), label="counted vs analytic [%]")
    fig.suptitle(f"MLP {mlp_pass}: FlopCounterMode vs analytic FLOPs (ours)")
    return fig


SOURCES = {
    "flops_analytic_thesis": ("analytic (thesis)", "o", "-"),
    "flops_analytic": ("analytic (ours)", "s", "--"),
    "flops_counted": ("FlopCounterMode", "x", ":"),
}


def flops_vs_d(tables, style: dict, wildcards: dict):
    """FLOPs vs d for analytic (thesis), analytic (ours) and counted, forward and backward; below,
    each analytic count's difference from the counted one, so that curves lying on top of each
    other above read as 0 % there, and those that differ by how much."""
    df = tables["mlp"]
    sub = df[df["pass"].isin(["forward", "backward"])]
    n = style["n"] or int(sub["n"].max())
    m = style["m"] or int(sub["m"].max())
    sub = require(sub[(sub["n"] == n) & (sub["m"] == m)], f"n={n}, m={m} (figures.mlp_flops_vs_d)")
    sub = sub.groupby(["pass", "d"], as_index=False)[list(SOURCES)].first()
    passes = [p for p in ("forward", "backward") if p in set(sub["pass"])]
    fig, axes = plt.subplots(
        2, len(passes), figsize=(5.2 * len(passes), 6.4), squeeze=False, sharex="col"
    )
    for col, name in enumerate(passes):
        rows = sub[sub["pass"] == name].sort_values("d")
        top, bottom = axes[0, col], axes[1, col]
        for column, (label, marker, line) in SOURCES.items():
            top.plot(rows["d"], rows[column], marker=marker, ls=line, label=label, mfc="none")
            if column != "flops_counted":
                diff = 100 * (rows[column] / rows["flops_counted"] - 1)
                bottom.plot(rows["d"], diff, marker=marker, ls=line, label=label, mfc="none")
        top.set(
            title=name, ylabel="FLOPs per iteration", yscale="log" if style["logy"] else "linear"
        )
        bottom.axhline(0, color="black", lw=0.6)
        bottom.set(xlabel="width d", ylabel="vs FlopCounterMode (%)")
        top.legend(fontsize=7)
    fig.suptitle(f"MLP FLOPs vs width (n = {n}, m = {m})")
    fig.tight_layout()
    return fig


def throughput_vs_intensity(tables, style: dict, wildcards: dict):
    """Achieved FLOP/s (analytic FLOPs / synchronized time) vs arithmetic intensity."""
    df = tables["mlp"]
    sub = require(
        df[df["pass"].isin(["forward", "backward"])].dropna(subset=["flops_per_s"]), "throughput"
    )
    sub = sub[sub["flops_per_s"] > 0]
    g = seaborn().relplot(
        data=sub,
        x="arithmetic_intensity",
        y="flops_per_s",
        hue="precision",
        style="target",
        palette=precision_colors(),
        col="pass",
        size="n",
        height=3.8,
        aspect=1.1,
    )
    g.set(xscale="log" if style["logx"] else "linear", yscale="log" if style["logy"] else "linear")
    for ax in g.axes.flat:
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # avoid overlapping labels
    g.set_axis_labels("arithmetic intensity [FLOP/byte]", "achieved FLOP/s")
    g.figure.suptitle("MLP achieved throughput vs arithmetic intensity", y=1.03)
    return g.figure
