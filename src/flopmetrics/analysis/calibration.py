"""Predict energy from FLOPs: ``E = F / EE``, ``E = F / EE_dyn + P_static * t``, and the
prediction model ``E = a F + b`` (:mod:`flopmetrics.analysis.prediction`).

All are fitted per group (GPU, world size and strategy, precision, pass, launch mode) and judged
by leave-one-config-out: each configuration (row) is predicted by a fit to the others; the mean
absolute percentage error (MAPE) over those predictions is the model's score. EE gets a bootstrap
interval (resampling configurations). Estimates use the
prediction model, whose table columns come from there.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from . import prediction
from .merge import with_single, without_ranks


def fit_ee(flops: np.ndarray, energy: np.ndarray) -> float:
    """EE (FLOPs/J) minimising squared error of ``E = F / EE``."""
    flops, energy = np.asarray(flops, float), np.asarray(energy, float)
    a = float(np.dot(flops, energy) / np.dot(flops, flops))
    return 1.0 / a if a > 0 else math.nan


def fit_two_term(flops, seconds, energy) -> tuple[float, float]:
    """(EE_dyn, P_static) for ``E = F / EE_dyn + P_static * t``; NaN if under-determined."""
    X = np.column_stack([np.asarray(flops, float), np.asarray(seconds, float)])
    if len(X) < 2:
        return math.nan, math.nan
    scale = np.linalg.norm(X, axis=0)  # FLOPs ~1e12 and seconds ~1e-2: compare shapes, not sizes
    if np.any(scale == 0) or np.linalg.matrix_rank(X / scale) < 2:
        return math.nan, math.nan
    (a, p_static), *_ = np.linalg.lstsq(X / scale, np.asarray(energy, float), rcond=None)
    a, p_static = a / scale[0], p_static / scale[1]
    return (1.0 / a if a > 0 else math.nan), float(p_static)


def fit_time(flops, seconds) -> tuple[float, float]:
    """``(a, b)`` of ``t = a F + b`` (time per FLOP and per-step overhead), to predict the time of a
    configuration nobody measured: throughput grows with the work per step, so ``t = F / R``
    would turn the two-term model back into ``E = F / EE``. NaN where FLOPs do not vary."""
    flops, seconds = np.asarray(flops, float), np.asarray(seconds, float)
    if len(flops) < 2 or np.ptp(flops) <= 1e-9 * np.max(np.abs(flops)):
        return math.nan, math.nan
    a, b = np.polyfit(flops, seconds, 1)
    return float(a), float(b)


def bootstrap_ee(
    flops, energy, n: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    flops, energy = np.asarray(flops, float), np.asarray(energy, float)
    if len(flops) < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(flops), size=(n, len(flops)))
    a = (flops[idx] * energy[idx]).sum(axis=1) / (flops[idx] ** 2).sum(axis=1)
    ee = 1.0 / a
    lo, hi = np.quantile(ee, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def leave_one_out(flops, seconds, energy) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LOO predictions of each row's energy: the one-term model, the two-term model with the
    row's measured time, and the two-term model with its time predicted from FLOPs
    (:func:`fit_time`: what an estimate for an unmeasured configuration has)."""
    flops, seconds, energy = (np.asarray(v, float) for v in (flops, seconds, energy))
    one, two, timed = (np.full(len(flops), np.nan) for _ in range(3))
    for i in range(len(flops)):
        keep = np.arange(len(flops)) != i
        if keep.sum() < 1:
            continue
        ee = fit_ee(flops[keep], energy[keep])
        one[i] = flops[i] / ee
        ee_dyn, p_static = fit_two_term(flops[keep], seconds[keep], energy[keep])
        if not math.isnan(ee_dyn):
            two[i] = flops[i] / ee_dyn + p_static * seconds[i]
            a, b = fit_time(flops[keep], seconds[keep])
            timed[i] = flops[i] / ee_dyn + p_static * (a * flops[i] + b)
    return one, two, timed


def mape(pred, actual) -> float:
    pred, actual = np.asarray(pred, float), np.asarray(actual, float)
    ok = ~np.isnan(pred) & ~np.isnan(actual)
    return (
        float(np.mean(np.abs(pred[ok] - actual[ok]) / np.abs(actual[ok])) * 100)
        if ok.any()
        else math.nan
    )


# a node of N GPUs under a strategy is a group of its own: its FLOPs/J include communication;
# eager and CUDA-graph launching spend different energy on the same work
GROUP = ["gpu_label", "world_size", "strategy", "precision", "pass", "launch"]


def usable(
    df: pd.DataFrame, experiments=None, passes=None, require_gates: bool = True
) -> pd.DataFrame:
    """Rows with finite FLOPs, energy and time (and passing gates, by default); the node rows of
    distributed jobs, not their ranks' (``rank`` -1 or absent)."""
    df = without_ranks(with_single(df))
    if not {"flops", "energy_j_per_iter", "time_per_iter_s", "experiment", "pass", *GROUP} <= set(
        df.columns
    ):
        return df.iloc[0:0]
    ok = (
        df["flops"].astype(float).gt(0)
        & np.isfinite(df["energy_j_per_iter"].astype(float))
        & df["energy_j_per_iter"].astype(float).gt(0)
    )
    if experiments:
        ok &= df["experiment"].isin(experiments)
    if passes:
        ok &= df["pass"].isin(passes)
    if require_gates and "gates_passed" in df:
        ok &= df["gates_passed"].astype(bool)
    return df[ok]


def calibrate(
    df: pd.DataFrame,
    group=GROUP,
    bootstrap: int = 1000,
    seed: int = 0,
    spread: pd.DataFrame | None = None,
    min_cards: int = 4,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (one row per group: EE with interval, two-term fit, LOO MAPEs, the prediction
    model with its range, checks and card spread; one row per config with measured and
    LOO-predicted energy). ``spread``: the card-spread table (:func:`spread.card_spread`)."""
    fits, preds = [], []
    groups = df.groupby(list(group), sort=True) if len(df) else []
    for key, g in groups:
        F, t, E = (
            g[c].astype(float).to_numpy() for c in ("flops", "time_per_iter_s", "energy_j_per_iter")
        )
        ee = fit_ee(F, E)
        lo, hi = bootstrap_ee(F, E, bootstrap, seed)
        ee_dyn, p_static = fit_two_term(F, t, E)
        one, two, timed = leave_one_out(F, t, E) if len(g) >= 2 else (np.full(len(g), np.nan),) * 3
        a, b = fit_time(F, t)
        fitted = F / ee_dyn + p_static * (a * F + b)
        # relative errors of what an estimate would predict: out of sample (LOO) and of the fit
        # itself, so the interval an estimate carries covers every configuration measured
        err = np.concatenate([(timed - E) / E, (fitted - E) / E])
        predicted = prediction.group_columns(g, F, E, spread, min_cards)
        lo_cards, hi_cards = prediction.ee_with_cards(
            ee, lo, hi, predicted["card_sd_pct"], predicted["card_spread_cards"]
        )
        fits.append(
            {
                **dict(zip(group, key, strict=False)),
                "configs": len(g),
                "ee_flops_per_j": ee,
                "ee_lo": lo,
                "ee_hi": hi,
                "ee_dyn_flops_per_j": ee_dyn,
                "p_static_w": p_static,
                "time_s_per_flop": a,
                "time_s_per_step": b,
                "loo_mape_ee_pct": mape(one, E),
                "loo_mape_two_term_pct": mape(two, E),
                "loo_mape_two_term_timed_pct": mape(timed, E),
                "loo_err_timed_min": float(np.nanmin(err)) if np.isfinite(err).any() else math.nan,
                "loo_err_timed_max": float(np.nanmax(err)) if np.isfinite(err).any() else math.nan,
                "source": ",".join(
                    sorted(set(g.get("source", pd.Series(["measured"])).astype(str)))
                ),
                "ee_lo_cards": lo_cards,
                "ee_hi_cards": hi_cards,
                **predicted,
            }
        )
        p = g[[*group, "experiment", "flops", "time_per_iter_s", "energy_j_per_iter"]].copy()
        for col in ("model", "seq_len", "batch_size", "n", "d", "m", "size"):
            if col in g:
                p[col] = g[col]
        p["predicted_loo_ee_j"] = one
        p["predicted_loo_two_term_j"] = two
        p["predicted_loo_two_term_timed_j"] = timed
        preds.append(p)
    fit_cols = [
        *group,
        "configs",
        "ee_flops_per_j",
        "ee_lo",
        "ee_hi",
        "ee_lo_cards",
        "ee_hi_cards",
        "ee_dyn_flops_per_j",
        "p_static_w",
        "time_s_per_flop",
        "time_s_per_step",
        "loo_mape_ee_pct",
        "loo_mape_two_term_pct",
        "loo_mape_two_term_timed_pct",
        "loo_err_timed_min",
        "loo_err_timed_max",
        "source",
        *prediction.COLUMNS,
    ]
    fit_df = pd.DataFrame(fits, columns=fit_cols)
    pred_cols = [
        *group,
        "experiment",
        "flops",
        "time_per_iter_s",
        "energy_j_per_iter",
        "predicted_loo_ee_j",
        "predicted_loo_two_term_j",
        "predicted_loo_two_term_timed_j",
    ]
    pred_df = pd.concat(preds, ignore_index=True) if preds else pd.DataFrame(columns=pred_cols)
    return fit_df, pred_df
