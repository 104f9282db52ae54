"""Energy figures. Each function takes tables and a style dict and returns one Figure."""

from __future__ import annotations

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .plots import FigureError  # noqa: E402

PASS_ORDER = ["forward", "forward_train", "backward", "forward_backward", "optimizer", "train_step"]


NEEDED = {"tflops_per_j", "status", "workload", "pass", "precision", "gpu_label"}


def _with_energy(df: pd.DataFrame) -> pd.DataFrame:
    if not NEEDED <= set(df.columns):
        return df.iloc[0:0].reindex(columns=sorted(NEEDED | set(df.columns)))
    ok = np.isfinite(df["tflops_per_j"].astype(float)) & (df["tflops_per_j"].astype(float) > 0)
    return df[ok & df["status"].eq("ok")]


def _label(df):
    src = df.get("source", pd.Series(["measured"] * len(df), index=df.index)).astype(str)
    return df["gpu_label"].astype(str) + np.where(src.eq("reference"), " (reference)", "")


def _empty(message: str):
    fig, ax = plt.subplots(figsize=(6, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    return fig


def efficiency_bars(df: pd.DataFrame, style: dict):
    """TFLOPs/J per GPU x precision x pass, SEM error bars, the peak/TDP limit as a dash."""
    sub = _with_energy(df)
    sub = sub[sub["workload"] == style.get("workload", "llm")]
    seq = style.get("seq_len")
    if seq is not None and "seq_len" in sub:
        sub = sub[sub["seq_len"] == seq]
    if sub.empty:
        return _empty("no energy measurements with FLOPs for this workload (CPU without a meter?)")
    sub = sub.assign(gpu=_label(sub))
    gpus = sorted(sub["gpu"].unique())
    passes = [p for p in PASS_ORDER if p in set(sub["pass"]) and p != "optimizer"]
    precisions = sorted(sub["precision"].unique())
    fig, axes = plt.subplots(1, len(gpus), figsize=(1.2 + 1.3 * len(passes) * len(gpus) + 2, 4.2), squeeze=False)
    width = 0.8 / len(precisions)
    palette = dict(zip(precisions, sns.color_palette("colorblind", len(precisions))))
    for ax, gpu in zip(axes[0], gpus):
        g = sub[sub["gpu"] == gpu].groupby(["pass", "precision"], as_index=False).agg(
            tflops_per_j=("tflops_per_j", "mean"), sem=("flops_per_j_sem", lambda s: np.sqrt((s**2).mean()) / 1e12),
            limit=("max_flops_per_j", "first"), failed=("gates_passed", lambda s: (~s.astype(bool)).any()),
            hot=("thermally_limited", "any"))
        for i, prec in enumerate(precisions):
            gp = g[g["precision"] == prec].set_index("pass").reindex(passes)
            x = np.arange(len(passes)) + (i - (len(precisions) - 1) / 2) * width
            ax.bar(x, gp["tflops_per_j"], width, yerr=gp["sem"], color=palette[prec], label=prec, capsize=2,
                   hatch=["//" if f is True else "" for f in gp["failed"]])
            ax.hlines(gp["limit"] / 1e12, x - width / 2, x + width / 2, colors="k", linestyles="--", linewidth=1)
            hot = gp["hot"].eq(True).to_numpy()
            ax.scatter(x[hot], (gp["tflops_per_j"] + gp["sem"]).to_numpy()[hot] * 1.04 + 0.01, marker="v", s=14,
                       color="k", zorder=3)
        ax.set_xticks(np.arange(len(passes)), passes, rotation=30, ha="right")
        ax.set_title(gpu)
        ax.set_ylabel("TFLOPs per joule")
    axes[0][-1].legend(title="precision", fontsize=8, loc="upper right")
    fig.suptitle("Energy efficiency per pass (dashes: peak/TDP limit; hatched: a gate failed; "
                 "triangle: thermally limited rows)")
    fig.tight_layout()
    return fig


def pareto_front(points: np.ndarray) -> np.ndarray:
    """Indices of points not dominated (higher is better in both coordinates)."""
    idx = []
    for i, p in enumerate(points):
        if not np.any(np.all(points >= p, axis=1) & np.any(points > p, axis=1)):
            idx.append(i)
    return np.array(idx, dtype=int)


def forward_vs_backward(df: pd.DataFrame, style: dict):
    sub = _with_energy(df)
    sub = sub[sub["pass"].isin(["forward", "backward"])]
    keys = [c for c in ("source", "gpu_label", "workload", "model", "precision", "batch_size", "seq_len", "n", "d", "m")
            if c in sub]
    if sub.empty:
        return _empty("no forward/backward energy measurements")
    # workloads leave each other's keys empty (an LLM row has no MLP width): fill, or the
    # pivot drops every row that has a NaN key
    sub = sub.assign(**{c: sub[c].fillna(-1) if pd.api.types.is_numeric_dtype(sub[c]) else sub[c].fillna("")
                        for c in keys})
    wide = sub.pivot_table(index=keys, columns="pass", values="tflops_per_j").dropna().reset_index()
    if wide.empty:
        return _empty("no configuration with both forward and backward energy")
    wide["gpu"] = _label(wide)
    fig, ax = plt.subplots(figsize=(6.5, 5))
    sns.scatterplot(data=wide, x="forward", y="backward", hue="precision", style="gpu", s=60, ax=ax)
    pts = wide[["forward", "backward"]].to_numpy()
    front = wide.iloc[pareto_front(pts)].sort_values("forward")
    ax.plot(front["forward"], front["backward"], "k:", marker="o", mfc="none", ms=12, label="Pareto front")
    ax.set_xlabel("forward TFLOPs/J")
    ax.set_ylabel("backward TFLOPs/J")
    ax.legend(fontsize=7)
    ax.set_title("Forward vs backward efficiency")
    fig.tight_layout()
    return fig


def efficiency_vs_seq_len(df: pd.DataFrame, style: dict):
    sub = _with_energy(df)
    sub = sub[(sub["workload"] == "llm") & sub["pass"].isin(style.get("passes", PASS_ORDER))]
    if sub.empty or "seq_len" not in sub:
        return _empty("no LLM energy measurements")
    sub = sub.assign(gpu=_label(sub))
    g = sns.relplot(data=sub, x="seq_len", y="tflops_per_j", hue="precision", style="gpu", col="pass",
                    col_order=[p for p in PASS_ORDER if p in set(sub["pass"])], kind="line", markers=True,
                    height=3.2, aspect=0.9, err_style="bars")
    g.set(xscale="log", xlabel="sequence length", ylabel="TFLOPs/J")
    lengths = sorted(int(s) for s in sub["seq_len"].unique())
    for ax in g.axes.flat:
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # only the measured lengths
        ax.set_xticks(lengths, [str(s) for s in lengths])
    g.figure.suptitle("Efficiency vs sequence length", y=1.03)
    return g.figure


def power_trace(trace: pd.DataFrame, style: dict, title: str = ""):
    """Instantaneous power (and the 1 s average NVML reports) with each pass window shaded."""
    if trace.empty:
        return _empty("no power trace (CPU job or no sampler)")
    fig, ax = plt.subplots(figsize=(11, 3.8))
    t = trace["t_rel_s"]
    ax.plot(t, trace["power_instant_w"], lw=0.7, label="instant power")
    ax.plot(t, trace["power_average_w"], lw=0.7, ls="--", label="1 s average (nvidia-smi power.draw)")
    names = [w for w in trace["window"].unique() if w]
    colours = dict(zip(names, sns.color_palette("pastel", len(names))))
    for (name, rep), g in trace[trace["window"] != ""].groupby(["window", "repeat"]):
        ax.axvspan(g["t_rel_s"].min(), g["t_rel_s"].max(), color=colours[name], alpha=0.5, lw=0,
                   label=name if rep == 0 else None)
    ax.set_xlabel("time [s]")
    ax.set_ylabel("board power [W]")
    ax.legend(fontsize=7, ncol=4, loc="lower right")
    ax.set_title(title or "Power trace")
    fig.tight_layout()
    return fig


def calibration_parity(pred: pd.DataFrame, fits: pd.DataFrame, style: dict):
    if pred.empty:
        return _empty("no calibration data (no energy measurements with FLOPs)")
    long = pd.concat([
        pred.assign(model="E = F / EE", predicted=pred["predicted_loo_ee_j"]),
        pred.assign(model="E = F / EE_dyn + P_static t", predicted=pred["predicted_loo_two_term_j"]),
    ]).dropna(subset=["predicted"])
    if long.empty:
        return _empty("calibration needs at least two configurations per (GPU, precision, pass)")
    g = sns.relplot(data=long, x="energy_j_per_iter", y="predicted", hue="precision", style="pass", col="model",
                    height=4, aspect=1)
    lo, hi = long[["energy_j_per_iter", "predicted"]].min().min(), long[["energy_j_per_iter", "predicted"]].max().max()
    for ax, (model, col) in zip(g.axes.flat, [("E = F / EE", "loo_mape_ee_pct"),
                                              ("E = F / EE_dyn + P_static t", "loo_mape_two_term_pct")]):
        ax.plot([lo, hi], [lo, hi], "k:", lw=1)
        ax.set(xscale="log", yscale="log")
        ax.set_title(f"{model}\nleave-one-config-out MAPE {np.nanmean(fits[col]):.1f} %", fontsize=9)
    g.set_axis_labels("measured energy per iteration [J]", "predicted (left out) [J]")
    return g.figure


def co2e_plot(table: pd.DataFrame, style: dict):
    ok = table[table["status"] == "ok"] if "status" in table else table.iloc[0:0]
    if ok.empty:
        return _empty("no CO2e estimate: no calibration matches the declared workloads")
    fig, ax = plt.subplots(figsize=(7, 0.6 + 0.6 * len(ok)))
    y = np.arange(len(ok))
    err = np.vstack([ok["kg_co2e"] - ok["kg_co2e_lo"], ok["kg_co2e_hi"] - ok["kg_co2e"]])
    ax.barh(y, ok["kg_co2e"], xerr=err, capsize=3, color=sns.color_palette("colorblind")[2])
    ax.set_yticks(y, [f"{r.name}\n{r.gpu} {r.precision} {r['pass']}" for _, r in ok.iterrows()], fontsize=8)
    for yi, (_, r) in zip(y, ok.iterrows()):
        ax.text(r["kg_co2e"], yi, f"  {r['kg_co2e']:.3g} kg, {r['kwh']:.3g} kWh", va="center", fontsize=8)
    ax.set_xlabel(f"kg CO2e (PUE {ok['pue'].iloc[0]}, {ok['grid_intensity_g_per_kwh'].iloc[0]} g/kWh)")
    fig.tight_layout()
    return fig


def thesis_vs_ours(thesis: pd.DataFrame, ours: pd.DataFrame, style: dict):
    """The thesis's H100 forward/backward TFLOPs/J beside ours, with the peak/TDP limit."""
    gpu = style.get("gpu", "h100")
    t = thesis[thesis["gpu_label"] == gpu].assign(data="thesis")
    o = _with_energy(ours)
    o = o[(o["gpu_label"] == gpu) & (o["workload"] == "llm") & o["pass"].isin(["forward", "backward"])].assign(data="ours")
    both = pd.concat([t, o], ignore_index=True)
    if both.empty:
        return _empty(f"no {gpu} data from the thesis or from us")
    g = sns.catplot(data=both, x="seq_len", y="tflops_per_j", hue="data", col="pass", row="precision", kind="bar",
                    height=2.6, aspect=1.4, errorbar=None, sharey=False,
                    row_order=sorted(both["precision"].unique()))
    for (prec, p), ax in g.axes_dict.items():
        lim = both[(both["precision"] == prec)]["max_flops_per_j"].dropna()
        if len(lim):
            ax.axhline(lim.min() / 1e12, color="r", ls="--", lw=1)
    g.figure.suptitle(f"{gpu}: thesis vs ours (red: peak/TDP of the variant)", y=1.02)
    return g.figure
