"""A step's time and energy from what bounds it (issue 32), fitted per GPU and precision on
measured eager rows of the reference model, and meant to hold for models it never saw.

From a step's operation stream (:mod:`flopmetrics.flops.opstream`: each kernel's class, FLOPs,
bytes and issuing phase, recorded on the meta device):

- the GPU's time at full clock: each GEMM ``max(F / R_gemm, B / BW)``, each attention kernel
  ``max(F / R_attention, B / BW)``, every other kernel ``B / BW``, plus ``tau`` per kernel;
- the host's time: ``h_f``, ``h_b``, ``h_o`` per operation issued by the forward (Python),
  the backward (autograd's engine) and the optimizer;
- the dynamic energy: ``e_gemm F_gemm + e_attention F_attention + e_byte B``;
- power: ``P = P_idle + E_dyn / t``, capped: where that would pass the power limit the clocks
  drop until it does not, so ``t = E_dyn / (P_limit - P_idle)``.

``t = max(GPU, host, E_dyn / (P_limit - P_idle))`` and ``E = P_idle t + E_dyn``. Ten
parameters, each bounded by physics (``R`` <= the datasheet peak, ``BW`` <= the datasheet
bandwidth, everything else >= 0), fitted by least squares on the logarithms of measured energy
and time (scipy), with standard errors from the fit's Jacobian.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from ..energy import datasheet

PARAMETERS = (
    "r_gemm",  # FLOP/s
    "r_attention",  # FLOP/s
    "bandwidth",  # B/s
    "tau_s",  # GPU time per kernel
    "host_forward_s",  # host time per operation the forward issues
    "host_backward_s",
    "host_optimizer_s",
    "e_gemm_j",  # dynamic J per GEMM FLOP
    "e_attention_j",
    "e_byte_j",  # dynamic J per byte moved
)
# where the search starts (s, J): a few microseconds per kernel, tens per Python operation
_START = (0.7, 0.7, 0.7, 3e-6, 2e-5, 1e-5, 1e-5, 1e-12, 1e-12, 1e-10)
PASSES = ("forward", "forward_backward", "train_step")  # measured directly, never derived


def limits(label: str, precision: str) -> tuple[float, float]:
    """(the highest datasheet peak FLOP/s, the fastest datasheet bandwidth) of the label."""
    variants = [s for s in datasheet.table().values() if s.label == label]
    peak = max((s.peak_flops(precision) or 0 for s in variants), default=0)
    bandwidth = max((s.hbm_bytes_per_s for s in variants), default=0)
    if not (peak > 0 and bandwidth > 0):
        raise ValueError(f"no datasheet peak or bandwidth for {label!r} in {precision!r}")
    return float(peak), float(bandwidth)


def _values(x: np.ndarray, peak: float, bandwidth: float) -> dict:
    """The parameters from the search's variables: logarithms, the rates relative to their
    datasheet limit (so that the bound is ``<= 0``)."""
    v = np.exp(x)
    v[:2] *= peak
    v[2] *= bandwidth
    return dict(zip(PARAMETERS, v, strict=True))


def step(p: dict, ops: dict, idle_w: float, limit_w: float) -> tuple[float, float, str]:
    """(energy J, time s, what bound it: ``gpu``, ``host`` or ``power``) of one iteration."""
    cls, flops, nbytes, phase = ops["cls"], ops["flops"], ops["bytes"], ops["phase"]
    rate = np.where(
        cls == "gemm", p["r_gemm"], np.where(cls == "attention", p["r_attention"], np.inf)
    )
    gpu = float(np.sum(np.maximum(flops / rate, nbytes / p["bandwidth"]))) + len(cls) * p["tau_s"]
    host = sum(
        float(np.sum(phase == ph)) * p[f"host_{name}_s"]
        for ph, name in (("f", "forward"), ("b", "backward"), ("o", "optimizer"))
    )
    dynamic = (
        p["e_gemm_j"] * flops[cls == "gemm"].sum()
        + p["e_attention_j"] * flops[cls == "attention"].sum()
        + p["e_byte_j"] * nbytes.sum()
    )
    capped = dynamic / max(limit_w - idle_w, 1e-9)
    t, bound = max((gpu, "gpu"), (host, "host"), (capped, "power"))
    return idle_w * t + dynamic, t, bound


def _residuals(x, rows: list, peak: float, bandwidth: float) -> np.ndarray:
    p = _values(x, peak, bandwidth)
    out = []
    for r in rows:
        e, t, _ = step(p, r["ops"], r["idle_w"], r["limit_w"])
        out += [math.log(e / r["energy_j"]), math.log(t / r["time_s"])]
    return np.asarray(out)


def fit(rows: list[dict], label: str, precision: str) -> dict:
    """The parameters of one GPU label and precision from measured rows (each: ``ops``,
    ``idle_w``, ``limit_w``, ``energy_j``, ``time_s``), their relative standard errors
    (``<name>_rse``), the residual SD of log energy (``resid_sd``) and the rows fitted."""
    if len(rows) < len(PARAMETERS) // 2 + 1:  # two residuals a row
        raise ValueError(f"{len(rows)} rows cannot fix {len(PARAMETERS)} parameters")
    peak, bandwidth = limits(label, precision)
    upper = np.r_[0.0, 0.0, 0.0, np.full(len(PARAMETERS) - 3, np.inf)]
    start = np.log(np.asarray(_START))
    start[:3] = np.minimum(start[:3], -1e-3)
    res = least_squares(
        _residuals, start, bounds=(-np.inf, upper), args=(rows, peak, bandwidth), x_scale="jac"
    )
    out = _values(res.x, peak, bandwidth)
    dof = max(len(res.fun) - len(PARAMETERS), 1)
    s2 = float(res.fun @ res.fun) / dof
    try:
        cov = np.linalg.pinv(res.jac.T @ res.jac) * s2
        rse = np.sqrt(np.clip(np.diag(cov), 0, None))  # log scale: relative
    except np.linalg.LinAlgError:
        rse = np.full(len(PARAMETERS), math.nan)
    out.update({f"{k}_rse": float(v) for k, v in zip(PARAMETERS, rse, strict=True)})
    energy_resid = res.fun[0::2]
    out.update(
        {
            "resid_sd": float(np.sqrt(energy_resid @ energy_resid / max(len(rows) - 1, 1))),
            "fit_rows": len(rows),
            "label": label,
            "precision": precision,
        }
    )
    return out


def rows_of(table: pd.DataFrame, ops_of) -> list[dict]:
    """The measured, gated, eager rows of direct passes in ``table``, each with its operation
    stream ``ops_of(row)`` (a row of ``table`` as a dict)."""
    t = table[table["pass"].isin(PASSES) & (table["status"] == "ok")]
    t = t[t["gates_passed"].astype(bool) & (t["time_per_iter_s"] > 0)]
    if "launch" in t:
        t = t[t["launch"].fillna("eager").isin(["eager", ""])]
    return [
        {
            "ops": ops_of(r),
            "idle_w": float(r["idle_power_w"]),
            "limit_w": float(r["power_limit_w"]),
            "energy_j": float(r["energy_j_per_iter"]),
            "time_s": float(r["time_per_iter_s"]),
            "row": r,
        }
        for r in t.to_dict("records")
    ]


def unaligned_share(ops: dict) -> float:
    """The share of a step's GEMM FLOPs in GEMMs with an unaligned dimension."""
    total = float(ops["flops"][ops["cls"] == "gemm"].sum())
    return sum(u[3] for u in ops["unaligned"]) / total if total > 0 else 0.0
