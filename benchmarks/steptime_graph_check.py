"""Probe: does the step-time model's GPU term price a step replayed from a CUDA graph?

    python benchmarks/steptime_graph_check.py [--precision bf16] [--label h200]
    python benchmarks/steptime_graph_check.py --config config/heldout22_h200.yaml \
        --name pythia-70m --sizes 2x288 6x288 2x1152 6x1152 > predictions.txt

A replayed step has no host cost, so the packaged model with its host costs set to zero should
predict it, if the GPU's own time is priced right. Without ``--config``: every committed
reference row of the GPU label and precision with ``launch == cuda_graph`` (forward or train
step), predicted from the packaged table with and without its host costs, beside the eager rows
of the same configuration. With it: the same two predictions, as CSV, for a model of that
config's ``llm.models`` at each batch x length, to commit before its replayed steps are measured.
Records each step's operations with the installed transformers.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd
import transformers
import yaml

from flopmetrics.analysis import steptime
from flopmetrics.contracts import packaged
from flopmetrics.flops.models import resolve
from flopmetrics.flops.opstream import step_ops

KEYS = ["model", "batch_size", "seq_len", "pass"]
PASSES = ("forward", "train_step")


def rows(label: str, precision: str) -> pd.DataFrame:
    paths = Path("resources/reference").glob(f"**/raw/llm/{label}/**/*.parquet")
    t = pd.concat(pd.read_parquet(p) for p in paths)
    keep = (t["precision"] == precision) & (t["status"] == "ok")
    return t[keep & t["pass"].isin(PASSES)]


def priced(c: dict):
    """Each step's (energy J, time s, bound) by the table row ``c`` as packaged (eager) and with
    its host costs set to zero (replayed)."""
    # as steptime.predict reads a table row (NaN where an older table lacks a parameter)
    eager = {k: c.get(k, math.nan) for k in steptime.PARAMETERS}
    eager[steptime.ATTENTION_TABLE] = steptime.table_of(c)
    replayed = eager | {f"host_{name}_s": 0.0 for _, name in steptime.HOSTS}

    def price(ops: dict, graph: bool) -> tuple[float, float, str]:
        return steptime.step(replayed if graph else eager, ops, c["idle_w"], c["limit_w"])

    return price


def check(c: dict, label: str, precision: str) -> None:
    price = priced(c)
    t = rows(label, precision)
    print(f"tau {1e6 * c['tau_s']:.2f} us per kernel (fitted on eager rows)")
    for key, graph in t[t["launch"] == "cuda_graph"].groupby(KEYS):
        model, batch, seq, pass_name = key
        ops = step_ops(resolve(model)[1], int(batch), int(seq), precision, pass_name)
        eager = t[(t[KEYS] == pd.Series(dict(zip(KEYS, key, strict=True)))).all(axis=1)]
        eager = eager[eager["launch"] == "eager"]
        for launch, measured in (("cuda_graph", graph), ("eager", eager)):
            if measured.empty:
                continue
            e, s, bound = price(ops, launch == "cuda_graph")
            joules = measured["energy_j_per_iter"].median()
            print(
                f"{model} {batch} x {seq} {pass_name} {launch}: {len(measured)} rows, "
                f"{joules:.3f} J in {1e3 * measured['time_per_iter_s'].median():.2f} ms; "
                f"predicted {e:.3f} J ({100 * (e / joules - 1):+.1f} %) in {1e3 * s:.2f} ms, "
                f"bound by {bound}; {len(ops['cls'])} kernels"
            )


def preregister(c: dict, config: Path, name: str, sizes: list[str], precision: str) -> None:
    models = yaml.safe_load(config.read_text())["llm"]["models"]
    model = next(m for m in models if isinstance(m, dict) and m.get("name") == name)
    price = priced(c)
    print(
        f"# {name} ({config}) {precision} on an {c['gpu_label'].upper()}, replayed from a CUDA "
        "graph: the packaged step-time table with its host costs set to 0, written before any "
        f"replayed step of it was measured (transformers {transformers.__version__}); eager: the "
        "table as packaged"
    )
    print(
        "batch,seq_len,pass,kernels,graph_energy_j,graph_time_ms,graph_bound,eager_energy_j,"
        "eager_time_ms,eager_bound"
    )
    for size in sizes:
        batch, seq = map(int, size.split("x"))
        for pass_name in PASSES:
            ops = step_ops(resolve(model)[1], batch, seq, precision, pass_name)
            cells = [batch, seq, pass_name, len(ops["cls"])]
            for graph in (True, False):
                e, s, bound = price(ops, graph)
                cells += [f"{e:.4f}", f"{1e3 * s:.3f}", bound]
            print(",".join(map(str, cells)))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--label", default="h200")
    ap.add_argument("--config", type=Path, help="predict a model of this config's llm.models")
    ap.add_argument("--name", help="with --config: the model's name there")
    ap.add_argument("--sizes", nargs="+", default=[], help="with --config: BATCHxLENGTH ...")
    args = ap.parse_args()
    table = pd.read_parquet(packaged.steptime_path())
    mine = table[(table["gpu_label"] == args.label) & (table["precision"] == args.precision)]
    c = mine.iloc[0].to_dict()
    if args.config is None:
        check(c, args.label, args.precision)
    else:
        preregister(c, args.config, args.name, args.sizes, args.precision)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
