"""Judge the per-class energy model on configurations it was not fitted on (issue 36).

``--freeze``: fit the rates on the committed class rows and write them (committed before the
held-out configurations are measured). Without it: predict every configuration of ``--rows``
at the frozen ``--rates`` and print each miss against the measured step and tape.

    python benchmarks/class_energy_heldout.py --freeze --rows resources/reference/h200_classes \
        --min-window-s 1 --rates benchmarks/results/class_energy_rates_h200_dataflow_2026-12-04.csv
    python benchmarks/class_energy_heldout.py --rows resources/reference/h200_classes_heldout \
        --rates benchmarks/results/class_energy_rates_h200_dataflow_2026-12-04.csv

The first pre-registration (replay on recorded inputs) reads
``resources/reference/h200_classes_recorded_inputs/{fit,heldout}`` and
``benchmarks/results/class_energy_rates_h200_2026-12-04.csv``.
"""

from __future__ import annotations

import argparse
import glob
import sys

import pandas as pd

from flopmetrics.analysis.class_energy import class_table, fit, judged
from flopmetrics.analysis.merge import merge_energy


def table_of(folder: str, min_window_s: float) -> pd.DataFrame:
    files = sorted(glob.glob(f"{folder}/raw/classes/**/*.parquet", recursive=True))
    if not files:
        raise SystemExit(f"{folder}: no rows of experiment classes under raw/classes/")
    rows = merge_energy([], files)
    return class_table(rows[rows["min_window_s"] >= min_window_s])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", required=True, help="a folder with raw/classes/**.parquet")
    ap.add_argument("--rates", required=True, help="the frozen rates (CSV)")
    ap.add_argument("--freeze", action="store_true", help="fit on --rows and write --rates")
    ap.add_argument(
        "--min-window-s",
        type=float,
        default=0.0,
        help="only configurations measured in windows of at least this many seconds",
    )
    args = ap.parse_args()
    table = table_of(args.rows, args.min_window_s)
    if args.freeze:
        rates = fit(table)
        rates.to_csv(args.rates, index=False)
        print(rates.to_string(index=False))
        return 0
    rates = pd.read_csv(args.rates)
    out = pd.DataFrame(
        [
            {k: row[k] for k in ("model", "precision", "batch_size", "seq_len", "gpu_uuid")}
            | judged(rates, row)
            | {"remainder_pct": row["remainder_pct"]}
            for _, row in table.iterrows()
        ]
    )
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(out.round(2).to_string(index=False))
    worst = out["miss_pct"].abs().max()
    print(f"\n{len(out)} configurations; largest |miss| against the step {worst:.2f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
