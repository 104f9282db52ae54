"""Energy of serving passes nobody measured: a model of what bounds a prefill or decode step,
fitted per (GPU, precision, pass, launch) on the measured serving rows.

A serving step's time is the sum of what bounds its parts: the bytes it moves (weights, and the
KV cache of the positions attended) at an effective memory bandwidth, the kernels it launches at
a fixed cost each (decode from a CUDA graph still pays a few microseconds per kernel: one token
per sequence is too little work to hide it), and its FLOPs at an effective rate::

    t = a B + k K + c F          a >= 1 / datasheet bandwidth, c >= 1 / datasheet peak, k >= 0
    E = P_idle t + e_B B + e_F F  (the idle power the rows measured; e_B, e_F >= 0)

``K`` is the number of operations a step runs that launch a kernel (views left out), counted
on the meta device, so a model's family (its kernels per layer) enters without measuring it;
decode is bound by ``B`` and ``K``: ``E = F / EE`` does not suit it.

The interval: a 95 % prediction interval from the fit's relative residuals (Student's t),
widened for another model by the group's largest leave-one-model-out miss, outside the fitted
batch sizes by its largest leave-one-batch-out miss; refused where neither was measured.
"""

from __future__ import annotations

import functools
import json
import math

import numpy as np
import pandas as pd
from scipy import stats
from scipy.optimize import lsq_linear

from ..energy import datasheet
from ..flops.counted import count_flops
from ..flops.meta import on_meta
from ..flops.operations import count_launching
from ..workloads import inference
from . import step_energy as step_energy_
from .step_energy import model_name

GROUP = ["gpu_label", "precision", "pass", "launch"]
TIME = ["B", "K", "F"]
DYNAMIC = ["B", "F"]
MIN_CONFIGS = 4  # more than the three time coefficients


def model_key(model) -> str:
    """A model spec (a preset name or an inline mapping) as one hashable string."""
    return model if isinstance(model, str) else json.dumps(model, sort_keys=True)


def _spec(key: str):
    """The model spec ``model_key`` made ``key`` of."""
    return json.loads(key) if key.startswith("{") else key


@functools.cache
def launches(key: str, pass_name: str) -> int:
    """Kernels one ``pass_name`` step of model ``key`` launches (independent of its sizes)."""
    w = inference.build("meta", "bf16", _workload(_spec(key), 1, 2, 2), seed=0)
    step = w.steps()[pass_name]
    with on_meta(w.config.fields):
        step()  # the cache allocates its tensors on first use: not a step's work
        return count_launching(step)


def _workload(model, batch_size: int, prompt_len: int, output_len: int) -> dict:
    return dict(model=model, batch_size=batch_size, prompt_len=prompt_len, output_len=output_len)


def features(model, batch_size: int, prompt_len: int, output_len: int, pass_name: str) -> dict:
    """What bounds one step of a serving pass: bytes moved ``B``, FLOPs ``F`` (the positions
    attended), kernels launched ``K``, and the tokens the step processes or produces."""
    w = inference.build(
        "meta", "bf16", _workload(model, batch_size, prompt_len, output_len), seed=0
    )
    if pass_name not in w.passes:
        raise ValueError(f"no serving pass {pass_name!r}; expected prefill or decode")
    with on_meta(w.config.fields):
        c = count_flops(w.steps()[pass_name])
    # on the meta device SDPA runs its math path: the scores are the batched products
    attention = c.attention or c.by_op.get("aten.bmm", 0)
    flops = c.total - attention * (1 - w.attended(pass_name))  # as the measured rows count
    positions = prompt_len if pass_name == "prefill" else w.config.context_len + 1
    moved = w.weight_bytes() + batch_size * positions * w.kv_bytes_per_position()
    return {
        "B": float(moved),
        "F": float(flops),
        "K": float(launches(model_key(model), pass_name)),
        "tokens": w.tokens(pass_name),
        "context_len": positions if pass_name == "prefill" else w.config.context_len,
        "experts": float(c.by_op.get("aten._grouped_mm", 0)),  # FLOPs of grouped GEMMs
    }


def rows_features(rows: pd.DataFrame) -> pd.DataFrame:
    """Measured serving rows (``results/merged/inference.parquet``) with ``B``, ``F``, ``K``,
    ``E`` (J per step), ``t`` (s per step), ``dynamic`` and the model's spec."""
    rows = rows[rows["status"].eq("ok") & rows["gates_passed"].astype(bool)].copy()
    specs = [json.loads(c)["workload"]["model"] for c in rows["config_json"]]
    rows["model_key"] = [model_key(m) for m in specs]
    rows["B"] = rows["bytes_per_token"] * rows["tokens"]
    rows["F"] = rows["flops"].astype(float)
    keys = zip(rows["model_key"], rows["pass"], strict=True)
    rows["K"] = [float(launches(k, p)) for k, p in keys]
    rows["E"], rows["t"] = rows["energy_j_per_iter"], rows["time_per_iter_s"]
    rows["dynamic"] = rows["dynamic_energy_j_per_iter"]
    return rows


def _bounds(label: str, precision: str) -> tuple[float, float]:
    """(1 / the fastest bandwidth, 1 / the highest peak) of the label's datasheet variants:
    a step's time per byte and per FLOP can be no shorter."""
    variants = [s for s in datasheet.table().values() if s.label == label]
    bandwidth = max((s.hbm_bytes_per_s for s in variants), default=math.inf)
    peak = max((s.peak_flops(precision) or 0 for s in variants), default=0) or math.inf
    return 1 / bandwidth, 1 / peak


def _relative_lsq(x: np.ndarray, y: np.ndarray, lower) -> np.ndarray:
    """Coefficients >= ``lower`` minimizing the relative error of ``x @ coef`` against ``y``."""
    return lsq_linear(x / y[:, None], np.ones_like(y), bounds=(lower, np.inf)).x


def fit(rows: pd.DataFrame, label: str, precision: str) -> dict:
    """The time and dynamic-energy coefficients of one group's rows (see the module)."""
    per_byte, per_flop = _bounds(label, precision)
    time = _relative_lsq(rows[TIME].to_numpy(), rows["t"].to_numpy(), [per_byte, 0, per_flop])
    dynamic = _relative_lsq(rows[DYNAMIC].to_numpy(), rows["dynamic"].to_numpy(), [0, 0])
    return {
        "s_per_byte": time[0],
        "s_per_launch": time[1],
        "s_per_flop": time[2],
        "dynamic_j_per_byte": dynamic[0],
        "dynamic_j_per_flop": dynamic[1],
        "idle_power_w": float(rows["idle_power_w"].mean()),
    }


def predict_step(coef: dict, x: dict | pd.DataFrame):
    """Energy per step (J) of features ``x`` under fitted coefficients ``coef``."""
    t = coef["s_per_byte"] * x["B"] + coef["s_per_launch"] * x["K"] + coef["s_per_flop"] * x["F"]
    dynamic = coef["dynamic_j_per_byte"] * x["B"] + coef["dynamic_j_per_flop"] * x["F"]
    return coef["idle_power_w"] * t + dynamic


def _miss(train: pd.DataFrame, test: pd.DataFrame, label: str, precision: str) -> np.ndarray:
    """Relative misses (%) on ``test`` of the model fitted on ``train``."""
    coef = fit(train, label, precision)
    return 100 * (predict_step(coef, test) / test["E"] - 1).to_numpy()


def held_out_misses(g: pd.DataFrame, label: str, precision: str) -> tuple[float, float]:
    """The largest |miss| (%) of predictions for each model left out of the fit in turn, and
    for the smallest and the largest batch size left out (NaN where too few rows are left)."""
    models, batches = g["model_key"].unique(), sorted(g["batch_size"].unique())
    by_model = [
        _miss(g[g["model_key"] != m], g[g["model_key"] == m], label, precision)
        for m in models
        if len(models) > 1 and (g["model_key"] != m).sum() >= MIN_CONFIGS
    ]
    by_batch = [
        _miss(g[g["batch_size"] != b], g[g["batch_size"] == b], label, precision)
        for b in (batches[0], batches[-1])
        if len(batches) > 2 and (g["batch_size"] != b).sum() >= MIN_CONFIGS
    ]

    def largest(misses):
        return float(np.abs(np.concatenate(misses)).max()) if misses else math.nan

    return largest(by_model), largest(by_batch)


def calibrate(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (GPU, precision, pass, launch) group with at least ``MIN_CONFIGS`` measured
    configurations: the coefficients, the residual spread, the ranges fitted and the measured
    errors of predictions outside them."""
    out = []
    for (label, precision, pass_name, launch), g in rows_features(rows).groupby(GROUP):
        if len(g) < MIN_CONFIGS:
            continue
        coef = fit(g, label, precision)
        residual = np.log(g["E"] / predict_step(coef, g))
        model_err, batch_err = held_out_misses(g, label, precision)
        out.append(
            {
                "gpu_label": label,
                "precision": precision,
                "pass": pass_name,
                "launch": launch,
                **coef,
                "configs": len(g),
                "residual_sd": float(np.sqrt((residual**2).sum() / (len(g) - len(TIME)))),
                "dof": len(g) - len(TIME),
                "models": ",".join(sorted({model_name(_spec(k)) for k in g["model_key"]})),
                "cards": int(g["gpu_uuid"].nunique()),
                "batch_size_min": int(g["batch_size"].min()),
                "batch_size_max": int(g["batch_size"].max()),
                "context_len_min": int(g["context_len"].min()),
                "context_len_max": int(g["context_len"].max()),
                "model_extrapolation_err_pct": model_err,
                "extrapolation_err_pct": batch_err,
            }
        )
    return pd.DataFrame(out)


def outside(group, w: dict, context_len: int) -> list[str]:
    """How a serving workload lies outside its group's fitted range (empty: inside)."""
    out = []
    models = str(group["models"]).split(",")
    if model_name(w["model"]) not in models:
        out.append(
            f"model {model_name(w['model'])} not calibrated (calibrated: {', '.join(models)})"
        )
    lo, hi = group["batch_size_min"], group["batch_size_max"]
    if not lo <= w["batch_size"] <= hi:
        out.append(f"batch_size {w['batch_size']} outside the calibrated {lo}-{hi}")
    lo, hi = group["context_len_min"], group["context_len_max"]
    if not lo <= context_len <= hi:
        out.append(f"context {context_len} outside the calibrated {lo}-{hi}")
    return out


def predict(group, x: dict, w: dict, card_sd: float = 0.0) -> dict:
    """Energy per step with its 95 % interval and what it is (see the module), or
    ``{"status": why}`` where an extrapolation has no measured error to widen it by, or for a
    mixture of experts (a step reads the weights of the experts its tokens are routed to; the
    fit, of dense models, books every weight as read)."""
    if x.get("experts"):
        return {"status": "a mixture of experts, which the serving model has no rows of"}
    e = float(predict_step(group, x))
    half = stats.t.ppf(0.975, group["dof"]) * math.hypot(group["residual_sd"], card_sd)
    lo, hi = e * math.exp(-half), e * math.exp(half)
    basis = "serving model: t = a B + k K + c F, E = P_idle t + e_B B + e_F F"
    interval = "95 % prediction interval from the fit's relative residuals"
    off = outside(group, w, x["context_len"])
    for what, key, text in (
        ("model ", "model_extrapolation_err_pct", "leave-one-model-out"),
        ("batch_size ", "extrapolation_err_pct", "leave-one-batch-out"),
        # no other context was measured: the KV cache's bytes vary with batch as with context
        ("context ", "extrapolation_err_pct", "leave-one-batch-out (for the context)"),
    ):
        if not any(o.startswith(what) for o in off):
            continue
        widen = group[key]
        if not math.isfinite(widen):
            return {"status": f"extrapolated ({'; '.join(off)}) with no measured {text} error"}
        lo, hi = lo / (1 + widen / 100), hi * (1 + widen / 100)
        interval += f", widened by {widen:.1f} % (the largest {text} miss)"
    if off:
        basis = f"extrapolated: {basis}; {'; '.join(off)}"
    return {"basis": basis, "interval": interval, "step": e, "lo": lo, "hi": hi}


def group_of(table: pd.DataFrame | None, w: dict, label: str):
    """The serving calibration group of workload ``w``: its GPU, precision, pass and launch
    (``w["launch"]``, else the group whose batch sizes hold ``w``'s, else the nearest); None
    where there is none, or why the launch asked for was not calibrated (a string)."""
    if table is None or table.empty:
        return None
    match = table[
        (table["gpu_label"] == label)
        & (table["precision"] == w["precision"])
        & (table["pass"] == w["pass"])
    ]
    if w.get("launch"):
        if not (match["launch"] == w["launch"]).any():
            return (
                f"no serving calibration with launch {w['launch']} for ({label}, "
                f"{w['precision']}, {w['pass']})"
            )
        match = match[match["launch"] == w["launch"]]
    if match.empty:
        return None
    b = w["batch_size"]
    distance = np.maximum(match["batch_size_min"] - b, 0) + np.maximum(
        b - match["batch_size_max"], 0
    )
    return match.iloc[int(np.argmin(distance.to_numpy()))]


def step_energy(w: dict, label: str, table, rows=None) -> tuple[dict, dict]:
    """(the features of one step of serving workload ``w``, its energy: the measured ``rows``
    (``results/merged/inference.parquet``) of exactly this configuration where there are some,
    launched as its group is, else ``predict``'s answer; ``{}`` where no group is calibrated,
    or ``{"status": why}``), as a training workload's (:mod:`.step_energy`)."""
    x = features(w["model"], w["batch_size"], w["prompt_len"], w["output_len"], w["pass"])
    group = group_of(table, w, label)
    if group is None:
        return x, {}
    if isinstance(group, str):
        return x, {"status": group}
    measured = step_energy_.measured_serving(rows, {**w, "launch": group["launch"]}, label)
    if measured is not None:
        return x, {**measured, "launch": group["launch"]}
    e = predict(group, x, w)
    if "status" not in e:
        e["launch"] = group["launch"]
        e["interval"] += f"; {int(group['cards'])} card(s) measured, their spread in the residuals"
    return x, e
