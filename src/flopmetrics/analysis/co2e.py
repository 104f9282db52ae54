"""From FLOPs to energy and CO2e: ``E = F / EE``; ``CO2e = kWh * PUE * grid intensity``."""

from __future__ import annotations

import math

import pandas as pd

from ..flops.model import pass_flops
from ..workloads.models import resolve

J_PER_KWH = 3.6e6


def workload_flops(model, batch_size: int, seq_len: int, pass_name: str) -> float:
    """FLOPs of one step of a declared workload: any Hugging Face causal LM, counted on the meta
    device as a measured job counts its headline FLOPs (full attention, AdamW per parameter)."""
    _, fields = resolve(model)
    table = pass_flops(fields, batch_size, seq_len)
    if pass_name not in table:
        raise ValueError(f"no FLOP count for pass {pass_name!r}; expected one of {sorted(table)}")
    return float(table[pass_name])


def gpu_label(gpu: str) -> str:
    """The datasheet label of a GPU label or variant key (``h100_sxm`` -> ``h100``)."""
    from ..energy import datasheet

    return datasheet.table()[gpu].label if gpu in datasheet.table() else gpu


def datasheet_limit(label: str, precision: str) -> float:
    """The most FLOPs per Joule any datasheet variant of ``label`` allows in ``precision`` (peak /
    TDP): FLOPs divided by it is a lower bound on energy."""
    from ..energy import datasheet

    return datasheet.most_lenient(label, precision).max_flops_per_joule(precision)


def estimate(workloads: list[dict], calibration: pd.DataFrame, pue: float, intensity_g_per_kwh: float) -> pd.DataFrame:
    """One row per declared workload: FLOPs, energy (with EE interval), kWh, kg CO2e."""
    rows = []
    for w in workloads:
        label = gpu_label(w["gpu"])  # a variant key (h100_sxm) uses its label's calibration (h100)
        match = calibration[(calibration["gpu_label"] == label) & (calibration["precision"] == w["precision"])
                            & (calibration["pass"] == w["pass"])]
        steps = w["tokens"] / (w["batch_size"] * w["seq_len"])
        flops = steps * workload_flops(w["model"], w["batch_size"], w["seq_len"], w["pass"])
        row = {**{k: w[k] for k in ("name", "model", "gpu", "precision", "pass", "tokens", "batch_size", "seq_len")},
               "steps": steps, "flops": flops, "pue": pue, "grid_intensity_g_per_kwh": intensity_g_per_kwh}
        try:
            row["energy_j_datasheet_bound"] = flops / datasheet_limit(label, w["precision"])
        except KeyError:  # a GPU the datasheet does not know (a CPU): no bound, not a failure
            row["energy_j_datasheet_bound"] = math.nan
        if match.empty:
            row.update(status=f"no measured calibration for ({w['gpu']}, {w['precision']}, {w['pass']}): "
                              "only the datasheet bound, a lower bound on energy",
                       ee_flops_per_j=math.nan, energy_j=math.nan, energy_j_lo=math.nan, energy_j_hi=math.nan)
        else:
            c = match.iloc[0]
            row.update(status="ok", ee_flops_per_j=c["ee_flops_per_j"], energy_j=flops / c["ee_flops_per_j"],
                       energy_j_lo=flops / c["ee_hi"], energy_j_hi=flops / c["ee_lo"])
        for suffix in ("", "_lo", "_hi", "_datasheet_bound"):
            kwh = row[f"energy_j{suffix}"] / J_PER_KWH
            row[f"kwh{suffix}"] = kwh
            row[f"kg_co2e{suffix}"] = kwh * pue * intensity_g_per_kwh / 1000
        rows.append(row)
    columns = ["name", "model", "gpu", "precision", "pass", "tokens", "batch_size", "seq_len", "steps", "flops",
               "pue", "grid_intensity_g_per_kwh", "status", "ee_flops_per_j", "energy_j", "energy_j_lo",
               "energy_j_hi", "kwh", "kg_co2e", "kwh_lo", "kg_co2e_lo", "kwh_hi", "kg_co2e_hi",
               "energy_j_datasheet_bound", "kwh_datasheet_bound", "kg_co2e_datasheet_bound"]
    return pd.DataFrame(rows, columns=columns)
