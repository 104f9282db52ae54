"""Serving figures (registered in :mod:`flopmetrics.figures.registry`): Joules per token of
prefill and decode, and tokens per Joule by precision."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..contracts.vocabulary import SERVING_PASSES
from .style import PRECISIONS, empty, gpu_label, plt, precision_colors


def serving_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Rows that ran and have a positive, finite J per token, labelled ``gpu, model, precision``."""
    if df.empty or "j_per_token" not in df:
        return df.iloc[0:0]
    j = df["j_per_token"].astype(float)
    ok = df[df["status"].eq("ok") & np.isfinite(j) & (j > 0)]
    return ok.assign(gpu=gpu_label(ok))


def j_per_token(tables, style: dict, wildcards: dict):
    """J per token against batch size, log-log, one panel per pass; a line per GPU, model and
    precision, the repeat SEM as error bars; dashed, the J per token the same power would cost
    if the pass ran at its memory-bandwidth bound (weights and KV cache at the datasheet's
    bandwidth): where a line meets its dash, the pass is bound by memory."""
    rows = serving_rows(tables["inference"])
    if rows.empty:
        return empty("no serving measurements with energy (a CPU without a meter?)")
    passes = [p for p in SERVING_PASSES if p in set(rows["pass"])]
    fig, axes = plt.subplots(1, len(passes), figsize=(5.2 * len(passes), 4.2), squeeze=False)
    for ax, name in zip(axes[0], passes, strict=True):
        _per_token_panel(ax, rows[rows["pass"] == name], name)
    axes[0][0].set_ylabel("J per token")
    axes[0][-1].plot(
        [], [], ls="--", color="grey", lw=1, label="at the bandwidth bound, same power"
    )
    axes[0][-1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def _per_token_panel(ax, rows: pd.DataFrame, name: str) -> None:
    for (gpu, model, precision), g in rows.groupby(["gpu", "model", "precision"]):
        g = g.groupby("batch_size", as_index=False).agg(
            j=("j_per_token", "mean"),
            sem=("j_per_token_sem", "mean"),
            power=("power_mean_w", "mean"),
            bound=("bandwidth_bound_s", "mean"),
            tokens=("tokens", "mean"),
        )
        line = ax.errorbar(
            g["batch_size"],
            g["j"],
            yerr=g["sem"],
            marker="o",
            capsize=2,
            label=f"{gpu}, {model}, {precision}",
        )
        floor = g["power"] * g["bound"] / g["tokens"]
        if np.isfinite(floor).any():
            ax.plot(g["batch_size"], floor, ls="--", color=line[0].get_color(), lw=1)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size (sequences)")
    ax.set_title(f"{name}: J per {'prompt' if name == 'prefill' else 'output'} token")
    ax.grid(True, which="both", alpha=0.3)


def tokens_per_joule(tables, style: dict, wildcards: dict):
    """Tokens per Joule by precision, a bar per GPU and model at each pass's largest batch
    measured, the repeat SEM as error bars."""
    rows = serving_rows(tables["inference"])
    if rows.empty:
        return empty("no serving measurements with energy (a CPU without a meter?)")
    top = rows.groupby(["gpu", "model", "pass"])["batch_size"].transform("max")
    rows = rows[rows["batch_size"] == top].assign(
        tpj=lambda d: 1 / d["j_per_token"],
        tpj_sem=lambda d: d["j_per_token_sem"] / d["j_per_token"] ** 2,
        what=lambda d: (
            d["gpu"] + ", " + d["model"] + ", " + d["pass"] + " b" + d["batch_size"].astype(str)
        ),
    )
    seen = set(rows["precision"])
    precisions = [p for p in PRECISIONS if p in seen] + sorted(seen - set(PRECISIONS))
    groups = sorted(rows["what"].unique())
    fig, ax = plt.subplots(figsize=(1.5 + 1.2 * len(groups) * max(len(precisions), 1), 4.2))
    width, colours = 0.8 / len(precisions), precision_colors()
    for i, precision in enumerate(precisions):
        g = rows[rows["precision"] == precision].groupby("what").mean(numeric_only=True)
        g = g.reindex(groups)
        x = np.arange(len(groups)) + (i - (len(precisions) - 1) / 2) * width
        ax.bar(
            x,
            g["tpj"],
            width,
            yerr=g["tpj_sem"],
            capsize=2,
            label=precision,
            color=colours.get(precision, "grey"),
        )
    ax.set_xticks(np.arange(len(groups)), groups, rotation=20, ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("tokens per J")
    ax.legend(title="precision", fontsize=8)
    fig.tight_layout()
    return fig
