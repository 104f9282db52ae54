"""From FLOPs to energy and CO2e: ``E = F / EE``; ``CO2e = kWh * PUE * grid intensity``."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from ..energy import datasheet
from ..flops.causal_lm import pass_flops
from ..flops.models import resolve
from .merge import with_single, without_ranks

J_PER_KWH = 3.6e6
# what kWh and CO2e count (NVML's board energy: the GPU, its memory and its board)
SCOPE = "GPU board energy only: host CPU, host memory, network and storage not measured"
NO_CARD_SPREAD = "another card of the same kind is not included"


def workload_flops(
    model, batch_size: int, seq_len: int, pass_name: str, precision: str = "bf16"
) -> float:
    """FLOPs of one step of a declared workload: any Hugging Face causal LM, counted on the meta
    device as a measured job counts its headline FLOPs (full attention, AdamW per parameter)."""
    _, fields = resolve(model)
    table = pass_flops(fields, batch_size, seq_len, precision)
    if pass_name not in table:
        raise ValueError(f"no FLOP count for pass {pass_name!r}; expected one of {sorted(table)}")
    return float(table[pass_name])


def gpu_label(gpu: str) -> str:
    """The datasheet label of a GPU label or variant key (``h100_sxm`` -> ``h100``)."""
    return datasheet.table()[gpu].label if gpu in datasheet.table() else gpu


MATCH = ("model", "batch_size", "seq_len", "precision", "pass", "world_size", "strategy")


def measured_step(
    rows: pd.DataFrame | None, w: dict, label: str
) -> tuple[float, float, int] | None:
    """(energy per step, its SEM, the fewest windows behind a row) of gated measured rows of
    exactly this configuration, or None. A multi-GPU workload's ``batch_size`` is per rank: a
    node row's ``rank_batch_size``."""
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
    for key in MATCH:
        hit = hit[hit[key] == w[key]]
    if hit.empty:
        return None
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


def _energy(w: dict, label: str, flops_step: float, calibration: pd.DataFrame, rows) -> dict:
    """Energy per step with its interval, and where it came from (``basis``)."""
    measured = measured_step(rows, w, label)
    if measured is not None and math.isfinite(measured[1]):
        e, sem, windows = measured
        half = stats.t.ppf(0.975, max(windows - 1, 1)) * sem
        return {
            "basis": "measured: this configuration's rows",
            "interval": f"95 % t-interval of the mean of {windows} windows ({NO_CARD_SPREAD})",
            "step": e,
            "lo": e - half,
            "hi": e + half,
        }
    calibration = with_single(calibration)
    match = calibration[
        (calibration["gpu_label"] == label)
        & (calibration["precision"] == w["precision"])
        & (calibration["pass"] == w["pass"])
        & (calibration["world_size"] == w["world_size"])
        & (calibration["strategy"] == w["strategy"])
    ]
    if match.empty:
        return {}
    c = match.iloc[0]
    two = [
        c.get(k, math.nan)
        for k in (
            "ee_dyn_flops_per_j",
            "p_static_w",
            "time_s_per_flop",
            "time_s_per_step",
            "loo_err_timed_min",
            "loo_err_timed_max",
        )
    ]
    if all(isinstance(v, (int, float)) and math.isfinite(v) for v in two):
        ee_dyn, p_static, a, b, err_min, err_max = two
        e = flops_step / ee_dyn + p_static * (a * flops_step + b)
        # the range of out-of-sample errors this model made on the group's measured configurations
        return {
            "basis": "two-term model E = F/EE_dyn + P_static t, t = a F + b",
            "interval": "range of the group's leave-one-configuration-out errors, not a "
            f"probability interval ({NO_CARD_SPREAD})",
            "step": e,
            "lo": e / (1 + err_max),
            "hi": e / (1 + err_min),
        }
    return {
        "basis": "one-term model E = F/EE",
        "interval": "95 % percentile bootstrap of EE over the group's configurations "
        f"({NO_CARD_SPREAD})",
        "step": flops_step / c["ee_flops_per_j"],
        "lo": flops_step / c["ee_hi"],
        "hi": flops_step / c["ee_lo"],
    }


def estimate(
    workloads: list[dict],
    calibration: pd.DataFrame,
    pue: float,
    intensity_g_per_kwh: float,
    measured: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per declared workload: FLOPs, energy with its interval, kWh, kg CO2e, and the
    ``basis`` of the energy: the measured rows of that exact configuration (``measured``: energy
    rows with gates), else the group's two-term model, else ``E = F/EE``; with no calibration,
    only the datasheet lower bound."""
    rows = []
    for w in workloads:
        w = {"world_size": 1, "strategy": "none", **w}
        label = gpu_label(w["target"])  # a variant key (h100_sxm) uses its label's calibration
        # a node step: every rank runs batch_size sequences (weak scaling), so world_size times the
        # work
        n = w["world_size"]
        steps = w["tokens"] / (w["batch_size"] * w["seq_len"] * n)
        step_flops = n * workload_flops(
            w["model"], w["batch_size"], w["seq_len"], w["pass"], w["precision"]
        )
        flops = steps * step_flops
        row = {
            **{
                k: w[k]
                for k in (
                    "name",
                    "model",
                    "target",
                    "world_size",
                    "strategy",
                    "precision",
                    "pass",
                    "tokens",
                    "batch_size",
                    "seq_len",
                )
            },
            "steps": steps,
            "flops": flops,
            "pue": pue,
            "grid_intensity_g_per_kwh": intensity_g_per_kwh,
        }
        try:
            # the variant allowing the most FLOPs per Joule (peak / TDP): a bound on every one
            bound = datasheet.most_lenient(label, w["precision"])
            row["energy_j_datasheet_bound"] = flops / bound.max_flops_per_joule(w["precision"])
            row["datasheet_variant"] = bound.key
        except KeyError:  # a GPU the datasheet does not know (a CPU): no bound, not a failure
            row["energy_j_datasheet_bound"], row["datasheet_variant"] = math.nan, ""
        e = _energy(w, label, step_flops, calibration, measured)
        if not e:
            where = (
                w["target"]
                if n == 1 and w["strategy"] == "none"
                else f"{n} x {w['target']} {w['strategy']}"
            )
            row.update(
                status=f"no measured calibration for ({where}, {w['precision']}, {w['pass']}): "
                "only the datasheet bound, a lower bound on energy",
                basis="",
                interval="",
                energy_j=math.nan,
                energy_j_lo=math.nan,
                energy_j_hi=math.nan,
            )
        else:
            row.update(
                status="ok",
                basis=e["basis"],
                interval=e["interval"],
                energy_j=steps * e["step"],
                energy_j_lo=steps * e["lo"],
                energy_j_hi=steps * e["hi"],
            )
        for suffix in ("", "_lo", "_hi", "_datasheet_bound"):
            kwh = row[f"energy_j{suffix}"] / J_PER_KWH
            row[f"kwh{suffix}"] = kwh
            row[f"kg_co2e{suffix}"] = kwh * pue * intensity_g_per_kwh / 1000
        row["scope"] = SCOPE
        rows.append(row)
    columns = [
        "name",
        "model",
        "target",
        "world_size",
        "strategy",
        "precision",
        "pass",
        "tokens",
        "batch_size",
        "seq_len",
        "steps",
        "flops",
        "pue",
        "grid_intensity_g_per_kwh",
        "status",
        "basis",
        "interval",
        "scope",
        "energy_j",
        "energy_j_lo",
        "energy_j_hi",
        "kwh",
        "kg_co2e",
        "kwh_lo",
        "kg_co2e_lo",
        "kwh_hi",
        "kg_co2e_hi",
        "energy_j_datasheet_bound",
        "kwh_datasheet_bound",
        "kg_co2e_datasheet_bound",
        "datasheet_variant",
    ]
    return pd.DataFrame(rows, columns=columns)
