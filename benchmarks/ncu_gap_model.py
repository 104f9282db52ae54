"""Out-of-fold error of the GPU-adjusted FLOP formulas (flopmetrics.ncu.gap), per GPU and precision.

    python benchmarks/ncu_gap_model.py [--seed 0] [--folds 3]

H100: the committed runs (resources/reference/h100/ncu), each precision's MLP configs dealt into
folds as merge_ncu does (ncu.folds, ncu.seed), two splits: ``config`` (a judged config's shape
seen at other depths where measured) and ``shape`` (no depth of its shape seen). Then each H100
card's runs judged by formulas fitted on the other cards' runs alone. Thesis GPU (A100, fp32): all
1,280 configs of hyper_surface_summary.csv judged out of fold, the tile terms fitted on the raw
launches of the training folds' configs (60 configs kept them). Results: docs/ncu.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from flopmetrics.ncu.classify import classify
from flopmetrics.ncu.gap import GapModel, config_totals
from flopmetrics.ncu.parse import read_runs, read_thesis_raw
from flopmetrics.ncu.validation import SPLITS, cross_validated, evaluate, held_out_errors

REPO = Path(__file__).resolve().parents[1]
CARDS = {
    "run1": "GPU-b25ad2ee",
    "run2": "GPU-4529ee01",
    "run3": "GPU-18232674",
    "run4": "GPU-6e019500",
}


def report(name: str, e: pd.DataFrame) -> None:
    for p, x in e.groupby("pass"):
        a = x["error_pct"].abs()
        above = x[a > 5]
        why = ", ".join(f"{n} {b}" for b, n in above["basis"].value_counts().items()) or "-"
        print(
            f"| {name} | {p} | {len(x)} | {a.median():.2f} | {a.max():.2f} | {len(above)} | {why} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--folds", type=int, default=3)
    args = ap.parse_args()
    print(
        "| GPU, precision, split | pass | judged | median abs % | max abs % | above 5 % | basis "
        "of those |"
    )
    print("|---|---|---|---|---|---|---|")
    runs = classify(read_runs(REPO / "resources/reference/h100/ncu"))
    errors = held_out_errors(runs, args.folds, args.seed)  # what the pipeline's merge_ncu computes
    for (split, precision), e in errors.groupby(["split", "precision"]):
        report(f"H100 {precision}, {split}", e)
    mlp = runs[runs["label"].str.startswith("mlp")]
    card = mlp["run"].str.split("_").str[0]
    for precision, g in mlp.groupby("precision"):
        judged = [
            evaluate(GapModel(g[card[g.index] != c]), config_totals(g[card[g.index] == c]))
            for c in sorted(set(card[g.index]))
        ]
        report(f"H100 {precision}, each card by the others", pd.concat(judged))
    thesis = Path(REPO.parent / "shared/thesis/metrics/hyper_surface")
    raw = classify(read_thesis_raw(thesis / "raw"))
    summary = pd.read_csv(thesis / "hyper_surface_summary.csv")
    totals = pd.concat(
        [
            summary[["n", "d", "m"]].assign(**{"pass": p, "flops": summary[c]})
            for p, c in (("forward", "ncu_total_flops_fwd"), ("backward", "ncu_total_flops_bwd"))
        ],
        ignore_index=True,
    )
    for split, unseen in SPLITS.items():
        report(
            f"thesis A100 fp32, {split}",
            cross_validated(raw, args.folds, args.seed, totals, unseen),
        )


if __name__ == "__main__":
    main()
