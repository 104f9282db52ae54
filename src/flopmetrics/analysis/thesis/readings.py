"""Baseline records read every way the thesis read them, side by side.

For each baseline row: the two efficiency conventions (``flops_sum / energy_mean``, the profiling
script's: one batch over one window; ``flops_sum / energy_sum``, the analysis notebook's: one
batch over all windows together), the precision that ran (bf16) and the one in the file name, and
for ``l40`` files the L40 and the L40S the notebook called them. Each reading gets its efficiency,
the implied mean power (the same for all: one window's energy over its time) and the physics
verdicts; the thesis's own table (``gpu_efficiency_combined.csv``, GFLOPs/J) says which
convention it used.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import names, physics

CONVENTIONS = {
    "energy_mean": "flops_sum / energy_mean (profiling script)",
    "energy_sum": "flops_sum / energy_sum (analysis notebook)",
}


def table_values(directory: Path) -> dict[tuple[str, str, str], float]:
    """(GPU as the table names it, precision, pass) -> FLOPs/J from every
    ``gpu_efficiency_combined.csv`` under ``directory`` (the table is in GFLOPs/J)."""
    out = {}
    for path in sorted(Path(directory).rglob("gpu_efficiency_combined.csv")):
        for rec in pd.read_csv(path).to_dict("records"):
            for col, value in rec.items():
                parts = col.split("_")
                if len(parts) == 3 and parts[2] == "Value":
                    out[(rec["GPU"], parts[0].lower(), parts[1].lower())] = value * 1e9
    return out


def readings(rows: pd.DataFrame, directory: Path, table: dict | None = None) -> pd.DataFrame:
    base = rows[rows["protocol"] == "baseline"]
    published = table_values(directory)
    out = []
    for r in base.to_dict("records"):
        gpus = [r["gpu_name"]] + (
            [names.NOTEBOOK_NAMES[r["gpu_name"]]] if r["gpu_name"] in names.NOTEBOOK_NAMES else []
        )
        shown = published.get((names.TABLE_NAMES[r["gpu_name"]], r["precision_file"], r["pass"]))
        for convention, label in CONVENTIONS.items():
            energy = r["energy_j_per_iter"] if convention == "energy_mean" else r["energy_j_sum"]
            flops_per_j = r["flops"] / energy
            matches = shown is not None and abs(flops_per_j - shown) <= 1e-6 * shown
            for precision in dict.fromkeys([r["precision"], r["precision_file"]]):
                for gpu in gpus:
                    v = physics.judge(
                        gpu, precision, flops_per_j, r["flops_per_s"], r["power_mean_w"], table
                    )
                    out.append(
                        {
                            "source_file": r["source_file"],
                            "gpu_name": r["gpu_name"],
                            "pass": r["pass"],
                            "precision_file": r["precision_file"],
                            "convention": label,
                            "precision_read": precision,
                            "gpu_read": gpu,
                            "tflops_per_j": flops_per_j / 1e12,
                            "power_mean_w": r["power_mean_w"],
                            "max_tflops_per_j": v["max_flops_per_j"] / 1e12,
                            "impossible_every_variant": v["impossible_every_variant"],
                            "impossible_consistent_variant": v["impossible_consistent_variant"],
                            "power_consistent": bool(v["variants_power_consistent"]),
                            "primary": (
                                convention == "energy_mean"
                                and precision == r["precision"]
                                and gpu == r["gpu_name"]
                            ),
                            "thesis_table_tflops_per_j": None if shown is None else shown / 1e12,
                            "used_by_thesis_table": matches
                            and gpu == names.NOTEBOOK_NAMES.get(r["gpu_name"], r["gpu_name"])
                            and precision == r["precision_file"],
                            "verdict": v["verdict"],
                        }
                    )
    return pd.DataFrame(out)
