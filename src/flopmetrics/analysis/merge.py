"""Merge per-job parquet files into one table."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from ..energy import gates


def merge_parquets(paths: Sequence[str]) -> pd.DataFrame:
    if not paths:
        raise ValueError("nothing to merge: the sweep produced no job outputs")
    frames = [pd.read_parquet(p).assign(source_file=str(p)) for p in paths]
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
    frames = [pd.read_parquet(p).assign(source="measured", source_file=str(p)) for p in measured]
    frames += [pd.read_parquet(p).assign(source="reference", source_file=str(p)) for p in reference]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame({"source": pd.Series(dtype=str), "workload": pd.Series(dtype=str)})
    # gates are re-applied here so every row, old reference data included, meets today's rules
    return gates.apply(pd.concat(frames, ignore_index=True, sort=False))
