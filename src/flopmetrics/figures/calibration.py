"""Calibration and CO2e figures (registered in :mod:`flopmetrics.figures.registry`)."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd

from .style import empty, palette, plt, precision_colors, seaborn


def calibration_parity(tables, style: dict, wildcards: dict):
    """Measured energy against its leave-one-config-out prediction, for both models, one row
    of panels per GPU."""
    pred, fits = tables["predictions"], tables["fits"]
    if pred.empty:
        return empty("no calibration data (no energy measurements with FLOPs)")
    long = pd.concat(
        [
            pred.assign(model="E = F / EE", predicted=pred["predicted_loo_ee_j"]),
            pred.assign(
                model="E = F / EE_dyn + P_static t", predicted=pred["predicted_loo_two_term_j"]
            ),
        ]
    ).dropna(subset=["predicted"])
    if long.empty:
        return empty("calibration needs at least two configurations per (GPU, precision, pass)")
    gpus = sorted(long["gpu_label"].unique())
    g = seaborn().relplot(
        data=long,
        x="energy_j_per_iter",
        y="predicted",
        hue="precision",
        style="pass",
        col="model",
        row="gpu_label",
        row_order=gpus,
        palette=precision_colors(),
        height=4,
        aspect=1,
    )
    lo, hi = (
        long[["energy_j_per_iter", "predicted"]].min().min(),
        long[["energy_j_per_iter", "predicted"]].max().max(),
    )
    for gpu, axes in zip(gpus, g.axes, strict=False):
        mine = fits[fits["gpu_label"] == gpu]
        for ax, (model, col) in zip(
            axes,
            [
                ("E = F / EE", "loo_mape_ee_pct"),
                ("E = F / EE_dyn + P_static t", "loo_mape_two_term_pct"),
            ],
            strict=False,
        ):
            ax.plot([lo, hi], [lo, hi], "k:", lw=1)
            ax.set(xscale="log", yscale="log")
            ax.set_title(
                f"{gpu}: {model}\nleave-one-config-out MAPE {np.nanmean(mine[col]):.1f} %",
                fontsize=9,
            )
    g.set_axis_labels("measured energy per iteration [J]", "predicted (left out) [J]")
    g.tight_layout()
    return g.figure


def co2e_bars(tables, style: dict, wildcards: dict):
    """kg CO2e of each declared workload with its interval."""
    table = tables["co2e"]
    ok = table[table["status"] == "ok"] if "status" in table else table.iloc[0:0]
    if ok.empty:
        return empty("no CO2e estimate: no calibration matches the declared workloads")
    fig, ax = plt.subplots(figsize=(7, 0.6 + 0.6 * len(ok)))
    y = np.arange(len(ok))
    err = np.vstack([ok["kg_co2e"] - ok["kg_co2e_lo"], ok["kg_co2e_hi"] - ok["kg_co2e"]])
    ax.barh(y, ok["kg_co2e"], xerr=err, capsize=3, color=palette("colorblind", 3)[2])
    ax.set_yticks(
        y,
        [f"{r['name']}\n{r['target']} {r['precision']} {r['pass']}" for _, r in ok.iterrows()],
        fontsize=8,
    )
    for yi, (_, r) in zip(y, ok.iterrows(), strict=False):
        ax.text(
            r["kg_co2e"],
            yi,
            f"  {r['kg_co2e']:.3g} kg, {r['kwh']:.3g} kWh",
            va="center",
            fontsize=8,
        )
    source = ok["grid_intensity_source"].iloc[0] if "grid_intensity_source" in ok else ""
    ax.set_xlabel(
        f"kg CO2e (PUE {ok['pue'].iloc[0]}, {ok['grid_intensity_g_per_kwh'].iloc[0]:g} g/kWh)"
        + (f"\ngrid: {textwrap.shorten(source, 110)}" if source else "")
    )
    fig.tight_layout()
    return fig
