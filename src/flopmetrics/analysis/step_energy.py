"""Energy per step of a declared workload, with its interval and where it came from: the
measured rows of that exact configuration, else the prediction model of its calibration group
(:mod:`flopmetrics.analysis.prediction`), flagged and widened where the workload lies outside
what the group measured; each interval with the card-to-card spread (a measured step that waited
on the host: its GPU's job-to-job spread of such steps, where larger).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from ..contracts.vocabulary import LAUNCH_BEFORE_COLUMN
from . import prediction, spread
from .merge import with_single, without_ranks

MATCH = (
    "model",
    "batch_size",
    "seq_len",
    "precision",
    "pass",
    "world_size",
    "strategy",
    "launch",
)


def measured_step(
    rows: pd.DataFrame | None, w: dict, label: str
) -> tuple[float, float, int, bool] | None:
    """(energy per step, its SEM, the fewest windows behind a row, whether a row's step waited
    on the host: its duty below :data:`~flopmetrics.analysis.spread.LOW_DUTY`) of gated measured
    rows of exactly this configuration, or None. A multi-GPU workload's ``batch_size`` is per
    rank: a node row's ``rank_batch_size``."""
    if (
        rows is None
        or rows.empty
        or not {"model", "batch_size", "seq_len", "precision", "pass"} <= set(rows.columns)
    ):
        return None
    rows = without_ranks(with_single(rows))
    if "rank_batch_size" in rows:
        rows = rows.assign(batch_size=rows["rank_batch_size"].fillna(rows["batch_size"]))
    hit = rows[(rows["gpu_label"] == label) & rows["gates_passed"].astype(bool)]
    want = {**w, "model": model_name(w["model"])}  # rows name an inline model by its name
    for key in MATCH:
        hit = hit[hit[key] == want[key]]
    if hit.empty:
        return None
    # a row without its power (a NaN duty) is not known to have waited
    waiting = bool((spread.duty(hit) < spread.LOW_DUTY).any())
    return (*_mean_of(hit), waiting)


def _mean_of(hit: pd.DataFrame) -> tuple[float, float, int]:
    """(energy per step, its SEM, the fewest windows behind a row) of measured rows."""
    sem = (
        hit["energy_j_per_iter_sem"]
        if "energy_j_per_iter_sem" in hit
        else pd.Series(math.nan, index=hit.index)
    )
    windows = hit["windows"].min() if "windows" in hit else math.nan
    n = int(windows) if pd.notna(windows) else 2  # unknown: the widest t-quantile of a mean
    return (
        float(hit["energy_j_per_iter"].mean()),
        float(np.sqrt((sem**2).sum()) / len(hit)),
        n,
    )


def model_name(model) -> str:
    """The name of a model spec: a preset's name, or an inline mapping's ``name``."""
    return str(model["name"]) if isinstance(model, dict) else str(model)


def energy(w: dict, label: str, flops_step: float, calibration: pd.DataFrame, rows) -> dict:
    """Energy per step with its interval, where it came from (``basis``) and the launch mode
    of its calibration, or ``{"status": why}`` where no estimate can be given."""
    group = _group(calibration, w, label)
    e = _group_energy(w, label, flops_step, group, rows)
    if e and "status" not in e and group is not None and not isinstance(group, str):
        e["launch"] = group.get("launch", "")
    return e


def _group_energy(w: dict, label: str, flops_step: float, group, rows) -> dict:
    if isinstance(group, str):
        return {"status": group}
    card_sd = group.get("card_sd_pct", math.nan) / 100 if group is not None else math.nan
    spread_text = (
        group["card_spread_basis"]
        if group is not None and math.isfinite(card_sd)
        else "card-to-card spread not measured: not included"
    )
    card_sd = card_sd if math.isfinite(card_sd) else 0.0
    # rows of exactly this configuration launched as the group it is estimated in
    launch = group["launch"] if group is not None else (w.get("launch") or LAUNCH_BEFORE_COLUMN)
    measured = measured_step(rows, {**w, "launch": launch}, label)
    if measured is not None and math.isfinite(measured[1]):
        e, sem, windows, waiting = measured
        cards = int(group.get("card_spread_cards", 0)) if card_sd else 0
        # the card spread's own 95 % t half-width
        between = stats.t.ppf(0.975, cards - 1) * card_sd * e if cards > 1 else 0.0
        change = group.get("repeat_change_pct", math.nan) / 100 if group is not None else math.nan
        if waiting and math.isfinite(change) and change * e > between:
            # the host's pace sets such a step's energy, and it moves job to job
            between, spread_text = change * e, group["repeat_basis"]
        elif waiting and not math.isfinite(change):
            spread_text += f"; {spread.describe_repeat(None)}: not included"
        # two independent 95 % half-widths (the windows' mean, the spread) in quadrature
        half = math.hypot(stats.t.ppf(0.975, max(windows - 1, 1)) * sem, between)
        return {
            "basis": "measured: this configuration's rows"
            + (", its step waiting on the host" if waiting else ""),
            "interval": f"95 % t-interval of the mean of {windows} windows, {spread_text} "
            "(its own 95 % t-interval added in quadrature)",
            "step": e,
            "lo": e - half,
            "hi": e + half,
        }
    if group is None:
        return {}
    if "fit_points" not in group or not isinstance(group["fit_points"], str):
        return {
            "status": "the calibration table has no prediction model (it was made by an "
            "older flopmetrics): rerun the pipeline's calibrate step"
        }
    fit = prediction.group_fit(group)
    if fit is None:
        return {
            "status": f"{int(group['configs'])} configuration(s) measured in the calibration "
            f"group ({label}, {w['precision']}, {w['pass']}): too few for a prediction "
            "interval (3 needed)"
        }
    e, lo, hi = prediction.predict_linear(fit, flops_step, card_sd)
    outside = _outside(group, w, flops_step)
    basis = "prediction model E = a F + b (WLS, weights 1/E^2)"
    interval = f"95 % prediction interval of the regression, {spread_text}"
    if outside:
        # the measured error of such predictions: another model's, or outside the FLOPs range
        other_model = any(o.startswith("model ") for o in outside)
        key = "model_extrapolation_err_pct" if other_model else "extrapolation_err_pct"
        widen = group.get(key, math.nan)
        if not math.isfinite(widen):
            what = "another model" if other_model else "outside the calibrated range"
            return {
                "status": f"extrapolated ({'; '.join(outside)}) and this group has no measured "
                f"error of predictions for {what} (it needs "
                + ("two or more models" if other_model else "three or more configurations")
                + "): refused"
            }
        lo, hi = lo / (1 + widen / 100), hi * (1 + widen / 100)
        basis = f"extrapolated: {basis}; {'; '.join(outside)}"
        interval += f", widened by {widen:.1f} %, " + (
            "the largest miss of this group's predictions for a model left out of the fit"
            if other_model
            else "the largest miss of this group's leave-one-out predictions outside their "
            "fitted range"
        )
    return {"basis": basis, "interval": interval, "step": e, "lo": lo, "hi": hi}


def _group(calibration: pd.DataFrame, w: dict, label: str):
    """The calibration group of a workload (a row), None where there is none, or why a
    launch mode asked for was not calibrated (a string)."""
    calibration = with_single(calibration)
    match = calibration[
        (calibration["gpu_label"] == label)
        & (calibration["precision"] == w["precision"])
        & (calibration["pass"] == w["pass"])
        & (calibration["world_size"] == w["world_size"])
        & (calibration["strategy"] == w["strategy"])
    ]
    if match.empty:
        return None
    launches = sorted(match["launch"].astype(str).unique())
    wanted = w.get("launch")
    if wanted and wanted not in launches:
        return (
            f"no calibration with launch {wanted} for ({label}, {w['precision']}, {w['pass']}); "
            f"calibrated: {', '.join(launches)}"
        )
    launch = wanted or ("eager" if "eager" in launches else launches[0])
    return match[match["launch"].astype(str) == launch].iloc[0]


def _outside(group, w: dict, flops_step: float) -> list[str]:
    """How a workload lies outside its calibration group's measured range (empty: inside)."""
    out = []
    # a count made again (another transformers) may differ in its last digits (3e-9 seen)
    if not group["flops_min"] * (1 - 1e-6) <= flops_step <= group["flops_max"] * (1 + 1e-6):
        out.append(
            f"step FLOPs {flops_step:.3g} outside the calibrated "
            f"{group['flops_min']:.3g}-{group['flops_max']:.3g}"
        )
    models = [m for m in str(group.get("models", "")).split(",") if m]
    model = model_name(w["model"])
    if models and model not in models:
        out.append(f"model {model} not calibrated (calibrated: {', '.join(models)})")
    for key in ("batch_size", "seq_len"):
        lo, hi = group.get(f"{key}_min", math.nan), group.get(f"{key}_max", math.nan)
        if math.isfinite(lo) and not lo <= w[key] <= hi:
            out.append(f"{key} {w[key]} outside the calibrated {lo:g}-{hi:g}")
    return out


SERVING_MATCH = ("batch_size", "prompt_len", "output_len", "precision", "pass", "launch")


def measured_serving(rows: pd.DataFrame | None, w: dict, label: str) -> dict | None:
    """A serving workload's energy per step from gated measured rows of exactly its
    configuration (model, batch, prompt, output, precision, pass, launch) on GPU ``label``,
    with the 95 % t-interval of their mean; None where there are none."""
    if rows is None or rows.empty or not set(SERVING_MATCH) <= set(rows.columns):
        return None
    hit = rows[(rows["gpu_label"] == label) & rows["gates_passed"].astype(bool)]
    hit = hit[hit["model"] == model_name(w["model"])]
    for key in SERVING_MATCH:
        hit = hit[hit[key] == w[key]]
    if hit.empty:
        return None
    e, sem, windows = _mean_of(hit)
    if not math.isfinite(sem):  # as a training row without its SEM: the model instead
        return None
    half = stats.t.ppf(0.975, max(windows - 1, 1)) * sem
    return {
        "basis": "measured: this configuration's rows",
        "interval": f"95 % t-interval of the mean of {windows} windows, card-to-card spread "
        "not measured for serving: not included",
        "step": e,
        "lo": e - half,
        "hi": e + half,
    }
