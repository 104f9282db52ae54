"""Issue 33's check of the serving model (:mod:`flopmetrics.analysis.serving`) outside its fit:
fitted on the rows of ``--fit`` (Llama-3.2-1B and Llama-3.1-8B's shape), judged on those of
``--heldout`` (other models, other batch sizes), each with the interval `flopmetrics estimate`
would print for it; then the leave-one-model-out misses of the model fitted on both, as the
shipped table measures them.

    python benchmarks/serving_fit.py [--fit resources/reference/h200_inference]
        [--heldout resources/reference/h200_inference_heldout]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from flopmetrics.analysis import serving


def rows(folder: Path) -> pd.DataFrame:
    return pd.concat(pd.read_parquet(f) for f in sorted(folder.glob("raw/inference/**/*.parquet")))


def judged(table: pd.DataFrame, heldout: pd.DataFrame) -> pd.DataFrame:
    """Each held-out row's prediction, miss and whether its interval covers the measurement."""
    out = []
    for _, r in serving.rows_features(heldout).iterrows():
        model = json.loads(r["config_json"])["workload"]["model"]
        w = {**r[["batch_size", "prompt_len", "output_len", "precision", "pass"]], "model": model}
        w["launch"] = r["launch"]
        x, e = serving.step_energy(w, r["gpu_label"], table)
        hit = "status" not in e and bool(e)
        out.append(
            {
                "model": r["model"],
                "pass": r["pass"],
                "batch": r["batch_size"],
                "launch": r["launch"],
                "measured_j_per_token": r["E"] / x["tokens"],
                "predicted_j_per_token": e["step"] / x["tokens"] if hit else np.nan,
                "miss_pct": 100 * (e["step"] / r["E"] - 1) if hit else np.nan,
                "covered": bool(hit and e["lo"] <= r["E"] <= e["hi"]),
                "interval_pct": 100 * (e["hi"] / e["step"] - 1) if hit else np.nan,
                "why": e.get("status", ""),
            }
        )
    return pd.DataFrame(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fit", type=Path, default=Path("resources/reference/h200_inference"))
    ap.add_argument(
        "--heldout", type=Path, default=Path("resources/reference/h200_inference_heldout")
    )
    args = ap.parse_args()
    fit, heldout = rows(args.fit), rows(args.heldout)
    result = judged(serving.calibrate(fit), heldout)
    print(result.to_markdown(index=False, floatfmt=".4g"))
    for name, g in result.groupby("pass"):
        miss = g["miss_pct"].abs()
        print(
            f"\n{name}: {g['miss_pct'].notna().sum()} of {len(g)} predicted; |miss| median "
            f"{miss.median():.1f} %, largest {miss.max():.1f} %; intervals cover "
            f"{int(g['covered'].sum())} of {len(g)}"
        )
    both = serving.calibrate(pd.concat([fit, heldout]))
    columns = ["pass", "launch", "configs", "residual_sd", "model_extrapolation_err_pct"]
    print(
        "\nfitted on both (the shipped table):\n"
        + both[columns + ["extrapolation_err_pct"]].to_markdown(index=False, floatfmt=".3g")
    )


if __name__ == "__main__":
    main()
