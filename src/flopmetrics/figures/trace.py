"""The power trace of one job, its windows marked."""

from __future__ import annotations

import pandas as pd
import seaborn as sns

from .style import empty, plt


def power_trace(tables, style: dict, wildcards: dict):
    """Instantaneous power (and the 1 s average NVML reports) with each pass window shaded."""
    trace = tables.get("trace", pd.DataFrame())
    title = str(tables.paths.get("trace", ""))
    if trace.empty:
        return empty("no power trace (CPU job or no sampler)")
    fig, ax = plt.subplots(figsize=(11, 3.8))
    t = trace["t_rel_s"]
    ax.plot(t, trace["power_instant_w"], lw=0.7, label="instant power")
    ax.plot(
        t, trace["power_average_w"], lw=0.7, ls="--", label="1 s average (nvidia-smi power.draw)"
    )
    names = [w for w in trace["window"].unique() if w]
    colours = dict(zip(names, sns.color_palette("pastel", len(names)), strict=False))
    for (name, rep), g in trace[trace["window"] != ""].groupby(["window", "repeat"]):
        ax.axvspan(
            g["t_rel_s"].min(),
            g["t_rel_s"].max(),
            color=colours[name],
            alpha=0.5,
            lw=0,
            label=name if rep == 0 else None,
        )
    ax.set_xlabel("time [s]")
    ax.set_ylabel("board power [W]")
    ax.legend(fontsize=7, ncol=4, loc="lower right")
    ax.set_title(title or "Power trace")
    fig.tight_layout()
    return fig
