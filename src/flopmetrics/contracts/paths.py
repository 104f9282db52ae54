"""Where results go: the output path templates of the profiling rules and the merged tables,
written once; the rules use them as outputs and the sweeps fill them in to list every job's
files."""

from __future__ import annotations

import re

from .vocabulary import PRECISIONS, SCALINGS, STRATEGIES

# the wildcards' patterns, shared with the rules (workflow/rules/common.smk)
WILDCARDS = {
    "target": r"[a-z0-9_:]+",
    "precision": "|".join(PRECISIONS),
    "model": r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    "n": r"\d+",
    "d": r"\d+",
    "m": r"\d+",
    "batch_size": r"\d+",
    "seq_len": r"\d+",
    "size": r"\d+",
    "strategy": "|".join(STRATEGIES),
    "scaling": "|".join(SCALINGS),
    "world_size": r"\d+",
}

RAW = {
    "mlp": "results/raw/mlp/{target}/{precision}/n{n}_d{d}_m{m}.parquet",
    "llm": "results/raw/llm/{target}/{model}/{precision}/b{batch_size}_s{seq_len}.parquet",
    "matmul": "results/raw/matmul/{target}/{precision}/n{size}.parquet",
    # the node's rows of a job of N ranks on one node (its ranks' rows and windows: RANKS, WINDOWS)
    "distributed": "results/raw/distributed/{target}/{model}/{precision}/{strategy}_{scaling}_w{world_size}/"
    "b{batch_size}_s{seq_len}.parquet",
}
TRACE = {
    k: v.replace("results/raw/", "results/traces/", 1) for k, v in RAW.items()
}  # distributed: every rank's
RANKS = RAW["distributed"].replace("results/raw/", "results/ranks/", 1)
WINDOWS = RAW["distributed"].replace("results/raw/", "results/windows/", 1)
# one profiling job measures every size of one (target, precision), a causal LM's every precision
# and size of one (target, model): its wildcards and log
JOB_WILDCARDS = {
    "mlp": ("target", "precision"),
    "llm": ("target", "model"),
    "matmul": ("target", "precision"),
    "distributed": (
        "target",
        "model",
        "precision",
        "strategy",
        "scaling",
        "world_size",
        "batch_size",
        "seq_len",
    ),
}
LOG = {k: f"logs/{k}/" + "/".join("{%s}" % w for w in JOB_WILDCARDS[k]) + ".log" for k in RAW}
LOG["distributed"] = (
    RAW["distributed"].replace("results/raw/", "logs/", 1).replace(".parquet", ".log")
)

NCU = "results/ncu/{target}/{precision}.csv.gz"  # ncu's raw CSV; the capture's manifest beside it
NCU_MANIFEST = "results/ncu/{target}/{precision}.json"
NCU_LOG = "logs/ncu/{target}/{precision}.log"

MERGED_MLP = "results/merged/mlp.parquet"
MERGED_NCU = "results/merged/ncu.parquet"
NCU_GAP = "results/ncu/gap.parquet"
MERGED_ENERGY = "results/merged/energy.parquet"
MERGED_RANKS = "results/merged/ranks.parquet"
SCALING = "results/distributed/scaling.parquet"
SCALING_TABLE = "results/distributed/scaling.csv"
MERGED_THESIS = "results/merged/thesis.parquet"
THESIS_READINGS = "results/thesis/baseline_readings.parquet"
THESIS_AUDIT = "results/thesis/audit.parquet"
THESIS_AUDIT_TABLE = "results/thesis/audit.md"
THESIS_AUDIT_REPORT = "results/thesis/audit.html"
CALIBRATION = "results/calibration/calibration.parquet"
CALIBRATION_TABLE = "results/calibration/calibration.csv"
CO2E_TABLE = "results/co2e/co2e.csv"
THESIS_AUDIT_CSV = "results/thesis/audit.csv"
PREDICTIONS = "results/calibration/predictions.parquet"
CO2E = "results/co2e/co2e.parquet"


def pattern(template: str) -> re.Pattern:
    """A regular expression that reads a template's wildcard values back from a path."""
    out, pos = "", 0
    for m in re.finditer(r"\{(\w+)\}", template):
        out += re.escape(template[pos : m.start()]) + f"(?P<{m.group(1)}>{WILDCARDS[m.group(1)]})"
        pos = m.end()
    return re.compile(out + re.escape(template[pos:]) + "$")
