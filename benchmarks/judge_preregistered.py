"""Judge predictions written down before a held-out set was measured (issue 32) against its
measured rows, from the committed CSV alone: nothing is predicted again, so a model or table
changed since cannot move the judgement.

Reads pre-registered CSVs, all of one kind: of ``benchmarks/preregister.py`` (``energy_j`` with
its interval ``energy_j_lo``/``energy_j_hi``) or of ``benchmarks/class_energy_families.py
--preregister`` (``work_j`` and ``timed_j``), joins them to the gated rows under ``--heldout``
on model, precision, batch size, length and pass, and prints each row's miss and, per pass and
overall, the median and largest absolute miss, the rows above 10 % and, where there are
intervals, how many cover.

    python benchmarks/judge_preregistered.py \\
        benchmarks/results/heldout4_predictions_2026-12-04.csv \\
        --heldout resources/reference/h200_heldout4
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
from heldout import judged  # benchmarks/heldout.py: the held-out sets' gated rows

KEYS = ["model", "precision", "batch_size", "seq_len", "pass"]
PREDICTIONS = ("energy_j", "work_j", "timed_j")  # whichever columns the CSV has


def measured(folder: Path, passes: list[str]) -> pd.DataFrame:
    """The gated rows of ``passes`` under ``folder`` (as ``benchmarks/heldout.py`` judges)."""
    rows = judged([folder], passes).rename(columns={"energy_j_per_iter": "measured_j"})
    rows[["batch_size", "seq_len"]] = rows[["batch_size", "seq_len"]].astype(int)
    return rows[[*KEYS, "measured_j", "gpu_uuid"]]


def summary(df: pd.DataFrame, column: str) -> dict:
    miss = df[f"{column}_miss_pct"].abs()
    out = {
        "rows": len(df),
        "median_abs_pct": round(float(miss.median()), 1),
        "largest_abs_pct": round(float(miss.max()), 1),
        "above_10_pct": int((miss > 10).sum()),
    }
    if column == "energy_j" and "covered" in df:
        out["covered"] = int(df["covered"].sum())
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("predictions", nargs="+", help="pre-registered CSVs of one kind")
    ap.add_argument("--heldout", required=True, type=Path, help="the measured reference folder")
    args = ap.parse_args()
    pre = pd.concat([pd.read_csv(p) for p in args.predictions], ignore_index=True)
    columns = [c for c in PREDICTIONS if c in pre]
    if not columns:
        raise SystemExit(f"{' '.join(args.predictions)}: none of {', '.join(PREDICTIONS)}")
    rows = measured(args.heldout, list(pre["pass"].unique()))
    joined = rows.merge(pre, on=KEYS, how="left", validate="one_to_one")
    missing = joined[joined[columns[0]].isna()]
    if len(missing):
        print(f"{len(missing)} measured rows have no prediction:", file=sys.stderr)
        print(missing[KEYS].to_string(index=False), file=sys.stderr)
    joined = joined.dropna(subset=[columns[0]])
    for c in columns:
        joined[f"{c}_miss_pct"] = 100 * (joined[c] / joined["measured_j"] - 1)
    if "energy_j_lo" in joined:
        joined["covered"] = joined["measured_j"].between(
            joined["energy_j_lo"], joined["energy_j_hi"]
        )
    shown = [*KEYS, "measured_j", *columns, *(f"{c}_miss_pct" for c in columns)]
    shown += ["covered"] if "covered" in joined else []
    pd.set_option("display.width", 200)
    print(joined[shown].round(2).to_string(index=False))
    print(f"cards: {', '.join(sorted(joined['gpu_uuid'].unique()))}")
    for c in columns:
        print(f"{c}: all {summary(joined, c)}")
        for p, g in joined.groupby("pass"):
            print(f"{c}: {p} {summary(g, c)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
