"""Merge per-job parquet files into one table."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd


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
