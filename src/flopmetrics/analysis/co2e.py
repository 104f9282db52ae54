"""From FLOPs to energy and CO2e of declared workloads: energy per step from
:mod:`flopmetrics.analysis.step_energy`; ``CO2e = kWh * PUE * grid intensity``."""

from __future__ import annotations

import math

import pandas as pd

from ..contracts.vocabulary import SERVING_PASSES
from ..energy import datasheet
from ..flops.causal_lm import pass_flops
from ..flops.models import resolve
from . import serving, step_energy, steptime_estimate

J_PER_KWH = 3.6e6
# the sizes one kind of workload has and the other has not (a serving step has no seq_len)
SIZES = {"seq_len": None, "prompt_len": None, "output_len": None}
# what kWh and CO2e count (NVML's board energy: the GPU, its memory and its board)
SCOPE = "GPU board energy only: host CPU, host memory, network and storage not measured"


def workload_flops(model, batch_size: int, seq_len: int, pass_name: str) -> float:
    """FLOPs of one step of a declared workload: any Hugging Face causal LM, counted on the meta
    device as a measured job counts its headline FLOPs (full attention, AdamW per parameter; the
    same in every precision)."""
    _, fields = resolve(model)
    table = pass_flops(fields, batch_size, seq_len)
    if pass_name not in table:
        raise ValueError(f"no FLOP count for pass {pass_name!r}; expected one of {sorted(table)}")
    return float(table[pass_name])


def gpu_label(gpu: str) -> str:
    """The datasheet label of a GPU label or variant key (``h100_sxm`` -> ``h100``)."""
    return datasheet.table()[gpu].label if gpu in datasheet.table() else gpu


def _either(refused: dict, other: dict) -> dict:
    """The step-time model's answer where the calibration gave none; both refusals where
    neither can answer."""
    if not other or "status" not in other or not refused:
        return other or refused
    return {"status": f"{refused['status']}; {other['status']}"}


def estimate(  # noqa: PLR0913 (four tables, the PUE and the grid: one call of the pipeline)
    workloads: list[dict],
    calibration: pd.DataFrame,
    pue: float,
    intensity_g_per_kwh: float,
    measured: pd.DataFrame | None = None,
    grid_source: str = "",
    serving_table: pd.DataFrame | None = None,
    steptime_table: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per declared workload: FLOPs, energy with its interval, kWh, kg CO2e, and the
    ``basis`` of the energy: the measured rows of that exact configuration (``measured``: energy
    rows with gates), else the group's two-term model, else ``E = F/EE``; with no calibration,
    only the datasheet lower bound. ``grid_source`` says where the intensity comes from (its
    zone, source and year), on every row. A serving workload (pass ``prefill`` or ``decode``,
    with ``prompt_len`` and ``output_len``; ``tokens`` the prompts' or the generated ones) is
    estimated from ``serving_table`` (:mod:`flopmetrics.analysis.serving`). A training workload
    the calibration cannot answer for (another model with no measured error of such predictions,
    or no group) is estimated from ``steptime_table`` (:mod:`flopmetrics.analysis.steptime`)
    where it has a fit for the GPU and precision."""
    rows = []
    for w in workloads:
        w = {"world_size": 1, "strategy": "none", "launch": None, **SIZES, **w}
        label = gpu_label(w["target"])  # a variant key (h100_sxm) uses its label's calibration
        # a node step: every rank runs batch_size sequences (weak scaling), so world_size times the
        # work
        n = w["world_size"]
        if w["pass"] in SERVING_PASSES:  # tokens: the prompts' (prefill) or generated (decode)
            x, e = serving.step_energy(w, label, serving_table, measured)
            steps, step_flops = w["tokens"] / x["tokens"], x["F"]
        else:
            steps = w["tokens"] / (w["batch_size"] * w["seq_len"] * n)
            step_flops = n * workload_flops(w["model"], w["batch_size"], w["seq_len"], w["pass"])
            e = step_energy.energy(w, label, step_flops, calibration, measured)
            if not e or "status" in e:
                e = _either(e, steptime_estimate.step_energy(w, label, steptime_table))
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
                    "launch",
                    "precision",
                    "pass",
                    "tokens",
                    "batch_size",
                    "seq_len",
                    "prompt_len",
                    "output_len",
                )
            },
            "steps": steps,
            "flops": flops,
            "pue": pue,
            "grid_intensity_g_per_kwh": intensity_g_per_kwh,
            "grid_intensity_source": grid_source,
        }
        try:
            # the variant allowing the most FLOPs per Joule (peak / TDP): a bound on every one
            bound = datasheet.most_lenient(label, w["precision"])
            row["energy_j_datasheet_bound"] = flops / bound.max_flops_per_joule(w["precision"])
            row["datasheet_variant"] = bound.key
        except KeyError:  # a GPU the datasheet does not know (a CPU): no bound, not a failure
            row["energy_j_datasheet_bound"], row["datasheet_variant"] = math.nan, ""
        if "status" in e:
            row.update(
                status=f"{e['status']}: only the datasheet bound, a lower bound on energy",
                basis="",
                interval="",
                energy_j=math.nan,
                energy_j_lo=math.nan,
                energy_j_hi=math.nan,
            )
        elif not e:
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
                launch=e.get("launch") or w["launch"] or "",
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
        for suffix in ("", "_lo", "_hi"):
            row[f"j_per_token{suffix}"] = row[f"energy_j{suffix}"] / w["tokens"]
            row[f"kwh_per_million_tokens{suffix}"] = row[f"kwh{suffix}"] * 1e6 / w["tokens"]
        row["scope"] = SCOPE
        rows.append(row)
    columns = [
        "name",
        "model",
        "target",
        "world_size",
        "strategy",
        "launch",
        "precision",
        "pass",
        "tokens",
        "batch_size",
        "seq_len",
        "prompt_len",
        "output_len",
        "steps",
        "flops",
        "pue",
        "grid_intensity_g_per_kwh",
        "grid_intensity_source",
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
        "j_per_token",
        "j_per_token_lo",
        "j_per_token_hi",
        "kwh_per_million_tokens",
        "kwh_per_million_tokens_lo",
        "kwh_per_million_tokens_hi",
        "energy_j_datasheet_bound",
        "kwh_datasheet_bound",
        "kg_co2e_datasheet_bound",
        "datasheet_variant",
    ]
    return pd.DataFrame(rows, columns=columns)
