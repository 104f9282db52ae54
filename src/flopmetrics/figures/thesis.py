"""The thesis's published FLOPs/J beside ours, each judged against its GPU's variants."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .style import empty, plt, with_energy

VERDICT_COLORS = {
    "thesis: possible": "#9e9e9e",
    "thesis: impossible on its power-consistent variants": "#f0a030",
    "thesis: impossible on every variant": "#d62728",
    "ours": "#1f77b4",
}


def _verdict(df: pd.DataFrame) -> pd.Series:
    every, consistent = (
        df["impossible_every_variant"].astype(bool),
        df["impossible_consistent_variant"].astype(bool),
    )
    return pd.Series(
        np.where(
            every,
            "thesis: impossible on every variant",
            np.where(
                consistent,
                "thesis: impossible on its power-consistent variants",
                "thesis: possible",
            ),
        ),
        index=df.index,
    )


def thesis_vs_ours(tables, style: dict, wildcards: dict):
    """The thesis's forward/backward TFLOPs/J of one GPU label beside ours, each thesis bar coloured
    by the audit's verdict, with our card's peak/TDP limit."""
    thesis, ours = tables["thesis"], tables["energy"]
    gpu = style["gpu"]
    t = thesis[(thesis["gpu_label"] == gpu) & thesis["seq_len"].notna()]
    t = t.assign(data=_verdict(t))
    o = with_energy(ours)
    o = o[
        (o["gpu_label"] == gpu)
        & (o["experiment"] == "llm")
        & o["pass"].isin(["forward", "backward"])
    ].assign(data="ours")
    both = pd.concat([t, o], ignore_index=True)
    if both.empty:
        return empty(f"no {gpu} data from the thesis or from us")
    precisions = sorted(both["precision"].unique())
    seqs = sorted(both["seq_len"].unique())
    fig, axes = plt.subplots(
        len(precisions), 2, figsize=(9, 2.4 * len(precisions) + 0.8), squeeze=False
    )
    for (prec, p), ax in zip(
        [(a, b) for a in precisions for b in ("forward", "backward")], axes.flat, strict=False
    ):
        x = np.arange(len(seqs))
        for k, rows in enumerate((t, o)):
            r = (
                rows[(rows["precision"] == prec) & (rows["pass"] == p)]
                .groupby("seq_len")
                .agg(tflops_per_j=("tflops_per_j", "mean"), data=("data", "first"))
                .reindex(seqs)
            )
            ax.bar(
                x + (k - 0.5) * 0.4,
                r["tflops_per_j"],
                0.4,
                color=[VERDICT_COLORS.get(d, "white") for d in r["data"].fillna("")],
            )
        lim = o[(o["precision"] == prec)]["max_flops_per_j"].dropna()
        if len(lim):
            ax.axhline(lim.min() / 1e12, color="r", ls="--", lw=1)
        ax.set_xticks(x, [str(int(s)) for s in seqs])
        ax.set_title(f"{prec} {p}", fontsize=9)
        ax.set_xlabel("sequence length")
        ax.set_ylabel("TFLOPs/J")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in VERDICT_COLORS.values()]
    fig.legend(handles, list(VERDICT_COLORS), loc="lower center", ncol=2, fontsize=7, frameon=False)
    fig.suptitle(
        f"{gpu}: thesis (left bars, coloured by the audit) vs ours (right; red: our card's "
        "peak/TDP)",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.08, 1, 0.97))
    return fig
