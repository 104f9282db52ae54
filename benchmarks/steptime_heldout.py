"""Benchmark (issue 32): the step-time model (flopmetrics.analysis.steptime), fitted on the
reference model only, judged on the held-out set.

The fit sees the reference model's eager rows (Llama-3.2-1B: batch 8 at 256-1024 tokens from
resources/reference/h200, batch 1-4 from resources/reference/h200_calibration_batch), one fit
per precision, pooled over its direct passes (forward, forward_backward, train_step). Its
interval for a configuration outside the fit is 95 % of the residual scatter combined with the
largest miss of the same fit when one batch size or one length is left out of it (the
calibration's own extrapolation, measured before the held-out rows are looked at). Each
held-out row of a judged pass is then predicted as a workload nobody measured; GEMMs with an
unaligned dimension (GPT-2's 50257-token vocabulary) are flagged, and a row whose unaligned
GEMMs carry more than 5 % of its GEMM FLOPs is refused: the fit has never seen cuBLAS's
unaligned kernels.

    python benchmarks/steptime_heldout.py [--calibration DIR ...] [--heldout DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from flopmetrics.analysis import steptime, steptime_rows


def judge(calibration: dict, rows: list[dict]) -> list[dict]:
    """Each held-out row predicted as the estimate would (refusals noted), and asked anyway."""
    out = []
    for r in rows:
        est = steptime.predict(calibration, r["ops"])
        # asked anyway: the same model, the unaligned GEMMs' refusal overridden
        e, t, bound = steptime.step(calibration, r["ops"], r["idle_w"], r["limit_w"])
        m = r["row"]
        out.append(
            {
                **{k: m[k] for k in ("model", "batch_size", "seq_len", "precision", "pass")},
                "measured_j": r["energy_j"],
                "predicted_j": e,
                "error_pct": 100 * (e / r["energy_j"] - 1),
                "time_error_pct": 100 * (t / r["time_s"] - 1),
                "bound": bound,
                "unaligned_pct": 100 * steptime.slow_shares(r["ops"])["unaligned"],
                "half_width_pct": 100 * (est.get("energy_j_hi", np.nan) / e - 1),
                "covered": est.get("energy_j_lo", np.inf)
                <= r["energy_j"]
                <= est.get("energy_j_hi", -np.inf),
                "refused": "status" in est,
                "gpu_uuid": m["gpu_uuid"],
            }
        )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ref = Path("resources/reference")
    ap.add_argument(
        "--calibration",
        type=Path,
        nargs="+",
        default=[ref / "h200", ref / "h200_calibration_batch"],
    )
    ap.add_argument("--heldout", type=Path, default=ref / "h200_heldout")
    ap.add_argument("--passes", nargs="+", default=["train_step", "forward"])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    cal, held = steptime_rows.read_rows(args.calibration), steptime_rows.read_rows([args.heldout])
    cal = cal[cal["model"] == "llama-3.2-1b"]
    table, fits = [], []
    for (label, precision), h in held.groupby(["gpu_label", "precision"]):
        c = cal[(cal["gpu_label"] == label) & (cal["precision"] == precision)]
        rows = steptime_rows.rows_of(c, steptime_rows.ops_of)
        print(f"[steptime] {label} {precision}: fitting on {len(rows)} rows", file=sys.stderr)
        calibration = steptime_rows.calibrate(rows, label, precision)
        fits.append(calibration)
        judged = steptime_rows.rows_of(h[h["pass"].isin(args.passes)], steptime_rows.ops_of)
        table += judge(calibration, judged)
    table = pd.DataFrame(table)
    keys = ["model", "precision", "pass", "batch_size", "seq_len"]
    with pd.option_context("display.width", 250, "display.float_format", "{:.4g}".format):
        print(pd.DataFrame(fits).set_index("precision").T.to_string())
    with pd.option_context("display.width", 250, "display.float_format", "{:.1f}".format):
        print(table.sort_values(keys).drop(columns="gpu_uuid").to_string(index=False))
    print("cards:", ", ".join(sorted(table["gpu_uuid"].unique())))
    for name, part in (("predicted", table[~table["refused"]]), ("all, refusals ignored", table)):
        err = part["error_pct"].abs()
        print(
            f"{name}: {len(part)} rows, median |error| {err.median():.1f} %, largest "
            f"{err.max():.1f} %, above 10 %: {int((err > 10).sum())}, intervals covering "
            f"{int(part['covered'].sum())} of {len(part)}"
        )
    if args.json:
        args.json.write_text(json.dumps({"fits": fits, "rows": table.to_dict("records")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
