"""Report: does the meter, the GPU or the host set the pace of a host-bound step?

    python benchmarks/host_pace_report.py benchmarks/results/host_pace_h100_2026-12-07

Reads what ``host_meter_probe.py``, ``zeus_side_by_side.py`` and ``host_pace_trace.py`` (with
``nvidia-smi -lms 100`` beside it) wrote into one folder and prints, per pass: the time per step
under each sampler condition; our meter against Zeus window by window; and, for the windows with
no meter, the spread of the time per step, the SM clock and GPU utilization beside it, and the
steal time and involuntary context switches over all windows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats


def probe(folder: Path) -> None:
    for path in sorted(folder.glob("probe_*.jsonl")):
        rows = pd.read_json(path, lines=True)
        rows = rows[rows["summary"] != True] if "summary" in rows else rows  # noqa: E712
        g = rows.groupby(["pass", "condition"], sort=False)["step_ms"]
        table = g.agg(["count", "median", "min", "max"]).round(2)
        print(f"## {path.name}: ms per step by sampler condition ({rows['gpu'].iloc[0]})")
        print(table.to_string(), "\n")


def zeus(folder: Path) -> None:
    for path in sorted(folder.glob("zeus_*.json")):
        runs = json.loads(path.read_text())["precisions"]
        print(f"## {path.name}: J per step, window by window")
        for precision, passes in runs.items():
            for name, r in passes.items():
                if not isinstance(r, dict):  # the card's UUID and name beside the passes
                    continue
                ours = np.array(r["ours_j_per_iter"]["values"])
                theirs = np.array(r["zeus_j_per_iter"]["values"])
                diff = 100 * (theirs - ours) / ours
                print(
                    f"{precision} {name}: ours {ours.min():.3f}-{ours.max():.3f} J "
                    f"(cv {r['ours_j_per_iter']['cv']:.1%}), Zeus - ours mean "
                    f"{r['zeus_minus_ours_pct']:+.1f} %, per window {diff.min():+.1f} to "
                    f"{diff.max():+.1f} %"
                )
        print()


def smi(folder: Path) -> pd.DataFrame:
    paths = sorted(folder.glob("nvidia_smi_*.csv"))
    if not paths:
        return pd.DataFrame(columns=["wall", "sm_mhz", "util"])
    t = pd.read_csv(paths[0], skipinitialspace=True)
    stamp = pd.to_datetime(t.iloc[:, 0], format="%Y/%m/%d %H:%M:%S.%f", utc=True)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    wall = (stamp - epoch).dt.total_seconds()
    return pd.DataFrame({"wall": wall, "sm_mhz": t.iloc[:, 1], "util": t.iloc[:, 4]})


def pace(folder: Path) -> None:
    gpu = smi(folder)
    for path in sorted(folder.glob("pace_*.jsonl")):
        w = pd.read_json(path, lines=True)
        ms = w["step_ms"]
        line = (
            f"{path.name}: {len(w)} windows, {ms.min():.2f}-{ms.max():.2f} ms per step "
            f"(median {ms.median():.2f}), CPUs {sorted(set(w['cpu']))}, steal "
            f"{w['steal_all_ticks'].sum()} ticks, involuntary switches "
            f"{w['nonvoluntary_ctxt_switches'].sum()}"
        )
        if "wall" in w and not gpu.empty:
            span = [gpu[(gpu["wall"] > t - 0.5) & (gpu["wall"] <= t)] for t in w["wall"]]
            clock = pd.concat(span)["sm_mhz"]
            util = [s["util"].mean() for s in span]
            rho = stats.spearmanr(ms, util).statistic
            line += (
                f"; SM clock {clock.min():.0f}-{clock.max():.0f} MHz; GPU busy vs ms per step: "
                f"Spearman {rho:+.2f}"
            )
        print(line)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", type=Path)
    folder = ap.parse_args().folder
    probe(folder)
    zeus(folder)
    pace(folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
