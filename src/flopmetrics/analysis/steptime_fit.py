"""The step-time model's fit (issue 32): its parameters per GPU label and precision from
measured rows, each bounded by physics (the rates <= the datasheet peak, ``BW`` <= the datasheet
bandwidth, everything else >= 0), by least squares on the logarithms of measured energy and
time (scipy), with standard errors from the fit's Jacobian. The model itself is
:mod:`flopmetrics.analysis.steptime`.

The kinds of :data:`STAGED` are fitted last, on the rows that spend more than
:data:`~flopmetrics.analysis.steptime.SLOW_LIMIT` of their FLOPs in them, with every other
parameter held at what the other rows fix: a mixture of experts' routing (many small operations)
would otherwise move the parameters every dense model is priced with.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import least_squares

from ..energy import datasheet
from .steptime import FITTED, PARAMETERS, SLOW, SLOW_LIMIT, slow_shares, table_of
from .steptime_batch import Steps

STAGED = ("grouped",)
_START = (0.7, 0.3, 0.3, 0.5, 0.7, 3e-6, 2e-5, 1e-5, 1e-5, 1e-12, 2e-12, 2e-12, 1e-12, 1e-10)
_START = dict(zip(FITTED, (*_START, 0.5, 2e-12, 0.3, 2e-12, 0.5, 2e-12), strict=True))  # / peak
_DATASHEET = {
    "r_flop": "peak",
    "r_unaligned": "peak",
    "r_align2": "peak",
    "r_masked": "peak",
    "r_attention": "peak",
    "r_grouped": "peak",
    "r_dropout": "peak",
    "bandwidth": "bandwidth",
}


def limits(label: str, precision: str) -> tuple[float, float]:
    """(the highest datasheet peak FLOP/s, the fastest datasheet bandwidth) of the label."""
    variants = [s for s in datasheet.table().values() if s.label == label]
    peak = max((s.peak_flops(precision) or 0 for s in variants), default=0)
    bandwidth = max((s.hbm_bytes_per_s for s in variants), default=0)
    if not (peak > 0 and bandwidth > 0):
        raise ValueError(f"no datasheet peak or bandwidth for {label!r} in {precision!r}")
    return float(peak), float(bandwidth)


def free_parameters(rows: list[dict], held: dict | None = None) -> list[str]:
    """The parameters rows can fix: a slower kind's rate and energy only where some row spends
    more than :data:`SLOW_LIMIT` of its FLOPs in it, not counting the attention kernels a held
    attention table prices."""
    unseen = set()
    shares = [slow_shares(r["ops"], table_of(held or {})) for r in rows]
    for kind, (rate, energy, _) in SLOW.items():
        if max((s[kind] for s in shares), default=0.0) <= SLOW_LIMIT:
            unseen |= {rate, energy}
    return [k for k in FITTED if k not in unseen]


def _values(x: np.ndarray, free: list[str], peak: float, bandwidth: float, held: dict) -> dict:
    """The parameters from the search's variables: logarithms, the rates relative to their
    datasheet limit (so that the bound is ``<= 0``); ``held`` as given; any other is NaN."""
    unit = {"peak": peak, "bandwidth": bandwidth}
    scale = np.array([unit.get(_DATASHEET.get(k), 1.0) for k in free])
    return {
        **dict.fromkeys(PARAMETERS, math.nan),
        **held,
        # a parameter the rows cannot fix may run off in the search: it stays finite
        **dict(zip(free, np.exp(np.clip(x, -200, 200)) * scale, strict=True)),
    }


def _residuals(x, steps: Steps, measured: np.ndarray, free: list, limit: tuple, held: dict):
    """Each row's log(predicted / measured) energy, then time, row after row."""
    p = _values(x, free, *limit, held)
    return np.log(np.column_stack(steps.evaluate(p)) / measured).ravel()


def fit(rows: list[dict], label: str, precision: str, held: dict | None = None) -> dict:
    """The parameters of one GPU label and precision from measured rows (each: ``ops``,
    ``idle_w``, ``limit_w``, ``energy_j``, ``time_s``), their relative standard errors
    (``<name>_rse``), the residual SD of log energy (``resid_sd``, of the rows of no
    :data:`STAGED` kind where there are such rows) and the rows fitted. A parameter the rows
    cannot fix (:func:`free_parameters`) is NaN; one in ``held`` is taken as given."""
    held = held or {}
    staged = [any(slow_shares(r["ops"])[k] > SLOW_LIMIT for k in STAGED) for r in rows]
    if all(staged) or not any(staged):
        return _fit(rows, label, precision, held)
    base = _fit([r for r, s in zip(rows, staged, strict=True) if not s], label, precision, held)
    held = {**held, **{k: base[k] for k in FITTED if math.isfinite(base[k])}}
    last = _fit([r for r, s in zip(rows, staged, strict=True) if s], label, precision, held)
    rse = {f"{k}_rse": base[f"{k}_rse"] for k in held if k in PARAMETERS}  # not a table held
    return {**last, **rse, "resid_sd": base["resid_sd"], "fit_rows": len(rows)}


def _fit(rows: list[dict], label: str, precision: str, held: dict) -> dict:
    """:func:`fit` of the parameters the rows can fix and ``held`` does not give."""
    free = [k for k in free_parameters(rows, held) if k not in held]
    if len(rows) < len(free) // 2 + 1:  # two residuals a row
        raise ValueError(f"{len(rows)} rows cannot fix {len(free)} parameters")
    limit = limits(label, precision)
    upper = np.array([0.0 if k in _DATASHEET else np.inf for k in free])
    steps = Steps([r["ops"] for r in rows], *_powers(rows), held)
    measured = np.array([[r["energy_j"], r["time_s"]] for r in rows])
    res = min(
        (
            least_squares(
                _residuals,
                np.log([start.get(k, _START[k]) for k in free]),
                bounds=(-np.inf, upper),
                args=(steps, measured, free, limit, held),
                x_scale="jac",
            )
            for start in _starts(free, held)
        ),
        key=lambda r: r.cost,
    )
    out = _values(res.x, free, *limit, held)
    s2 = float(res.fun @ res.fun) / max(len(res.fun) - len(free), 1)
    rse = np.sqrt(np.clip(np.diag(np.linalg.pinv(res.jac.T @ res.jac) * s2), 0, None))
    out.update({f"{k}_rse": math.nan for k in PARAMETERS})
    rse = np.where(np.any(res.jac != 0, axis=0), rse, np.inf)  # one no row's residual moves
    out.update({f"{k}_rse": float(v) for k, v in zip(free, rse, strict=True)})
    energy_resid = res.fun[0::2]
    out["resid_sd"] = float(np.sqrt(energy_resid @ energy_resid / max(len(rows) - 1, 1)))
    return {**out, "fit_rows": len(rows), "gpu_label": label, "precision": precision}


def _powers(rows: list[dict]) -> tuple[list, list]:
    """The rows' idle powers and power limits."""
    return [r["idle_w"] for r in rows], [r["limit_w"] for r in rows]


def _starts(free: list[str], held: dict) -> list[dict]:
    """Where the search starts: :data:`_START`; for a staged kind's rate (``held`` given) also
    across the datasheet peak, since a rate a step's time does not depend on at the start (its
    steps bound by the host or the power cap there) is never moved by the search."""
    rates = [k for k in free if k in _DATASHEET] if held else []
    if not rates:
        return [{}]
    return [{}, *(dict.fromkeys(rates, f) for f in (0.1, 0.2, 0.3, 0.7, 1.0))]
