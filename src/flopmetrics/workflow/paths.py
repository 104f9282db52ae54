"""Output path templates of the profiling rules, written once: the rules use them as outputs and
the sweeps fill them in to list every job's files."""

from __future__ import annotations

RAW = {
    "mlp": "results/raw/mlp/{target}/{precision}/n{n}_d{d}_m{m}.parquet",
    "llm": "results/raw/llm/{target}/{model}/{precision}/b{batch_size}_s{seq_len}.parquet",
    "matmul": "results/raw/matmul/{target}/{precision}/n{size}.parquet",
}
TRACE = {k: v.replace("results/raw/", "results/traces/", 1) for k, v in RAW.items()}
LOG = {k: v.replace("results/raw/", "logs/", 1).removesuffix(".parquet") + ".log" for k, v in RAW.items()}

MERGED_MLP = "results/merged/mlp.parquet"
MERGED_ENERGY = "results/merged/energy.parquet"
MERGED_THESIS = "results/merged/thesis.parquet"
CALIBRATION = "results/calibration/calibration.parquet"
PREDICTIONS = "results/calibration/predictions.parquet"
CO2E = "results/co2e/co2e.parquet"
