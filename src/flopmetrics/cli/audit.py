"""``flopmetrics audit FILE``: which rows of a results file are physically impossible, and why.

FILE: our parquet (rows with ``flops_per_j``, ``flops_per_s``, GPU and precision), a thesis
record file (``*_llama3.2_1b_*.jsonl``, judged against every datasheet variant its GPU name may
stand for), or a CSV with columns ``flops``, ``energy_j``, ``time_s``, ``gpu`` and ``precision``
(one row per measurement). A row is impossible where its FLOPs/s exceed the datasheet peak, its
FLOPs/J exceed peak/TDP, or its power the board's limit. Exit status 1 if any row is.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..analysis.thesis import files
from ..energy import datasheet, gates

PHYSICS = ("peak_flops", "flops_per_joule", "power")
CSV_COLUMNS = ("flops", "energy_j", "time_s", "gpu", "precision")


def add(sub) -> None:
    p = sub.add_parser(
        "audit", help="gate a results file against physics", description=__doc__.split("\n\n")[1]
    )
    p.add_argument("file")
    p.set_defaults(run=run)


def read_csv(path: Path):

    df = pd.read_csv(path)
    missing = [c for c in CSV_COLUMNS if c not in df]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; a CSV needs {list(CSV_COLUMNS)}")
    df = df.assign(
        gpu_label=df["gpu"],
        flops_per_s=df["flops"] / df["time_s"],
        flops_per_j=df["flops"] / df["energy_j"],
        power_mean_w=df["energy_j"] / df["time_s"],
        source_file=[f"{path}:{i + 2}" for i in range(len(df))],
    )
    if (
        "power_limit_w" not in df or df["power_limit_w"].isna().all()
    ):  # judge power against the board's TDP
        df["power_limit_w"] = [
            datasheet.most_lenient(g, p).tdp_w
            for g, p in zip(df["gpu"], df["precision"], strict=False)
        ]
    return gates.apply(df)


def read(path: Path):

    if path.suffix == ".parquet":
        df = gates.apply(pd.read_parquet(path))
        return df.assign(source_file=[f"{path} row {i}" for i in range(len(df))])
    if path.suffix == ".jsonl":
        df, report = files.read_file(path)
        for line in report.rejected:
            print(f"rejected: {line}")
        return df
    if path.suffix == ".csv":
        return read_csv(path)
    raise ValueError(f"{path}: not a .parquet, .jsonl or .csv results file")


def why(r: dict) -> str:
    parts = []
    if not r["gate_flops_per_joule"]:
        parts.append(
            f"{r['flops_per_j'] / 1e12:.3g} TFLOPs/J > limit {r['max_flops_per_j'] / 1e12:.3g}"
        )
    if not r["gate_peak_flops"]:
        parts.append(
            f"{r['flops_per_s'] / 1e12:.4g} TFLOP/s > peak {r['peak_flops_per_s'] / 1e12:.4g}"
        )
    if not r["gate_power"]:
        parts.append(f"{r['power_mean_w']:.0f} W > limit {r['power_limit_w']:.0f} W + 10 %")
    return "; ".join(parts)


def run(args) -> int:
    path = Path(args.file)
    if not path.exists():
        raise ValueError(f"{path}: no such file")
    df = read(path)
    if df.empty:
        print(f"{path}: no rows to judge")
        return 0
    bad = ~df[[f"gate_{g}" for g in PHYSICS]].all(axis=1)
    for r in df[bad].to_dict("records"):
        label = " ".join(
            str(r.get(k, ""))
            for k in ("gpu_label", "precision", "pass", "config_name")
            if r.get(k) == r.get(k) and r.get(k) not in (None, "")
        )
        print(f"IMPOSSIBLE {r.get('source_file', '')} {label}: {why(r)}")
    failures = df["gate_failures"].where(
        df["numerics"] != "unknown",
        df["gate_failures"].str.replace("finite", "finite (numerics never checked)"),
    )
    other = failures[~bad & ~df["gates_passed"]].value_counts()
    print(
        f"{path}: {int(bad.sum())} of {len(df)} rows physically impossible"
        + (
            "; not trusted for other reasons: " + ", ".join(f"{n} x {g}" for g, n in other.items())
            if len(other)
            else ""
        )
    )
    return 1 if bad.any() else 0
