"""The power trace of one job, its windows marked."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from .style import empty, palette, plt


def describe(path: str) -> str:
    """A trace file's configuration in words (``.../traces/llm/h100/llama-3.2-1b/bf16-mixed/
    b8_s1024.parquet`` -> ``h100, llama-3.2-1b, bf16-mixed, batch 8, 1024 tokens``), not its
    path."""
    parts = Path(path).with_suffix("").parts if path else ()
    if "traces" not in parts:
        return "Power trace"
    words = list(parts[parts.index("traces") + 2 :])  # after the experiment: target, ...
    sizes = re.fullmatch(r"b(\d+)_s(\d+)", words[-1]) if words else None
    if sizes:
        words[-1] = f"batch {sizes[1]}, {sizes[2]} tokens"
    return "Power trace: " + ", ".join(words)


def power_trace(tables, style: dict, wildcards: dict):
    """Instantaneous power (and the 1 s average NVML reports) with each pass window shaded."""
    trace = tables.get("trace", pd.DataFrame())
    title = describe(str(tables.paths.get("trace", "")))
    if trace.empty:
        return empty("no power trace (CPU job or no sampler)")
    fig, ax = plt.subplots(figsize=(11, 3.8))
    t = trace["t_rel_s"]
    ax.plot(t, trace["power_instant_w"], lw=0.7, label="instant power")
    ax.plot(
        t, trace["power_average_w"], lw=0.7, ls="--", label="1 s average (nvidia-smi power.draw)"
    )
    names = [w for w in trace["window"].unique() if w]
    colours = dict(zip(names, palette("pastel", len(names)), strict=False))
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
