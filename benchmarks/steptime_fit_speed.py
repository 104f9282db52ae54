"""How long the step-time fit takes on measured rows, and what it finds: the operation streams
(recorded once, then read from the cache), one fit, and the left-out fits the calibration's
interval comes from (one per batch size and length left out). Run it with two checkouts'
``src`` on ``PYTHONPATH`` to compare their fits (same rows, same streams); the parameters go to
``--out`` as JSON with the timings.

    PYTHONPATH=src python benchmarks/steptime_fit_speed.py \\
        --dirs resources/reference/h200_calibration_batch --precision bf16 --out FIT.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from flopmetrics.analysis import steptime_misses, steptime_rows
from flopmetrics.analysis.steptime_fit import fit
from flopmetrics.jobs.output import atomic_path
from flopmetrics.jobs.provenance import git_revision


def _timed(what: str, call):
    start = time.perf_counter()
    out = call()
    seconds = time.perf_counter() - start
    print(f"{what}: {seconds:.2f} s", flush=True)
    return out, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dirs", nargs="+", required=True)
    ap.add_argument("--label", default="h200")
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--no-left-out", action="store_true", help="time the one fit only")
    args = ap.parse_args()
    table = steptime_rows.read_rows(args.dirs)
    mine = (table["gpu_label"] == args.label) & (table["precision"] == args.precision)
    rows, t_ops = _timed(
        "operation streams",
        lambda: steptime_rows.rows_of(table[mine & table["model"].notna()], steptime_rows.ops_of),
    )
    p, t_fit = _timed(f"one fit on {len(rows)} rows", lambda: fit(rows, args.label, args.precision))
    misses, t_left = [], float("nan")
    if not args.no_left_out:
        (misses, _), t_left = _timed(
            "left-out fits",
            lambda: steptime_misses.left_out_misses(rows, args.label, args.precision),
        )
    result = {
        "git_revision": git_revision()[0],
        "dirs": args.dirs,
        "rows": len(rows),
        "seconds": {"streams": t_ops, "fit": t_fit, "left_out": t_left},
        "left_out_n": len(misses),
        "left_out_q95": steptime_misses.q95(np.asarray(misses)),
        "parameters": steptime_rows._parameters(p),
    }
    with atomic_path(args.out) as tmp:
        tmp.write_text(json.dumps(result, indent=1, default=float))
    print(json.dumps(result["seconds"]), result["left_out_q95"])


if __name__ == "__main__":
    main()
