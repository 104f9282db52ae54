"""Benchmark (issue 32): `flopmetrics estimate` on configurations its calibration was not fitted on.

For every gated row of the held-out set (measured by the pipeline with config/heldout_h200.yaml
and committed as reference rows) whose pass is judged (train_step and forward by default), the
estimate is made as for a workload nobody measured (no measured rows given: only the calibration)
and compared with the measurement. Prints one line per row (predicted, measured, error, whether
the interval covered it, the basis) and the summary the issue asks for: median and largest
absolute error, and the share of intervals that covered the measurement; rows the estimate
refused are counted apart.

Run from the repository root, after the pipeline made the calibration:
    python benchmarks/heldout.py --heldout resources/reference/h200_heldout \\
        [--calibration results/calibration/calibration.parquet] [--passes train_step forward]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from flopmetrics.analysis import co2e
from flopmetrics.analysis.merge import read_job_table
from flopmetrics.analysis.spread import measured_rows


def judged(heldout: Path, passes: list[str]) -> pd.DataFrame:
    """The held-out set's gated, measured rows of the judged passes."""
    files = sorted(heldout.glob("raw/**/*.parquet"))
    if not files:
        raise SystemExit(f"no raw/**/*.parquet under {heldout}")
    rows = measured_rows(pd.concat([read_job_table(f) for f in files], ignore_index=True))
    llm = rows["model"].notna() if "model" in rows else False  # causal LM rows, not MLP/matmul
    return rows[llm & rows["pass"].isin(passes)]


def compare(rows: pd.DataFrame, calibration: pd.DataFrame) -> pd.DataFrame:
    out = []
    for r in rows.to_dict("records"):
        w = {
            "name": "heldout",
            # the workload's own model: a preset's name or an inline mapping
            "model": json.loads(r["config_json"])["workload"]["model"],
            "tokens": r["batch_size"] * r["seq_len"],  # one step
            "batch_size": int(r["batch_size"]),
            "seq_len": int(r["seq_len"]),
            "target": r["gpu_label"],
            "precision": r["precision"],
            "pass": r["pass"],
            "launch": r.get("launch") or None,
        }
        est = co2e.estimate([w], calibration, 1.0, 0.0).iloc[0]
        measured = float(r["energy_j_per_iter"])
        ok = est["status"] == "ok"
        out.append(
            {
                **{k: r[k] for k in ("model", "batch_size", "seq_len", "precision", "pass")},
                "gpu_uuid": r["gpu_uuid"],
                "measured_j": measured,
                "predicted_j": est["energy_j"] if ok else float("nan"),
                "error_pct": 100 * (est["energy_j"] / measured - 1) if ok else float("nan"),
                "covered": bool(est["energy_j_lo"] <= measured <= est["energy_j_hi"])
                if ok
                else None,
                "basis": est["basis"] if ok else f"refused: {est['status']}",
            }
        )
    return pd.DataFrame(out)


def summary(table: pd.DataFrame) -> str:
    done = table[table["error_pct"].notna()]
    if done.empty:
        return f"{len(table)} rows, every estimate refused"
    err = done["error_pct"].abs()
    return (
        f"{len(done)} of {len(table)} rows estimated ({len(table) - len(done)} refused): "
        f"median |error| {err.median():.1f} %, largest {err.max():.1f} %, "
        f"intervals covering the measurement {int(done['covered'].sum())} of {len(done)} "
        f"({100 * done['covered'].mean():.0f} %)"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--heldout", type=Path, required=True)
    ap.add_argument(
        "--calibration", type=Path, default=Path("results/calibration/calibration.parquet")
    )
    ap.add_argument("--passes", nargs="+", default=["train_step", "forward"])
    args = ap.parse_args()
    table = compare(judged(args.heldout, args.passes), pd.read_parquet(args.calibration))
    with pd.option_context("display.width", 250, "display.max_colwidth", 120):
        print(table.to_string(index=False))
    print(summary(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
