"""Merge per-job parquet files into one table, reading older files through the rename table."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pandas as pd

from ..energy import gates

# column -> the column that holds its value now (config/README.md, "Renamed keys and columns")
RENAMED_COLUMNS = {"dtype": "precision"}
TORCH_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")


def read_job_table(path) -> pd.DataFrame:
    """One job's parquet in today's vocabulary. Files written before the rename carry ``dtype``
    beside ``precision`` (the same value: dropped, a mismatch is an error naming the file), and
    MLP rows held the target label in ``device``; ``device`` is the torch device now, and the
    old jobs ran every GPU target on ``cuda:0``."""
    df = pd.read_parquet(path)
    for old, new in RENAMED_COLUMNS.items():
        if old in df:
            if new in df and not df[old].astype(str).equals(df[new].astype(str)):
                raise ValueError(f"{path}: column {old!r} (renamed {new!r}) disagrees with {new!r}")
            df = df.drop(columns=old) if new in df else df.rename(columns={old: new})
    if {"device", "workload"} <= set(df.columns):
        old_mlp = df["workload"].eq("mlp") & ~df["device"].astype(str).str.match(TORCH_DEVICE)
        df.loc[old_mlp, "device"] = "cuda:0"
    return df


def merge_parquets(paths: Sequence[str]) -> pd.DataFrame:
    if not paths:
        raise ValueError("nothing to merge: the sweep produced no job outputs")
    frames = [read_job_table(p).assign(source_file=str(p)) for p in paths]
    columns = frames[0].columns
    for p, f in zip(paths, frames):
        if set(f.columns) != set(columns):
            missing = sorted(set(columns) - set(f.columns))
            extra = sorted(set(f.columns) - set(columns))
            raise ValueError(f"{p}: columns differ from {paths[0]} (missing {missing}, extra {extra}); rerun that job")
    return pd.concat(frames, ignore_index=True)


def merge_energy(measured: Sequence[str], reference: Sequence[str]) -> pd.DataFrame:
    """Measured rows (``source = measured``) and committed reference rows (``reference``);
    columns are the union (different workloads carry different columns)."""
    frames = [read_job_table(p).assign(source="measured", source_file=str(p)) for p in measured]
    frames += [read_job_table(p).assign(source="reference", source_file=str(p)) for p in reference]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame({"source": pd.Series(dtype=str), "workload": pd.Series(dtype=str)})
    # gates are re-applied here so every row, old reference data included, meets today's rules
    return gates.apply(pd.concat(frames, ignore_index=True, sort=False))
