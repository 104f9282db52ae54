"""Probe: does the step-time model's GPU term price a step replayed from a CUDA graph?

    python benchmarks/steptime_graph_check.py [--precision bf16] [--label h200]

A replayed step has no host cost, so the packaged model with its host costs set to zero should
predict it, if the GPU's own time is priced right. Every committed reference row of the GPU label
and precision with ``launch == cuda_graph`` (forward or train step), predicted from the packaged
table with and without its host costs, beside the eager rows of the same configuration. Reads
committed rows only; records each step's operations with the installed transformers.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from flopmetrics.analysis import steptime
from flopmetrics.contracts import packaged
from flopmetrics.flops.models import resolve
from flopmetrics.flops.opstream import step_ops

KEYS = ["model", "batch_size", "seq_len", "pass"]


def rows(label: str, precision: str) -> pd.DataFrame:
    paths = Path("resources/reference").glob(f"**/raw/llm/{label}/**/*.parquet")
    t = pd.concat(pd.read_parquet(p) for p in paths)
    keep = (t["precision"] == precision) & (t["status"] == "ok")
    return t[keep & t["pass"].isin(["forward", "train_step"])]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--label", default="h200")
    args = ap.parse_args()
    table = pd.read_parquet(packaged.steptime_path())
    mine = table[(table["gpu_label"] == args.label) & (table["precision"] == args.precision)]
    c = mine.iloc[0].to_dict()
    p = {k: c.get(k) for k in steptime.PARAMETERS} | {
        steptime.ATTENTION_TABLE: steptime.table_of(c)
    }
    no_host = p | {f"host_{name}_s": 0.0 for _, name in steptime.HOSTS}
    t = rows(args.label, args.precision)
    print(f"tau {1e6 * p['tau_s']:.2f} us per kernel (fitted on eager rows)")
    for key, graph in t[t["launch"] == "cuda_graph"].groupby(KEYS):
        model, batch, seq, pass_name = key
        ops = step_ops(resolve(model)[1], int(batch), int(seq), args.precision, pass_name)
        eager = t[(t[KEYS] == pd.Series(dict(zip(KEYS, key, strict=True)))).all(axis=1)]
        eager = eager[eager["launch"] == "eager"]
        for launch, measured, params in (("cuda_graph", graph, no_host), ("eager", eager, p)):
            if measured.empty:
                continue
            e, s, bound = steptime.step(params, ops, c["idle_w"], c["limit_w"])
            joules = measured["energy_j_per_iter"].median()
            print(
                f"{model} {batch} x {seq} {pass_name} {launch}: {len(measured)} rows, "
                f"{joules:.3f} J in {1e3 * measured['time_per_iter_s'].median():.2f} ms; "
                f"predicted {e:.3f} J ({100 * (e / joules - 1):+.1f} %) in {1e3 * s:.2f} ms, "
                f"bound by {bound}; {len(ops['cls'])} kernels"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
