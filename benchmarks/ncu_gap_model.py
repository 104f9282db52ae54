"""Held-out error of the GPU-adjusted FLOP formulas (flopmetrics.ncu.gap), per GPU and precision.

    python benchmarks/ncu_gap_model.py [--seed 0] [--held-out 0.333]

H100: the committed runs (resources/reference/h100/ncu), a seeded share of each precision's MLP
configs held out, d=128 m=16 always held out (as merge_ncu does with ncu.held_out and ncu.seed). Thesis GPU (A100, fp32): fitted on the 60 configs
with raw ncu output, judged on the other 1,220 of hyper_surface_summary.csv.
Results: docs/ncu.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from flopmetrics.ncu.classify import classify
from flopmetrics.ncu.gap import GapModel, evaluate, held_out_errors
from flopmetrics.ncu.parse import read_runs, read_thesis_raw

REPO = Path(__file__).resolve().parents[1]


def report(name: str, e: pd.DataFrame) -> None:
    for p, x in e.groupby("pass"):
        a = x["error_pct"].abs()
        print(f"| {name} | {p} | {len(x)} | {a.median():.2f} | {a.max():.1f} | {(a > 5).sum()} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--held-out", type=float, default=1 / 3)
    args = ap.parse_args()
    print("| GPU, precision | pass | held-out configs | median abs % | max abs % | above 5 % |")
    print("|---|---|---|---|---|---|")
    runs = classify(read_runs(REPO / "resources/reference/h100/ncu"))
    errors = held_out_errors(runs, args.held_out, args.seed)  # what the pipeline's merge_ncu computes
    for precision, e in errors[errors["held_out"]].groupby("precision"):
        report(f"H100 {precision}", e)
    thesis = Path(REPO.parent / "shared/thesis/metrics/hyper_surface")
    raw = classify(read_thesis_raw(thesis / "raw"))
    summary = pd.read_csv(thesis / "hyper_surface_summary.csv")
    seen = set(zip(raw["n"], raw["d"], raw["m"]))
    summary = summary[[k not in seen for k in zip(summary["n"], summary["d"], summary["m"])]]
    totals = pd.concat([summary[["n", "d", "m"]].assign(**{"pass": p, "flops": summary[c]})
                        for p, c in (("forward", "ncu_total_flops_fwd"), ("backward", "ncu_total_flops_bwd"))])
    report("thesis A100 fp32", evaluate(GapModel(raw), totals.reset_index(drop=True)))


if __name__ == "__main__":
    main()
