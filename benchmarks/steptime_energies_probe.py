"""Issue 32 (a probe): the packaged step-time table against the same pooled fit with each
memory-bound kernel's dynamic energy per byte held (``strided_energy``, ``cat_energy``: the
memory experiment's, over the vectorized kernel's), both judged on held-out folders neither was
fitted on. The fit takes the packaged table's own folders (its ``fitted_from``) and the memory
kernels' speeds and energies measured below them; every other parameter is fitted as the
package fits it. Each held-out step's miss under each table is written to ``--out`` (CSV).

    python benchmarks/steptime_energies_probe.py \\
        --heldout resources/reference/h200_heldout18 ... --out STEPS.csv
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from flopmetrics.analysis import steptime_misses, steptime_rows
from flopmetrics.analysis.steptime_fit import fit
from flopmetrics.analysis.steptime_measured import memory_speeds
from flopmetrics.contracts import packaged
from flopmetrics.jobs.output import atomic_path

LABEL, PRECISION = "h200", "bf16"


def refitted(packaged_row: dict) -> dict:
    """The packaged row refitted on its own folders with the memory kernels' energies held."""
    dirs = packaged_row["fitted_from"].split(",")
    table = steptime_rows.read_rows(dirs)
    mine = (table["gpu_label"] == LABEL) & (table["precision"] == PRECISION)
    rows = steptime_rows.rows_of(table[mine & table["model"].notna()], steptime_rows.ops_of)
    calibration = [d for d in dirs if "heldout" not in Path(d).name]
    held = steptime_rows._speeds(memory_speeds(calibration, LABEL, PRECISION))
    said = {k: round(v, 3) for k, v in held.items() if isinstance(v, float)}
    print(f"fitting on {len(rows)} rows, held {said}", flush=True)
    start = time.time()
    p = fit(rows, LABEL, PRECISION, held)
    print(f"fitted in {time.time() - start:.0f} s", flush=True)
    return {**packaged_row, **held, **steptime_rows._parameters(p)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--heldout", nargs="+", required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    table = pd.read_parquet(packaged.steptime_path())
    before = table[(table["gpu_label"] == LABEL) & (table["precision"] == PRECISION)].iloc[0]
    tables = {"packaged": before.to_dict(), "energies": refitted(before.to_dict())}
    fitted = before["models"].split(",")
    out = []
    for folder in args.heldout:
        others = steptime_rows._unseen(steptime_rows.read_rows([folder]), LABEL, PRECISION, fitted)
        rows = steptime_rows.rows_of(others, steptime_rows.ops_of)
        for name, c in tables.items():
            judged = steptime_misses.heldout_misses(c, rows)
            print(f"{folder} {name}: {steptime_misses.summary(judged)}", flush=True)
            out.append(judged.assign(folder=folder, table=name))
    with atomic_path(args.out) as tmp:
        pd.concat(out).to_csv(tmp, index=False)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
