"""Benchmark (issue 32): would step-time intervals per bound hold better than one for all steps?

The packaged step-time model predicts every held-out step (as ``flopmetrics estimate`` does,
without its held-out bound); each held-out set is then left out in turn, and the 95th
percentile of the misses on the other sets, pooled or apart for the bound the model predicts
(host's launching, GPU's work, power limit), is judged on the set left out: how many of its
steps fall inside, and how wide the intervals are.

    python benchmarks/steptime_bound_intervals.py --heldout DIR [DIR ...]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd

from flopmetrics.analysis import steptime, steptime_rows
from flopmetrics.contracts import packaged


def misses(folder: Path, table: pd.DataFrame) -> pd.DataFrame:
    """Each gated step below ``folder`` of a model the fit did not see: its miss and bound."""
    rows = steptime_rows.read_rows([folder])
    out = []
    for (label, precision), g in rows.groupby(["gpu_label", "precision"]):
        hit = table[(table["gpu_label"] == label) & (table["precision"] == precision)]
        if hit.empty:
            continue
        c = {**hit.iloc[0].to_dict(), "heldout_q95": math.nan}
        g = g[~g["model"].isin(c["models"].split(","))]
        for r in steptime_rows.rows_of(g, steptime_rows.ops_of):
            est = steptime.predict(c, r["ops"])
            if "status" in est:
                continue
            miss = abs(est["energy_j"] / r["energy_j"] - 1)
            out.append(
                {
                    "set": folder.name,
                    "precision": precision,
                    "bound": est["bound"],
                    "miss": miss,
                    "model": r["row"]["model"],
                }
            )
    return pd.DataFrame(out)


def judged(df: pd.DataFrame) -> pd.DataFrame:
    """Each set left out: coverage and mean half-width, pooled and per bound."""
    out = []
    for name, test in df.groupby("set", sort=False):
        train = df[df["set"] != name]
        pooled = steptime.q95(train["miss"].to_numpy())
        per = {b: steptime.q95(g["miss"].to_numpy()) for b, g in train.groupby("bound")}
        apart = test["bound"].map(per).fillna(pooled)
        out.append(
            {
                "left out": name,
                "steps": len(test),
                "pooled covers": int((test["miss"] <= pooled).sum()),
                "pooled width %": round(100 * pooled, 1),
                "per bound covers": int((test["miss"] <= apart).sum()),
                "per bound mean width %": round(100 * float(apart.mean()), 1),
            }
        )
    return pd.DataFrame(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--heldout", type=Path, nargs="+", required=True)
    args = ap.parse_args()
    table = pd.read_parquet(packaged.steptime_path())
    df = pd.concat([misses(d, table) for d in args.heldout], ignore_index=True)
    stats = df.groupby("bound")["miss"].agg(["count", "median", "max"])
    stats["q95"] = df.groupby("bound")["miss"].apply(lambda m: steptime.q95(m.to_numpy()))
    print(f"packaged step-time table from {packaged.provenance().get('steptime_git_revision')}")
    print((100 * stats.drop(columns="count")).round(1).assign(steps=stats["count"]).to_string())
    result = judged(df)
    print(result.to_string(index=False))
    total = result.sum(numeric_only=True)
    print(
        f"all: {int(total['steps'])} steps, pooled covers {int(total['pooled covers'])}, "
        f"per bound covers {int(total['per bound covers'])}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
