"""What a sweep covered: per experiment, target, precision and source, how many configurations
were measured and passed every gate, were measured but failed a gate, or did not fit."""

from __future__ import annotations

import pandas as pd

from .merge import without_ranks

KEYS = ["table", "experiment", "target", "precision", "source"]
COLUMNS = [*KEYS, "configurations", "passed", "gates_failed", "out_of_memory"]


def coverage(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per (merged table, experiment, target, precision, source) of ``tables`` (name ->
    merged table); a configuration counts once, by its ``config_hash``, as ``out_of_memory``
    when it did not fit, else ``passed`` when every one of its rows passed every gate."""
    parts = [_configurations(name, df) for name, df in tables.items() if not df.empty]
    if not parts:
        return pd.DataFrame(columns=COLUMNS)
    configs = pd.concat(parts, ignore_index=True)
    out = configs.groupby(KEYS, dropna=False).agg(
        configurations=("config_hash", "size"),
        passed=("state", lambda s: int((s == "passed").sum())),
        gates_failed=("state", lambda s: int((s == "gates_failed").sum())),
        out_of_memory=("state", lambda s: int((s == "out_of_memory").sum())),
    )
    return out.reset_index()[COLUMNS]


def _configurations(name: str, df: pd.DataFrame) -> pd.DataFrame:
    df = without_ranks(df).assign(
        table=name,
        source=df["source"] if "source" in df else "measured",
        target=df["target"] if "target" in df else df.get("gpu_label"),
    )
    keys = [*KEYS, "config_hash"]
    df = df.assign(**{k: df[k].astype(str) for k in keys if k in df})
    per = df.groupby(keys, dropna=False).agg(
        oom=("status", lambda s: bool((s == "oom").all())),
        passed=("gates_passed", lambda s: bool(s.astype(bool).all())),
    )
    state = per["passed"].map({True: "passed", False: "gates_failed"})
    per["state"] = state.where(~per["oom"], "out_of_memory")
    return per.reset_index()[[*keys, "state"]]
