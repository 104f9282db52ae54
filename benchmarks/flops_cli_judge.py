"""Issue 35, item 3: judge what `flopmetrics flops` predicted on a GPU (its --json outputs)
against Nsight Compute's count of the same MLP configs captured afterwards on the same card
(both written by benchmarks/flops_cli_check.sh).

    python benchmarks/flops_cli_judge.py DIR [--json OUT]   (DIR holds cli/ and ncu/)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from flopmetrics.ncu import classify, gap, parse


def judged(folder: Path) -> pd.DataFrame:
    launches = classify.classify(parse.read_runs(folder / "ncu"))
    runs = launches[["run", "precision"]].drop_duplicates()
    rows = []
    for r in gap.config_totals(launches).merge(runs, on="run").itertuples():
        n, d, m, what = int(r.n), int(r.d), int(r.m), r._5
        path = folder / "cli" / f"{r.precision}_{what}_n{n}_d{d}_m{m}.json"
        if not path.exists() or not path.stat().st_size:
            continue  # the command did not finish for this pass: nothing to judge
        cli = json.loads(path.read_text())
        rows.append(
            {
                "precision": r.precision,
                "pass": what,
                "n": n,
                "d": d,
                "m": m,
                "gpu_uuid": cli["choice"]["gpu_uuid"],
                "executed": r.flops,
                "predicted": cli["total"],
                "error_pct": 100 * (cli["total"] / r.flops - 1),
            }
        )
    return pd.DataFrame(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder")
    ap.add_argument("--json")
    args = ap.parse_args()
    df = judged(Path(args.folder))
    print(df.round(3).to_string(index=False))
    print(f"{len(df)} passes, largest |error| {df['error_pct'].abs().max():.3f} %")
    if args.json:
        Path(args.json).write_text(df.to_json(orient="records", indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
