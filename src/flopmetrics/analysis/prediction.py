"""The prediction model of a calibration group: ``E = a F + b``, fitted by weighted least squares
(statsmodels WLS, weights 1/E^2: the same relative error at every size), with its 95 %
prediction interval (statsmodels) widened by the card-to-card spread
(:mod:`flopmetrics.analysis.spread`). Its leave-one-out predictions on the group's own
configurations say how often that interval held (``loo_pi_coverage``), how far predictions
outside the fitted range of FLOPs missed (``extrapolation_err_pct``) and, where a group holds
several models, how far a model left out of the fit missed (``model_extrapolation_err_pct``).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from . import spread as card

LEVEL = 0.95


def fit_linear(flops, energy):
    """statsmodels WLS of ``E = a F + b`` with weights 1/E^2 (F in units of its largest value,
    so that a and b are of like size); where every configuration has the same FLOPs (the
    optimizer's work at any sequence length) the constant ``E = c``, so that its interval is
    the scatter those configurations really have. None where no residual degree of freedom is
    left (fewer than 3 configurations, 2 for a constant)."""
    flops, energy = np.asarray(flops, float), np.asarray(energy, float)
    constant = len(flops) > 0 and np.ptp(flops) <= 1e-9 * np.max(np.abs(flops))
    if len(flops) < (2 if constant else 3):
        return None
    unit = math.nan if constant else float(np.max(np.abs(flops)))
    exog = np.ones((len(flops), 1)) if constant else sm.add_constant(flops / unit)
    fit = sm.WLS(energy, exog, weights=energy**-2.0).fit()
    fit.flops_unit = unit
    return fit


def predict_linear(fit, flops: float, card_sd: float = 0.0, level: float = LEVEL):
    """(energy, low, high) of one configuration of ``flops``: the WLS prediction with its
    prediction interval, the card-to-card relative SD ``card_sd`` added in quadrature to the
    standard error of a new observation (statsmodels' ``se_obs``), t-quantile of the fit's
    residual degrees of freedom (scipy)."""
    constant = math.isnan(fit.flops_unit)
    exog = np.array([[1.0]]) if constant else np.array([[1.0, flops / fit.flops_unit]])
    mean = float(fit.predict(exog)[0])
    if not mean > 0:
        return math.nan, math.nan, math.nan
    pred = fit.get_prediction(exog, weights=np.array([mean**-2.0]))
    se = math.hypot(float(pred.se_obs[0]), card_sd * mean)
    half = float(stats.t.ppf(0.5 + level / 2, fit.df_resid)) * se
    return mean, mean - half, mean + half


def validate_linear(flops, energy) -> dict:
    """Leave-one-configuration-out checks of the prediction model on the group's own
    configurations: the share whose measured energy fell inside the 95 % prediction interval
    of a fit to the others (no card spread: the same card), and the largest relative miss of
    those predicted outside the others' range of FLOPs (an extrapolation)."""
    flops, energy = np.asarray(flops, float), np.asarray(energy, float)
    inside, extrapolated = [], []
    for i in range(len(flops)):
        keep = np.arange(len(flops)) != i
        fit = fit_linear(flops[keep], energy[keep])
        if fit is None:
            continue
        e, lo, hi = predict_linear(fit, flops[i])
        if not math.isfinite(e):
            continue
        inside.append(lo <= energy[i] <= hi)
        if not flops[keep].min() <= flops[i] <= flops[keep].max():
            extrapolated.append(abs(e - energy[i]) / energy[i])
    return {
        "loo_pi_checked": len(inside),
        "loo_pi_coverage": float(np.mean(inside)) if inside else math.nan,
        "extrapolation_err_pct": 100 * max(extrapolated) if extrapolated else math.nan,
    }


COLUMNS = [
    "fit_points",
    "flops_min",
    "flops_max",
    "models",
    "batch_size_min",
    "batch_size_max",
    "seq_len_min",
    "seq_len_max",
    "loo_pi_checked",
    "loo_pi_coverage",
    "extrapolation_err_pct",
    "model_extrapolation_err_pct",
    "card_sd_pct",
    "card_spread_cards",
    "card_spread_basis",
    "repeat_change_pct",
    "repeat_pairs",
    "repeat_basis",
]


def group_columns(g: pd.DataFrame, F, E, spread, min_cards) -> dict:
    """What an estimate needs of a group: its configurations (FLOPs, energy) to fit the
    prediction model on, the range they span, the model's leave-one-out checks, the card
    spread that stands for the group, and its GPU's job-to-job change of steps waiting on the
    host."""

    def span(col):
        values = pd.to_numeric(g[col], errors="coerce") if col in g else pd.Series([math.nan])
        return float(values.min()), float(values.max())

    first = g.iloc[0]
    found = card.spread_for(
        spread, {k: first[k] for k in card.CONFIG if k in g}, min_cards, exact=False
    )
    repeat = card.repeat_for(spread, first["gpu_label"])
    (b_lo, b_hi), (s_lo, s_hi) = span("batch_size"), span("seq_len")
    return {
        "fit_points": json.dumps([[float(f), float(e)] for f, e in zip(F, E, strict=True)]),
        "flops_min": float(F.min()),
        "flops_max": float(F.max()),
        "models": ",".join(sorted(g["model"].dropna().astype(str).unique()))
        if "model" in g
        else "",
        "batch_size_min": b_lo,
        "batch_size_max": b_hi,
        "seq_len_min": s_lo,
        "seq_len_max": s_hi,
        **validate_linear(F, E),
        "model_extrapolation_err_pct": _leave_one_model_out(g, F, E),
        "card_sd_pct": 100 * found[0] if found else math.nan,
        "card_spread_cards": found[1] if found else 0,
        "card_spread_basis": card.describe(found),
        "repeat_change_pct": 100 * repeat[0] if repeat else math.nan,
        "repeat_pairs": repeat[1] if repeat else 0,
        "repeat_basis": card.describe_repeat(repeat),
    }


def _leave_one_model_out(g: pd.DataFrame, F, E) -> float:
    """The largest relative miss (%) of the prediction model on a model's configurations when
    fitted to the other models' only; NaN where the group holds one model."""
    models = g["model"].astype(str).to_numpy() if "model" in g else np.array([])
    misses = []
    for name in np.unique(models) if len(np.unique(models)) > 1 else []:
        fit = fit_linear(F[models != name], E[models != name])
        for f, e in zip(F[models == name], E[models == name], strict=True):
            p = predict_linear(fit, f)[0] if fit is not None else math.nan
            misses.append(abs(p - e) / e)
    finite = [m for m in misses if math.isfinite(m)]
    return 100 * max(finite) if finite and len(finite) == len(misses) else math.nan


def ee_with_cards(ee: float, lo: float, hi: float, card_sd: float, cards: int):
    """EE's bootstrap interval with the card spread's own 95 % t-interval added in quadrature to
    each side (relative): another card's EE, not only this card's."""
    if not (math.isfinite(card_sd) and cards > 1):
        return lo, hi
    extra = float(stats.t.ppf(0.5 + LEVEL / 2, cards - 1)) * card_sd / 100
    return (
        ee * (1 - math.hypot(1 - lo / ee, extra)),
        ee * (1 + math.hypot(hi / ee - 1, extra)),
    )


def group_fit(calibration_row) -> object | None:
    """The prediction model of one calibration group, refitted from its stored points."""
    points = np.asarray(json.loads(calibration_row["fit_points"]), float).reshape(-1, 2)
    return fit_linear(points[:, 0], points[:, 1])
