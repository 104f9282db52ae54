"""Energy per operation class figures (registered in :mod:`flopmetrics.figures.registry`): the
Joules of a train step stacked by class, and each class's work per Joule."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..flops.operations import CLASSES
from .style import empty, palette, plt

NO_ROWS = "no energy per operation class (experiment classes, or a CPU without a meter)"


def _measured(table: pd.DataFrame) -> pd.DataFrame:
    """Configurations with a finite step energy, labelled and in a stable order."""
    if table.empty or "train_step_energy_j" not in table:
        return table.iloc[0:0]
    ok = table[np.isfinite(table["train_step_energy_j"].astype(float))]
    ok = ok.sort_values(["gpu_label", "model", "precision", "seq_len", "batch_size"])
    label = (
        ok["model"].astype(str)
        + "\n"
        + ok["precision"].astype(str)
        + " "
        + ok["batch_size"].astype(str)
        + "x"
        + ok["seq_len"].astype(str)
    )
    return ok.assign(label=label.to_numpy())


def _present(rows: pd.DataFrame) -> list[str]:
    return [c for c in CLASSES if f"energy_j_{c}" in rows and rows[f"energy_j_{c}"].notna().any()]


def energy_stacked(tables, style: dict, wildcards: dict):
    """J per iteration of each configuration's train step, a bar stacked by each class's
    Shapley share (with its standard error), the measured step (black) and the whole tape
    (open) beside it."""
    rows = _measured(tables["classes"])
    if rows.empty:
        return empty(NO_ROWS)
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(rows) + 2), 4.6))
    bottom = np.zeros(len(rows))
    classes = _present(rows)
    for c, colour in zip(classes, palette("colorblind", len(classes)), strict=True):
        share = rows[f"energy_j_{c}"].fillna(0).to_numpy(float)
        sem = rows[f"energy_j_{c}_sem"].fillna(0).to_numpy(float)
        ax.bar(x, share, 0.6, bottom=bottom, color=colour, label=c, yerr=sem, capsize=2)
        bottom += share
    ax.plot(x + 0.38, rows["train_step_energy_j"], "kD", ms=5, label="train step (measured)")
    ax.plot(x + 0.38, rows["tape_energy_j"], "ko", mfc="none", ms=5, label="tape (all classes)")
    ax.set_xticks(x, rows["label"], fontsize=7)
    ax.set_ylabel("J per iteration")
    ax.set_title("Energy of a train step by operation class (Shapley shares)")
    ax.legend(fontsize=7, loc="upper left", ncol=2)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def work_per_joule(tables, style: dict, wildcards: dict):
    """Each class's work per Joule of its share: FLOPs/J for GEMM and attention (left), bytes
    named per J for elementwise work and the optimizer, to which FlopCounterMode books no FLOPs
    (right; ``other`` is left out: its bytes are mostly views, which move nothing)."""
    rows = _measured(tables["classes"])
    if rows.empty:
        return empty(NO_ROWS)
    classes = _present(rows)
    panels = (
        ("flops", [c for c in classes if c in ("gemm", "attention")], "TFLOPs per J", 1e12),
        ("bytes", [c for c in classes if c in ("elementwise", "optimizer")], "GB named per J", 1e9),
    )
    fig, axes = plt.subplots(1, 2, figsize=(max(8.0, 1.4 * len(rows) + 3), 4.4))
    x = np.arange(len(rows))
    for ax, (work, names, unit, scale) in zip(axes, panels, strict=True):
        width = 0.8 / max(len(names), 1)
        for i, c in enumerate(names):
            per_j = rows[f"{work}_{c}"].astype(float) / rows[f"energy_j_{c}"].astype(float)
            ax.bar(x + (i - (len(names) - 1) / 2) * width, per_j / scale, width, label=c)
        ax.set_xticks(x, rows["label"], fontsize=7)
        ax.set_ylabel(unit)
        ax.legend(fontsize=7)
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].set_title("FLOPs per J of each class's share")
    axes[1].set_title("bytes named per J (no FLOPs counted)")
    fig.tight_layout()
    return fig
