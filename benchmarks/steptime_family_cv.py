"""Probe (issue 32): the step-time model fitted on many families, judged one model left out.

The packaged model is fitted on Llama-3.2-1B alone and misses other families by up to 24 %.
Here it is fitted on the reference model's rows and on every held-out set's rows of all models
but one, then predicts the one left out (each model in turn): how far a fit on many families
carries to a family it has not seen. No held-out set is then out of sample for the fit; a new
set, committed before it is measured, is the test (``--preregister``).

    python benchmarks/steptime_family_cv.py --precision bf16 \\
        --fit resources/reference/h200 resources/reference/h200_calibration_batch \\
              resources/reference/h200_calibration_unaligned \\
        --families resources/reference/h200_heldout resources/reference/h200_heldout2 \\
              resources/reference/h200_heldout3 resources/reference/h200_heldout4
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from flopmetrics.analysis import steptime, steptime_fit
from flopmetrics.analysis.steptime_rows import ops_of, read_rows, rows_of


def load(dirs: list[str], precision: str) -> list[dict]:
    table = read_rows(dirs)
    table = table[(table["precision"] == precision) & (table["gpu_label"] == "h200")]
    return rows_of(table, ops_of)


def misses(fit_rows: list[dict], judged: list[dict], precision: str) -> list[dict]:
    p = steptime_fit.fit(fit_rows, "h200", precision)
    out = []
    for r in judged:
        e, t, bound = steptime.step(p, r["ops"], r["idle_w"], r["limit_w"])
        out.append(
            {
                "model": r["row"]["model"],
                "batch_size": int(r["row"]["batch_size"]),
                "seq_len": int(r["row"]["seq_len"]),
                "pass": r["row"]["pass"],
                "measured_j": r["energy_j"],
                "predicted_j": e,
                "miss_pct": 100 * (e / r["energy_j"] - 1),
                "time_miss_pct": 100 * (t / r["time_s"] - 1),
                "bound": bound,
            }
        )
    return out


def summary(df: pd.DataFrame, label: str) -> None:
    a = df["miss_pct"].abs()
    print(
        f"{label}: {len(df)} rows, median |miss| {a.median():.1f} %, largest {a.max():.1f} %, "
        f"within 10 % {int((a <= 10).sum())}"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--fit", nargs="+", required=True, help="the reference model's folders")
    ap.add_argument("--families", nargs="+", required=True, help="folders of other models")
    ap.add_argument("--passes", nargs="+", default=["forward", "train_step"])
    args = ap.parse_args()
    base = load(args.fit, args.precision)
    others = load(args.families, args.precision)
    models = sorted({r["row"]["model"] for r in others})
    print(f"{len(base)} reference rows, {len(others)} rows of {len(models)} other models")
    rows = []
    for m in models:
        fit_rows = base + [r for r in others if r["row"]["model"] != m]
        judged = [r for r in others if r["row"]["model"] == m and r["row"]["pass"] in args.passes]
        rows += misses(fit_rows, judged, args.precision)
        print(f"  {m}: left out", flush=True)
    df = pd.DataFrame(rows)
    only = [r for r in others if r["row"]["pass"] in args.passes]
    llama = pd.DataFrame(misses(base, only, args.precision))
    pd.set_option("display.width", 200)
    print(df.round(2).to_string(index=False))
    summary(llama, "fitted on the reference model alone (as packaged)")
    summary(df, "fitted on the reference model and every other model but the one judged")
    for p, g in df.groupby("pass"):
        summary(g, f"  {p}")
    per_model = df.assign(a=df["miss_pct"].abs()).groupby("model")["a"].agg(["median", "max"])
    print(per_model.round(1).to_string())
    print("q95 of the left-out misses:", np.quantile(df["miss_pct"].abs(), 0.95, method="higher"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
