"""How well simple physical models of serving energy predict configurations outside their fit
(groundwork for issue 33's estimates): each fitted on the committed serving rows of one model
(or of some batch sizes) and judged on the others.

Two models per pass, fitted by non-negative least squares on relative error (scipy's ``nnls``,
rows weighted by 1/E):

- ``bytes+flops``: energy per iteration ``E = a B + b F`` (B: bytes moved, the weights and the
  KV cache of the positions attended; F: FLOPs), J per byte and J per FLOP;
- ``time+dynamic``: time ``t = alpha B + beta L + gamma F`` (L: the model's layers, a fixed cost
  per layer and step), energy ``E = P_idle t + a B + b F`` (the idle power the row measured).

    python benchmarks/serving_fit.py [--rows resources/reference/h200_inference]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import nnls

from flopmetrics.flops.models import resolve, summary


def load(folder: Path) -> pd.DataFrame:
    rows = pd.concat(pd.read_parquet(f) for f in sorted(folder.glob("raw/**/*.parquet")))
    rows = rows[rows["status"].eq("ok") & rows["gates_passed"]].copy()
    rows["E"], rows["t"] = rows["energy_j_per_iter"], rows["time_per_iter_s"]
    rows["B"] = rows["bytes_per_token"] * rows["tokens"]
    rows["F"] = rows["flops"].astype(float)
    rows["L"] = [summary(resolve(m)[1])["layers"] for m in rows["model"]]
    rows["dynamic"] = rows["E"] - rows["idle_power_w"] * rows["t"]
    return rows


def fitted(rows: pd.DataFrame, columns: list[str], target: str) -> np.ndarray:
    """Non-negative coefficients of ``target`` on ``columns``, relative error minimized."""
    weight = 1 / rows[target].to_numpy()
    design = rows[columns].to_numpy() * weight[:, None]
    return nnls(design, rows[target].to_numpy() * weight)[0]


def predicted(train: pd.DataFrame, test: pd.DataFrame, model: str) -> np.ndarray:
    if model == "bytes+flops":
        return test[["B", "F"]].to_numpy() @ fitted(train, ["B", "F"], "E")
    t = test[["B", "L", "F"]].to_numpy() @ fitted(train, ["B", "L", "F"], "t")
    dynamic = test[["B", "F"]].to_numpy() @ fitted(train, ["B", "F"], "dynamic")
    return test["idle_power_w"].to_numpy() * t + dynamic


def splits(rows: pd.DataFrame):
    """(what is held out, training mask): each model in turn; the largest and smallest batch."""
    for model in sorted(rows["model"].unique()):
        yield f"model {model}", rows["model"] != model
    for batch in (rows["batch_size"].max(), rows["batch_size"].min()):
        yield f"batch {batch}", rows["batch_size"] != batch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=Path, default=Path("resources/reference/h200_inference"))
    rows = load(ap.parse_args().rows)
    print("| pass | held out | model | misses (%), per configuration held out | largest |")
    print("|---|---|---|---|---|")
    for name, group in rows.groupby("pass", sort=False):
        for held, train in splits(group):
            test = group[~train].sort_values(["model", "batch_size"])
            for model in ("bytes+flops", "time+dynamic"):
                miss = 100 * (predicted(group[train], test, model) / test["E"].to_numpy() - 1)
                listed = ", ".join(f"{m:+.1f}" for m in miss)
                print(f"| {name} | {held} | {model} | {listed} | {np.abs(miss).max():.1f} |")


if __name__ == "__main__":
    main()
