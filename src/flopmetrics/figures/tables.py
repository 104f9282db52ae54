"""A figure's input tables, as its plot function gets them."""

from __future__ import annotations

import pandas as pd


class Tables(dict):
    """Input name -> DataFrame, and ``paths``: input name -> file. An input configured as none
    (an empty list) is absent. Rows of configurations that did not fit (``status = oom``) are
    left out: they have no measurements to draw."""

    def __init__(self, files: dict):
        files = {
            name: str(path) for name, path in files.items() if isinstance(path, str) or len(path)
        }
        super().__init__(
            {name: _drawable(pd.read_parquet(path), path) for name, path in files.items()}
        )
        self.paths = files


def _drawable(table: pd.DataFrame, path: str) -> pd.DataFrame:
    if "status" not in table:
        return table
    oom = table["status"].eq("oom")
    if oom.any():
        configs = table.loc[oom, "config_hash"].nunique() if "config_hash" in table else "?"
        print(f"{path}: not drawn: {oom.sum()} rows of {configs} configurations that did not fit")
    return table[~oom].reset_index(drop=True)
