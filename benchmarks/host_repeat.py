"""Benchmark (issue 32): how far a step bound by the host's launching repeats from job to job.

Reads the configurations measured again (``--repeats``: a folder of runs, each a pipeline
``raw/`` tree, made by ``benchmarks/host_repeat_campaign.sh``) and their first measurements
(``--first``: the held-out or calibration folders they came from). Prints, per configuration and
pass, every measurement (card, run, time and energy per step, mean power), the spread of energy
(largest over smallest, minus one) among the repeats on one card and among all, and what
``flopmetrics estimate`` predicts for it, as for a workload nobody measured (the packaged
calibration; the step-time model where that cannot answer), with its miss against the nearest
and the farthest measurement: a miss no predictor can avoid where the measurements themselves
differ that much.

    python benchmarks/host_repeat.py --repeats resources/reference/h200_repeat_host \\
        --first resources/reference/h200_heldout4 resources/reference/h200_heldout5 \\
        resources/reference/h200_heldout8 resources/reference/h200_heldout9 \\
        resources/reference/h200_calibration_batch
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import pandas as pd
from heldout import compare, judged  # benchmarks/heldout.py: gated rows, the estimate

from flopmetrics.analysis import co2e, spread
from flopmetrics.contracts import packaged

KEYS = ["model", "precision", "batch_size", "seq_len", "pass"]


def measurements(repeats: Path, first: list[Path], passes: list[str]) -> pd.DataFrame:
    """Every gated row of the repeated configurations: the repeats (``run``: their folder's
    name) and the first measurements of the same configurations (``run`` = ``first``)."""
    runs = sorted(p for p in repeats.iterdir() if (p / "raw").is_dir())
    if not runs:
        raise SystemExit(f"no runs (folders with raw/) under {repeats}")
    again = pd.concat([judged([r], passes).assign(run=r.name) for r in runs], ignore_index=True)
    before = judged(first, passes).assign(run="first")
    before = before.merge(again[KEYS].drop_duplicates(), on=KEYS)
    rows = pd.concat([before, again], ignore_index=True)
    rows["time_ms"] = 1e3 * rows["time_per_iter_s"]
    return rows


def spread_pct(energy: pd.Series) -> float:
    """Largest over smallest, minus one, in % (NaN for fewer than two)."""
    return 100 * (energy.max() / energy.min() - 1) if len(energy) > 1 else float("nan")


def per_configuration(rows: pd.DataFrame, predicted: pd.DataFrame) -> pd.DataFrame:
    """Per configuration and pass: the spreads, and the prediction's misses at their extremes."""
    out = []
    for key, g in rows.groupby(KEYS, sort=True):
        same_card = (
            g[g["run"] != "first"].groupby("gpu_uuid")["energy_j_per_iter"].apply(spread_pct)
        )
        p = float(predicted.loc[key, "predicted_j"])
        miss = 100 * (p / g["energy_j_per_iter"] - 1)
        out.append(
            {
                **dict(zip(KEYS, key, strict=True)),
                "measured": len(g),
                "cards": g["gpu_uuid"].nunique(),
                "min_j": g["energy_j_per_iter"].min(),
                "max_j": g["energy_j_per_iter"].max(),
                "spread_one_card_pct": same_card.max(),
                "spread_all_pct": spread_pct(g["energy_j_per_iter"]),
                "predicted_j": p,
                "miss_min_pct": miss.abs().min(),
                "miss_max_pct": miss.abs().max(),
            }
        )
    return pd.DataFrame(out)


def covered(rows: pd.DataFrame, calibration: pd.DataFrame) -> pd.DataFrame:
    """Does the interval a measured row gets cover the other measurements of its configuration?
    Each measurement stands as the measured row in turn, its interval from ``flopmetrics
    estimate``'s own path (:func:`flopmetrics.analysis.co2e.estimate`): with the calibration as
    it was, without any job-to-job change (before), and with the change of steps waiting on the
    host taken over the *other* configurations only (now: left out, so that no configuration
    judges a change it made)."""
    table = spread.card_spread(rows)
    before_cal = _with_repeat(calibration, None)
    out = []
    for key, g in rows.groupby(KEYS, sort=True):
        others = table[~_matches(table, dict(zip(KEYS, key, strict=True)))]
        now_cal = _with_repeat(calibration, spread.repeat_for(others, str(g["gpu_label"].iloc[0])))
        for r in g.to_dict("records"):
            rest = g["energy_j_per_iter"].drop(index=r["_i"])
            e = r["energy_j_per_iter"]
            before, now = (_interval(cal, r) for cal in (before_cal, now_cal))
            out.append(
                {
                    **dict(zip(KEYS, key, strict=True)),
                    "run": r["run"],
                    "others": len(rest),
                    "covered_before": int(rest.between(*before).sum()),
                    "covered_now": int(rest.between(*now).sum()),
                    "half_before_pct": 100 * (before[1] / e - 1),
                    "half_now_pct": 100 * (now[1] / e - 1),
                }
            )
    return pd.DataFrame(out)


def _matches(table: pd.DataFrame, config: dict) -> pd.Series:
    hit = pd.Series(True, index=table.index)
    for k, v in config.items():
        hit &= table[k].astype(str) == str(v)
    return hit


def _with_repeat(calibration: pd.DataFrame, found) -> pd.DataFrame:
    """``calibration`` with the job-to-job change ``found`` (:func:`spread.repeat_for`)."""
    return calibration.assign(
        repeat_change_pct=100 * found[0] if found else math.nan,
        repeat_pairs=found[1] if found else 0,
        repeat_basis=spread.describe_repeat(found),
    )


def _interval(calibration: pd.DataFrame, r: dict) -> tuple[float, float]:
    """The 95 % interval the estimate gives a measured row ``r``, its only measurement."""
    w = {
        "name": "repeat",
        "model": json.loads(r["config_json"])["workload"]["model"],
        "tokens": r["batch_size"] * r["seq_len"],
        "batch_size": int(r["batch_size"]),
        "seq_len": int(r["seq_len"]),
        "target": r["gpu_label"],
        "precision": r["precision"],
        "pass": r["pass"],
        "launch": "eager",
    }
    est = co2e.estimate([w], calibration, 1.0, 0.0, pd.DataFrame([r])).iloc[0]
    assert est["basis"].startswith("measured"), est["basis"]
    return float(est["energy_j_lo"]), float(est["energy_j_hi"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=Path, required=True)
    ap.add_argument("--first", type=Path, nargs="+", required=True)
    ap.add_argument("--passes", nargs="+", default=["train_step", "forward"])
    ap.add_argument(
        "--calibration", type=Path, default=packaged.table_path(), help="as the estimate"
    )
    args = ap.parse_args()
    rows = measurements(args.repeats, args.first, args.passes)
    firsts = rows[rows["run"] == "first"].drop_duplicates(KEYS)
    steptime = pd.read_parquet(packaged.steptime_path())
    predicted = compare(firsts, pd.read_parquet(args.calibration), steptime).set_index(KEYS)
    cols = [*KEYS, "run", "gpu_uuid", "time_ms", "energy_j_per_iter", "power_mean_w"]
    with pd.option_context("display.width", 250, "display.precision", 3):
        print(rows.sort_values([*KEYS, "timestamp_utc"])[cols].to_string(index=False))
        table = per_configuration(rows, predicted)
        print("\nPer configuration (energy per step; spreads: largest over smallest, minus one):")
        print(table.round(2).to_string(index=False))
    print(
        f"\nLargest spread on one card, job to job: {table['spread_one_card_pct'].max():.1f} %; "
        f"over every card and day: {table['spread_all_pct'].max():.1f} %; median over "
        f"configurations {table['spread_all_pct'].median():.1f} %. The estimate's miss: "
        f"{table['miss_min_pct'].median():.1f} % (median over configurations) against the "
        f"measurement it is nearest, {table['miss_max_pct'].median():.1f} % against the farthest."
    )
    cover = covered(rows.assign(_i=rows.index), pd.read_parquet(args.calibration))
    with pd.option_context("display.width", 250):
        print("\nA measured row's interval, each measurement standing as the row in turn:")
        print(cover.round(1).to_string(index=False))
    for when in ("before", "now"):
        print(
            f"{when}: covered {int(cover[f'covered_{when}'].sum())} of {int(cover['others'].sum())}"
            f" other measurements, median half-width {cover[f'half_{when}_pct'].median():.1f} %"
        )
    print("cards:", ", ".join(sorted(rows["gpu_uuid"].unique())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
