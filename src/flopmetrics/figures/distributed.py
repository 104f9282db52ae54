"""Distributed figures (registered in :mod:`flopmetrics.figures.registry`)."""

from __future__ import annotations

import numpy as np

from .style import empty, plt

STRATEGY_STYLE = {"ddp": ("tab:blue", "o"), "fsdp": ("tab:orange", "s")}


def scaling(tables, style: dict, wildcards: dict):
    """Weak scaling of the train step from one GPU to N: the node's TFLOPs/J (each point
    labelled with its scaling efficiency), and what communication costs: DDP's synchronization
    as a share of forward+backward energy, and every strategy's step against N one-rank steps."""
    table = tables["scaling"]
    if table.empty:
        return empty(
            "no distributed measurements (config distributed.targets, or a reference folder with "
            "them)"
        )
    configs = table.groupby(
        ["gpu_label", "model", "precision", "seq_len", "rank_batch_size"], sort=True
    )
    fig, axes = plt.subplots(len(configs), 2, figsize=(11, 4 * len(configs)), squeeze=False)
    for (key, rows), (left, right) in zip(configs, axes, strict=False):
        gpu, model, precision, seq, batch = key
        for i, (strategy, s) in enumerate(rows.groupby("strategy", sort=True)):
            color, marker = STRATEGY_STYLE.get(strategy, ("tab:gray", "^"))
            s = s.sort_values("world_size")
            left.errorbar(
                s["world_size"],
                s["tflops_per_j"],
                # the windows' scatter of the node step's energy, as a share of its value
                yerr=s["tflops_per_j"] * s["train_step_cv"].fillna(0),
                marker=marker,
                color=color,
                capsize=3,
                label=strategy,
            )
            for _, r in s.iterrows():
                left.annotate(
                    f"{r['scaling_efficiency']:.1%}",
                    (r["world_size"], r["tflops_per_j"]),
                    textcoords="offset points",
                    xytext=(4, 6 - 16 * (i % 2)),
                    fontsize=8,
                    color=color,
                )
            right.plot(
                s["world_size"],
                s["extra_vs_one_rank_pct"],
                marker=marker,
                color=color,
                label=f"{strategy}: node step vs N one-rank steps",
            )
            if s["communication_share_pct"].notna().any():
                right.plot(
                    s["world_size"],
                    s["communication_share_pct"],
                    marker=marker,
                    color=color,
                    ls="--",
                    label=f"{strategy}: synchronization / forward+backward",
                )
        ticks = sorted(rows["world_size"].unique())
        left.set(
            xticks=ticks,
            xlabel="GPUs (ranks on one node)",
            ylabel="train step TFLOPs/J (node), +-1 SD of windows",
            title=f"{gpu}, {model} {precision}, seq {int(seq)}, {int(batch)} per rank",
        )
        right.set(
            xticks=ticks,
            xlabel="GPUs (ranks on one node)",
            ylabel="extra energy (%)",
            title="what communication costs",
        )
        # from zero, so that a few per cent do not look like a collapse; room for the labels
        # (no energy meter, as on a CPU: nothing to scale)
        top = rows["tflops_per_j"].max()
        if np.isfinite(top) and top > 0:
            left.set_ylim(0, 1.2 * top)
        right.axhline(0, color="black", lw=0.6)
        left.legend(title="strategy", fontsize=8)
        right.legend(fontsize=7)
    fig.tight_layout()
    return fig
