"""Nsight Compute figures (registered in :mod:`flopmetrics.figures.registry`)."""

from __future__ import annotations

import numpy as np

from ..flops import analytic
from .style import empty, heatmap, palette, plt, precision_colors, seaborn, thinned

CLASS_ORDER = [
    "gemm",
    "split_k",
    "attention",
    "elementwise",
    "reduction",
    "optimizer",
    "setup",
    "other",
]


def flops_by_class(tables, style: dict, wildcards: dict):
    """Executed FLOPs of the MLP's forward and backward, stacked by kernel class, as a multiple
    of the closed form's FLOPs; one bar per config, one panel per GPU, precision and pass."""
    launches = tables["launches"]
    mlp = (
        launches[
            launches["label"].str.startswith("mlp") & launches["pass"].isin(["forward", "backward"])
        ]
        if len(launches)
        else launches
    )
    if mlp.empty:
        return empty("no Nsight Compute runs of the MLP (ncu.targets and ncu.dirs are empty)")
    per = (
        mlp.groupby(["gpu_label", "precision", "pass", "n", "d", "m", "class"])["flops"]
        .sum()
        .unstack(fill_value=0)
    )
    per = per.reset_index()
    per["analytic"] = [
        analytic.mlp_flops(p, int(n), int(d), int(m), "ours").total
        for p, n, d, m in zip(per["pass"], per["n"], per["d"], per["m"], strict=False)
    ]
    panels = list(per.groupby(["gpu_label", "precision", "pass"]))
    cols = 2
    fig, axes = plt.subplots(
        -(-len(panels) // cols), cols, figsize=(11, 2.6 * -(-len(panels) // cols)), squeeze=False
    )
    colours = dict(zip(CLASS_ORDER, palette("colorblind", len(CLASS_ORDER)), strict=False))
    for ax, ((gpu, prec, p), g) in zip(axes.flat, panels, strict=False):
        g = g.sort_values(["n", "d", "m"])
        x = np.arange(len(g))
        bottom = np.zeros(len(g))
        for cls in [c for c in CLASS_ORDER if c in g]:
            share = (g[cls] / g["analytic"]).to_numpy()
            # one filled step polygon per class, not a bar per config: hundreds of configs
            # per panel drew thousands of patches (10 s for this figure alone)
            top = bottom + share
            ax.fill_between(x, bottom, top, step="mid", color=colours[cls], lw=0, label=cls)
            bottom = top
        ax.axhline(1, color="k", ls=":", lw=1)
        ticks = thinned(len(g))
        ax.set_xticks(ticks, [_config_label(g.iloc[i]) for i in ticks], rotation=60, fontsize=6)
        ax.set_xlim(-0.5, len(x) - 0.5)
        ax.set_title(f"{gpu} {prec} {p} ({len(g)} configs)", fontsize=9)
        ax.set_ylabel("executed / analytic")
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right", fontsize=7)
    fig.supxlabel("config n/d/m (sorted; every k-th labelled)", fontsize=8)
    fig.tight_layout()
    return fig


def _config_label(row) -> str:
    return f"{row['n']:.0f}/{row['d']:.0f}/{row['m']:.0f}"


def gap_heatmap(tables, style: dict, wildcards: dict):
    """Percent gap between executed and analytic FLOPs over (d, m), one panel per n, for one
    GPU, precision and pass (``style``); configs not measured are blank."""
    gap = tables["gap"]
    sel = (
        gap[
            (gap["precision"] == style["precision"])
            & (gap["pass"] == style["pass"])
            & (gap["split"] == "config")
        ]
        if len(gap)
        else gap
    )
    if sel.empty:
        return empty(f"no Nsight Compute runs of the MLP in {style['precision']} {style['pass']}")
    sel = sel.assign(gap_pct=100 * (sel["flops"] - sel["flops_analytic"]) / sel["flops_analytic"])
    ns = sorted(sel["n"].unique())
    fig, axes = plt.subplots(1, len(ns), figsize=(3.2 * len(ns) + 1, 3.4), squeeze=False)
    for ax, n in zip(axes[0], ns, strict=False):
        grid = sel[sel["n"] == n].pivot_table(index="d", columns="m", values="gap_pct")
        heatmap(ax, grid, style["cmap"], True, ".0f", fontsize=6)
        ax.set_title(f"n = {int(n)}", fontsize=9)
    fig.suptitle(
        f"executed vs analytic FLOPs [%], {style['precision']} {style['pass']}", fontsize=10
    )
    fig.tight_layout()
    return fig


SPLIT_LABELS = {
    "config": "shape seen at other n",
    "shape": "shape unseen: tile terms",
    "kernel choice": "shape unseen: kernel choice",
}


def parity(tables, style: dict, wildcards: dict):
    """Executed FLOPs against the out-of-fold prediction, per split: the GPU-adjusted formulas
    with the shape seen at other depths or not, and the prediction from the kernel choice."""
    gap = tables["gap"]
    if gap.empty:
        return empty(
            "no Nsight Compute runs of the MLP to fit and judge the GPU-adjusted formulas on"
        )
    # a config dealt round the folds whose shape no other depth showed had the tile terms alone
    unseen = (gap["split"] == "config") & (gap["basis"] == "tiles")
    gap = gap.assign(split=gap["split"].mask(unseen, "shape").map(SPLIT_LABELS))
    g = seaborn().relplot(
        data=gap,
        x="flops",
        y="predicted",
        hue="precision",
        style="split",
        col="pass",
        height=3.6,
        palette=precision_colors(),
        aspect=1,
        style_order=list(SPLIT_LABELS.values()),
        markers=["o", "X", "^"],
    )
    lo, hi = gap[["flops", "predicted"]].min().min(), gap[["flops", "predicted"]].max().max()
    for ax, (p, sub) in zip(g.axes.flat, gap.groupby("pass"), strict=False):
        err = sub.groupby("split")["error_pct"].apply(
            lambda e: f"median {e.abs().median():.1f} %, max {e.abs().max():.0f} %"
        )
        ax.plot([lo, hi], [lo, hi], "k:", lw=1)
        ax.set(xscale="log", yscale="log")
        ax.set_title(f"{p}\n" + "\n".join(f"{k}: {v}" for k, v in err.items()), fontsize=8)
    g.set_axis_labels("executed FLOPs (ncu)", "predicted FLOPs")
    return g.figure


def llm_classes(tables, style: dict, wildcards: dict):
    """A causal LM's train step per operation class: the FLOPs its kernels executed (Nsight
    Compute, each class replayed alone) beside the headline count (FlopCounterMode: full
    attention) and, for attention, the causal count; one panel per GPU, precision and shape."""
    t = tables["classes"]
    if t.empty:
        return empty("no class captures of a causal LM (ncu.class_dirs is empty)")
    panels = list(t.groupby(["gpu_label", "precision", "shape"]))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.6), squeeze=False)
    kinds = [
        ("executed_flops", "executed (ncu)"),
        ("counted_flops", "counted (headline)"),
        ("counted_causal_flops", "counted, causal attention"),
    ]
    colours = palette("colorblind", len(kinds))
    for ax, ((gpu, prec, shape), g) in zip(axes.flat, panels, strict=False):
        x = np.arange(len(g))
        for i, (col, label) in enumerate(kinds):
            values = g[col].where(g[col] > 0)  # nothing counted: no bar, not a bar at 0
            ax.bar(x + (i - 1) * 0.27, values, 0.27, color=colours[i], label=label)
        ax.set_xticks(x, g["class"])
        ax.set_yscale("log")
        ax.set_ylabel("FLOPs per step")
        ax.set_title(f"{gpu} {prec}: {shape}", fontsize=9)
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    return fig
