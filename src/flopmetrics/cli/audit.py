"""``flopmetrics audit FILE``: which rows of a results file are physically impossible, and why.

FILE: our parquet (rows with ``flops_per_j``, ``flops_per_s``, GPU and precision), a thesis
record file (``*_llama3.2_1b_*.jsonl``, judged against every datasheet variant its GPU name may
stand for), or a CSV with columns ``flops``, ``energy_j``, ``time_s``, ``gpu`` and ``precision``
(one row per measurement). A row is impossible where its FLOPs/s exceed the datasheet peak, its
FLOPs/J exceed peak/TDP, or its power the board's limit; a generic label (``h100``) is judged on
the variant that admits the row, so a row is impossible only where it is so on every board of
that label. A CSV records no numerics: its rows say "numerics not recorded". A row that cannot
be judged (energy or time missing, zero or negative, a value that is not a number, a GPU and
precision without a datasheet limit) is named with its reason, never counted as possible.

Exit status: 0 every row judged and possible; 1 some row impossible; 3 none impossible, but some
row (or the whole file: no rows) could not be judged; 2 a bad invocation or unreadable file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ..analysis.thesis import files
from ..energy import datasheet, gates

PHYSICS = ("peak_flops", "flops_per_joule", "power")
CSV_COLUMNS = ("flops", "energy_j", "time_s", "gpu", "precision")
# what a parquet row is judged on (besides a GPU and a precision)
NUMBERS = ("flops_per_s", "flops_per_j", "power_mean_w")
UNJUDGED = 3


def add(sub) -> None:
    p = sub.add_parser(
        "audit", help="gate a results file against physics", description=__doc__.split("\n\n")[1]
    )
    p.add_argument("file")
    p.add_argument(
        "--json",
        action="store_true",
        help="one JSON object: the counts and every row's verdict (possible, impossible, "
        "unjudged) with its reason",
    )
    p.set_defaults(run=run)


def read_csv(path: Path):

    try:
        df = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise ValueError(
            f"{path}: an empty CSV (no header); a CSV needs {list(CSV_COLUMNS)}"
        ) from None
    missing = [c for c in CSV_COLUMNS if c not in df]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; a CSV needs {list(CSV_COLUMNS)}")
    df = numeric(df, ("flops", "energy_j", "time_s"))
    df = df.assign(
        gpu_label=df["gpu"],
        flops_per_s=df["flops"] / df["time_s"],
        flops_per_j=df["flops"] / df["energy_j"],
        power_mean_w=df["energy_j"] / df["time_s"],
        source_file=[f"{path}:{i + 2}" for i in range(len(df))],
    )
    if "power_limit_w" in df and df["power_limit_w"].notna().any():
        return gates.apply(df)
    # a generic label (h100) stands for several boards: a row is judged on the variant that
    # admits it, if one does (its FLOP/s, FLOPs/J and power all within that board's limits)
    chosen = [_admitting(r) for r in df.to_dict("records")]
    df["gpu_key"] = [spec.key if spec else "" for spec in chosen]
    df["power_limit_w"] = [spec.tdp_w if spec else float("nan") for spec in chosen]
    return gates.apply(df)


def read(path: Path):

    if path.suffix == ".parquet":
        df = pd.read_parquet(path)
        missing = [c for c in ("precision", *NUMBERS[:2]) if c not in df]
        if missing or not {"gpu_label", "gpu_key"} & set(df.columns):
            raise ValueError(
                f"{path}: not a results table: missing column(s) {missing or ['gpu_label']}"
            )
        df = gates.apply(numeric(df, [c for c in NUMBERS if c in df]))
        return df.assign(source_file=[f"{path} row {i}" for i in range(len(df))])
    if path.suffix == ".jsonl":
        df, report = files.read_file(path)
        for line in report.rejected:  # stderr: stdout is the verdicts (and --json's object)
            print(f"rejected: {line}", file=sys.stderr)
        return df
    if path.suffix == ".csv":
        return read_csv(path)
    raise ValueError(f"{path}: not a .parquet, .jsonl or .csv results file")


def numeric(df: pd.DataFrame, columns) -> pd.DataFrame:
    """``columns`` as numbers; a cell that is not one becomes NaN (and its row unjudged)."""
    return df.assign(**{c: pd.to_numeric(df[c], errors="coerce") for c in columns})


def _admitting(row: dict):
    """The datasheet variant of the row's GPU label on which the row is possible, else the one
    allowing the most FLOPs per Joule (the verdict names its limits); None for an unknown GPU
    or precision (the row is not judged)."""
    try:
        specs = datasheet.variants(str(row["gpu"]))
        lenient = datasheet.most_lenient(str(row["gpu"]), str(row["precision"]))
    except (KeyError, ValueError):
        return None
    for spec in specs:
        one = pd.DataFrame([{**row, "gpu_key": spec.key, "power_limit_w": spec.tdp_w}])
        if gates.apply(one)[[f"gate_{g}" for g in PHYSICS]].all(axis=1).iloc[0]:
            return spec
    return lenient


def unjudged(df: pd.DataFrame) -> pd.Series:
    """Why each row cannot be judged ("" where it can)."""
    reasons = pd.Series("", index=df.index)
    for column in NUMBERS:
        if column in df:
            bad = ~(np.isfinite(df[column]) & (df[column] > 0))
            reasons[bad & reasons.eq("")] = f"{column} is not a positive number"
    no_limit = df["max_flops_per_j"].isna() & reasons.eq("")
    reasons[no_limit] = "no datasheet limit for this GPU and precision"
    return reasons


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
        return UNJUDGED
    reasons = unjudged(df)
    judged = reasons.eq("")
    bad = judged & ~df[[f"gate_{g}" for g in PHYSICS]].all(axis=1)
    status = 1 if bad.any() else UNJUDGED if (~judged).any() else 0
    if getattr(args, "json", False):
        print(json.dumps(verdicts(path, df, bad, reasons), default=str))
        return status
    for r in df[bad].to_dict("records"):
        print(f"IMPOSSIBLE {r.get('source_file', '')} {_label(r)}: {why(r)}")
    for r, reason in zip(df[~judged].to_dict("records"), reasons[~judged], strict=True):
        print(f"UNJUDGED {r.get('source_file', '')} {_label(r)}: {reason}")
    # a file that never recorded numerics (a CSV) is not a failed finite check: said apart
    unrecorded = df["numerics"].eq("unknown") if "numerics" in df else df.index == df.index
    failures = (
        df["gate_failures"]
        .where(~unrecorded, df["gate_failures"].str.replace(r"\bfinite\b,?\s*", "", regex=True))
        .str.strip(", ")
    )
    other = failures[judged & ~bad & failures.ne("")].value_counts()
    print(
        f"{path}: {int(bad.sum())} of {len(df)} rows physically impossible"
        + (f", {int((~judged).sum())} could not be judged" if (~judged).any() else "")
        + (
            "; not trusted for other reasons: " + ", ".join(f"{n} x {g}" for g, n in other.items())
            if len(other)
            else ""
        )
        + (f"; numerics not recorded in {int(unrecorded.sum())}" if unrecorded.any() else "")
    )
    return status


def verdicts(path: Path, df: pd.DataFrame, bad: pd.Series, reasons: pd.Series) -> dict:
    """The audit as one object: counts, and each row's verdict and reason."""
    rows = []
    for (i, r), impossible, reason in zip(df.iterrows(), bad, reasons, strict=True):
        verdict = "unjudged" if reason else "impossible" if impossible else "possible"
        rows.append(
            {
                "row": r.get("source_file", str(i)),
                "label": _label(r.to_dict()),
                "verdict": verdict,
                "reason": reason or (why(r.to_dict()) if impossible else ""),
            }
        )
    return {
        "file": str(path),
        "rows": len(df),
        "impossible": int(bad.sum()),
        "unjudged": int(reasons.ne("").sum()),
        "verdicts": rows,
    }


def _label(r: dict) -> str:
    return " ".join(
        str(r.get(k, ""))
        for k in ("gpu_label", "precision", "pass", "config_name")
        if r.get(k) == r.get(k) and r.get(k) not in (None, "")
    )
