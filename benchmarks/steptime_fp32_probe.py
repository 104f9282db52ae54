"""Issue 32: measured steps against the packaged step-time model, with GEMMs on fp32 operands
priced as fast kernels (the table before it had an fp32 rate) and at the rate and energy per
FLOP of the fp32 matrix product measured beside the calibration
(:func:`flopmetrics.analysis.steptime_measured.fp32_products`). Each step's operation stream is
recorded with the installed transformers: run it with the version the rows were measured with
(their ``transformers_version``), since a model's code, and with it its kernels, can differ.

    PYTHONPATH=<transformers 5.17.0> python benchmarks/steptime_fp32_probe.py \\
        --heldout resources/reference/h200_heldout12 --models falcon-7b \\
        > benchmarks/results/steptime_fp32_probe_h200_2026-12-04.txt
"""

from __future__ import annotations

import argparse
import math

import pandas as pd
import transformers

from flopmetrics.analysis import steptime, steptime_measured, steptime_rows
from flopmetrics.contracts import packaged


def predicted(c: dict, r: dict) -> tuple[float, float, str]:
    """(energy J, time s, bound or why refused) of one measured row by calibration ``c``."""
    est = steptime.predict({**c, "heldout_q95": math.nan}, r["ops"])
    if "status" in est:
        return math.nan, math.nan, est["status"]
    return est["energy_j"], est["time_s"], est["bound"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--heldout", nargs="+", required=True)
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--calibration", nargs="+", default=["resources/reference/h200"])
    args = ap.parse_args()
    table = pd.read_parquet(packaged.steptime_path())
    rows = steptime_rows.read_rows(args.heldout)
    rows = rows[rows["model"].isin(args.models)]
    measured = steptime_measured.fp32_products(args.calibration, "h200")
    versions = ",".join(sorted(set(rows["transformers_version"].astype(str))))
    print(f"# transformers {transformers.__version__} records; rows measured with {versions}")
    print(f"# fp32 products: {measured['r_fp32'] / 1e12:.1f} TFLOP/s, "
          f"{measured['e_fp32_j'] * 1e12:.2f} pJ/FLOP ({measured.get('fp32_from')})")  # fmt: skip
    out = []
    for c in table[table["gpu_label"] == "h200"].to_dict("records"):
        mine = rows[rows["precision"] == c["precision"]]
        for r in steptime_rows.rows_of(mine, steptime_rows.ops_of):
            fast = {**c, "r_fp32": c["r_flop"], "e_fp32_j": c["e_flop_j"]}  # the old pricing
            for name, cal in (("fp32 as fast", fast), ("fp32 measured", {**c, **measured})):
                e, t, bound = predicted(cal, r)
                row = r["row"]
                out.append(
                    {
                        "model": row["model"],
                        "batch": int(row["batch_size"]),
                        "seq": int(row["seq_len"]),
                        "pass": row["pass"],
                        "fp32_share_pct": round(100 * steptime.slow_shares(r["ops"])["fp32"], 2),
                        "pricing": name,
                        "measured_j": round(r["energy_j"], 2),
                        "predicted_j": round(e, 2),
                        "miss_pct": round(100 * (e / r["energy_j"] - 1), 1),
                        "measured_ms": round(1e3 * r["time_s"], 1),
                        "predicted_ms": round(1e3 * t, 1),
                        "bound": bound if math.isfinite(e) else "refused",
                    }
                )
    print(pd.DataFrame(out).to_string(index=False))


if __name__ == "__main__":
    main()
