"""Where windows open relative to the energy counter's steps, and what a reader that takes the
counter's raw value at each edge (as Zeus's ``ZeusMonitor`` does) would get, recomputed from
committed traces: the interpolated reading the jobs use against the raw edge difference, per
window.

Guards that run until the counter has stepped past the edge make each window open a few tens of
milliseconds after a step; a raw edge read then counts from that step and misses energy at the
end on average. The interpolated reading does not depend on the phase.

    python benchmarks/counter_phase.py resources/reference/h200/traces \
        resources/reference/h100/traces
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from flopmetrics.energy.counter import counter_window


def windows(trace_file: Path) -> list[dict]:
    t = pd.read_parquet(trace_file)
    steps = (
        t[["counter_step_t", "counter_step_j"]]
        .dropna()
        .drop_duplicates()
        .sort_values("counter_step_t")
    )
    ts, es = steps["counter_step_t"].to_numpy(), steps["counter_step_j"].to_numpy()
    spans = t[(t["window"] != "") & (t["window"] != "idle")][
        ["window", "repeat", "window_start_t", "window_end_t"]
    ]
    out = []
    for _, w in spans.drop_duplicates().iterrows():
        c = counter_window(ts, es, w["window_start_t"], w["window_end_t"])
        start = np.searchsorted(ts, w["window_start_t"], "right") - 1
        out.append(
            {
                "raw_minus_interpolated_pct": 100 * (c["energy_counter_raw_j"] / c["energy_j"] - 1),
                "start_after_step_ms": 1e3 * (w["window_start_t"] - ts[start]),
                "window_s": w["window_end_t"] - w["window_start_t"],
            }
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+", type=Path)
    args = ap.parse_args()
    print(
        "| traces | windows | window s (median) | opens after a step, ms (mean, sd) | raw - "
        "interpolated, % (mean, median, sd) |"
    )
    print("|---|---|---|---|---|")
    for folder in args.folders:
        d = pd.DataFrame([w for f in sorted(folder.rglob("*.parquet")) for w in windows(f)])
        r, s = d["raw_minus_interpolated_pct"], d["start_after_step_ms"]
        print(
            f"| {folder} | {len(d)} | {d['window_s'].median():.2f} | {s.mean():.0f}, "
            f"{s.std():.0f} | "
            f"{r.mean():+.2f}, {r.median():+.2f}, {r.std():.2f} |"
        )


if __name__ == "__main__":
    main()
