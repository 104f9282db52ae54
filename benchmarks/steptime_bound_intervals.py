"""Benchmark (issue 32): do the step-time model's held-out intervals hold on a set they did not
see, for every bound?

The packaged step-time model predicts every held-out step (as ``flopmetrics estimate`` does,
without its held-out bound); each held-out set is then left out in turn, and the 95th
percentile of the misses on the other sets is judged on the set left out: pooled over all
steps (``pooled``), apart for the bound the model predicts (host's launching, GPU's work,
power limit; ``apart``), or the larger of the two (``larger``, as shipped): how many of its
steps fall inside, per set and per bound, and how wide the intervals are.

    python benchmarks/steptime_bound_intervals.py --heldout DIR [DIR ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from flopmetrics.analysis import steptime_misses, steptime_rows
from flopmetrics.contracts import packaged


def misses(folder: Path, table: pd.DataFrame) -> pd.DataFrame:
    """Each gated step below ``folder`` of a model the fit did not see: its miss and bound."""
    rows = steptime_rows.read_rows([folder])
    out = []
    for (label, precision), g in rows.groupby(["gpu_label", "precision"]):
        hit = table[(table["gpu_label"] == label) & (table["precision"] == precision)]
        if hit.empty:
            continue
        c = hit.iloc[0].to_dict()
        g = g[~g["model"].isin(c["models"].split(","))]
        judged = steptime_misses.heldout_misses(c, steptime_rows.rows_of(g, steptime_rows.ops_of))
        out.append(judged.assign(set=folder.name, precision=precision))
    return pd.concat(out, ignore_index=True)


def intervals(df: pd.DataFrame) -> pd.DataFrame:
    """Each step's half-widths from the sets other than its own: pooled, per bound, and the
    larger of the two (as shipped)."""
    out = []
    for name, test in df.groupby("set", sort=False):
        train = df[df["set"] != name]
        pooled = steptime_misses.q95(train["miss"].to_numpy())
        per = {b: steptime_misses.q95(g["miss"].to_numpy()) for b, g in train.groupby("bound")}
        apart = test["bound"].map(per).fillna(pooled)
        out.append(test.assign(pooled=pooled, apart=apart, larger=apart.clip(lower=pooled)))
    return pd.concat(out, ignore_index=True)


def judged(df: pd.DataFrame, by: str) -> pd.DataFrame:
    """Per ``by`` (the set left out, or the bound): steps, and each interval's coverage and
    mean half-width (%)."""
    rows = []
    for key, g in df.groupby(by, sort=False):
        row = {by: key, "steps": len(g)}
        for kind in ("pooled", "apart", "larger"):
            row[f"{kind} covers"] = int((g["miss"] <= g[kind]).sum())
            row[f"{kind} width %"] = round(100 * float(g[kind].mean()), 1)
        rows.append(row)
    return pd.DataFrame(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--heldout", type=Path, nargs="+", required=True)
    args = ap.parse_args()
    table = pd.read_parquet(packaged.steptime_path())
    df = pd.concat([misses(d, table) for d in args.heldout], ignore_index=True)
    stats = df.groupby("bound")["miss"].agg(["count", "median", "max"])
    stats["q95"] = df.groupby("bound")["miss"].apply(lambda m: steptime_misses.q95(m.to_numpy()))
    print(f"packaged step-time table from {packaged.provenance().get('steptime_git_revision')}")
    print((100 * stats.drop(columns="count")).round(1).assign(steps=stats["count"]).to_string())
    both = intervals(df)
    print(judged(both, "set").to_string(index=False))
    print(judged(both, "bound").to_string(index=False))
    print(judged(both.assign(all="all"), "all").to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
