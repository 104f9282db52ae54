"""Energy figures (registered in :mod:`flopmetrics.figures.registry`)."""

from __future__ import annotations

import matplotlib.ticker
import numpy as np
import pandas as pd

from .style import (
    PASS_ORDER,
    PRECISIONS,
    empty,
    gpu_label,
    plt,
    precision_colors,
    seaborn,
    with_energy,
)


def efficiency_bars(tables, style: dict, wildcards: dict):
    """TFLOPs/J per GPU x precision x pass (mean over sequence lengths), the range over sequence
    lengths as error bars (the repeat SEM is far smaller), the peak/TDP limit as a dash."""
    sub = with_energy(tables["energy"])
    sub = sub[sub["experiment"] == style["experiment"]]
    seq = style["seq_len"]
    if seq is not None and "seq_len" in sub:
        sub = sub[sub["seq_len"] == seq]
    if sub.empty:
        return empty("no energy measurements with FLOPs for this workload (CPU without a meter?)")
    sub = sub.assign(gpu=gpu_label(sub))
    gpus = sorted(sub["gpu"].unique())
    passes = [p for p in PASS_ORDER if p in set(sub["pass"]) and p != "optimizer"]
    seen = set(sub["precision"])
    precisions = [p for p in PRECISIONS if p in seen] + sorted(seen - set(PRECISIONS))
    fig, axes = plt.subplots(
        1, len(gpus), figsize=(1.2 + 1.3 * len(passes) * len(gpus) + 2, 4.2), squeeze=False
    )
    width = 0.8 / len(precisions)
    palette = precision_colors()
    for ax, gpu in zip(axes[0], gpus, strict=False):
        g = (
            sub[sub["gpu"] == gpu]
            .groupby(["pass", "precision"], as_index=False)
            .agg(
                tflops_per_j=("tflops_per_j", "mean"),
                lo=("tflops_per_j", "min"),
                hi=("tflops_per_j", "max"),
                limit=("max_flops_per_j", "first"),
                failed=("gates_passed", lambda s: (~s.astype(bool)).any()),
                hot=("thermally_limited", "any"),
            )
        )
        for i, prec in enumerate(precisions):
            gp = g[g["precision"] == prec].set_index("pass").reindex(passes)
            x = np.arange(len(passes)) + (i - (len(precisions) - 1) / 2) * width
            spread = np.vstack([gp["tflops_per_j"] - gp["lo"], gp["hi"] - gp["tflops_per_j"]])
            ax.bar(
                x,
                gp["tflops_per_j"],
                width,
                yerr=spread,
                color=palette.get(prec, "grey"),
                label=prec,
                capsize=2,
                hatch=["//" if f is True else "" for f in gp["failed"]],
            )
            ax.hlines(
                gp["limit"] / 1e12,
                x - width / 2,
                x + width / 2,
                colors="k",
                linestyles="--",
                linewidth=1,
            )
            hot = gp["hot"].eq(True).to_numpy()
            ax.scatter(
                x[hot],
                gp["hi"].to_numpy()[hot] * 1.04 + 0.01,
                marker="v",
                s=14,
                color="k",
                zorder=3,
            )
        ax.set_xticks(np.arange(len(passes)), passes, rotation=30, ha="right")
        ax.set_title(gpu)
        ax.set_ylabel("TFLOPs per joule")
    axes[0][-1].legend(title="precision", fontsize=8, loc="upper right")
    fig.suptitle(
        "Efficiency per pass: mean over sequence lengths, bars their range; dashes: peak/TDP",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def pareto_front(points: np.ndarray) -> np.ndarray:
    """Indices of points not dominated (higher is better in both coordinates)."""
    idx = []
    for i, p in enumerate(points):
        if not np.any(np.all(points >= p, axis=1) & np.any(points > p, axis=1)):
            idx.append(i)
    return np.array(idx, dtype=int)


MARKERS = "osD^vP*Xph<>"


def _scatter_by(ax, df: pd.DataFrame, x: str, y: str, hue: str, style: str) -> None:
    """Points of ``x`` against ``y``, coloured by ``hue`` (a precision) and marked by ``style``;
    the legend lists the colours, then the markers."""
    colours = precision_colors()
    styles = sorted(df[style].unique())
    marker = {s: MARKERS[i % len(MARKERS)] for i, s in enumerate(styles)}
    for (h, s), g in df.groupby([hue, style]):
        ax.scatter(g[x], g[y], s=60, color=colours.get(h, "grey"), marker=marker[s])
    for h in [p for p in colours if p in set(df[hue])]:
        ax.scatter([], [], s=60, color=colours[h], marker="o", label=h)
    for s in styles:
        ax.scatter([], [], s=60, color="grey", marker=marker[s], label=s)


def forward_vs_backward(tables, style: dict, wildcards: dict):
    """Forward vs backward TFLOPs/J of every configuration measured both ways, Pareto front
    marked."""
    sub = with_energy(tables["energy"])
    sub = sub[sub["pass"].isin(["forward", "backward"])]
    keys = [
        c
        for c in (
            "source",
            "gpu_label",
            "experiment",
            "model",
            "precision",
            "batch_size",
            "seq_len",
            "n",
            "d",
            "m",
        )
        if c in sub
    ]
    if sub.empty:
        return empty("no forward/backward energy measurements")
    # workloads leave each other's keys empty (an LLM row has no MLP width): fill, or the
    # pivot drops every row that has a NaN key
    sub = sub.assign(
        **{
            c: sub[c].fillna(-1) if pd.api.types.is_numeric_dtype(sub[c]) else sub[c].fillna("")
            for c in keys
        }
    )
    wide = sub.pivot_table(index=keys, columns="pass", values="tflops_per_j").dropna().reset_index()
    if wide.empty:
        return empty("no configuration with both forward and backward energy")
    # the marker says which GPU and which workload (matmul, MLP or causal LM) a point is
    workload = wide["experiment"].astype(str) if "experiment" in wide else "energy"
    wide["gpu, workload"] = gpu_label(wide) + ", " + workload
    fig, ax = plt.subplots(figsize=(6.5, 5))
    _scatter_by(ax, wide, "forward", "backward", "precision", "gpu, workload")
    pts = wide[["forward", "backward"]].to_numpy()
    front = wide.iloc[pareto_front(pts)].sort_values("forward")
    ax.plot(
        front["forward"],
        front["backward"],
        "k:",
        marker="o",
        mfc="none",
        ms=12,
        label="Pareto front",
    )
    ax.set_xlabel("forward TFLOPs/J")
    ax.set_ylabel("backward TFLOPs/J")
    ax.legend(fontsize=7)
    ax.set_title("Forward vs backward efficiency")
    fig.tight_layout()
    return fig


def efficiency_vs_seq_len(tables, style: dict, wildcards: dict):
    """TFLOPs/J of the LLM passes against sequence length, per precision and GPU."""
    sub = with_energy(tables["energy"])
    sub = sub[(sub["experiment"] == "llm") & sub["pass"].isin(style["passes"])]
    if sub.empty or "seq_len" not in sub:
        return empty("no LLM energy measurements")
    sub = sub.assign(gpu=gpu_label(sub))
    g = seaborn().relplot(
        data=sub,
        x="seq_len",
        y="tflops_per_j",
        hue="precision",
        style="gpu",
        col="pass",
        palette=precision_colors(),
        col_order=[p for p in PASS_ORDER if p in set(sub["pass"])],
        kind="line",
        markers=True,
        height=3.2,
        aspect=0.9,
        err_style="bars",
    )
    g.set(xscale="log", xlabel="sequence length", ylabel="TFLOPs/J")
    lengths = sorted(int(s) for s in sub["seq_len"].unique())
    for ax in g.axes.flat:
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # only the measured lengths
        ax.set_xticks(lengths, [str(s) for s in lengths])
    g.figure.suptitle("Efficiency vs sequence length", y=1.03)
    return g.figure
