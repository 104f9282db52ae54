"""Issue 32: what the step-time probes share: the calibration folders the shipped table is
fitted on, a fit made now on them (or on others), and each held-out step's miss by a fitted
table, summed up by the bound the model predicts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from flopmetrics.analysis import steptime, steptime_misses, steptime_rows
from flopmetrics.contracts import packaged

# The calibration folders the packaged step-time table was fitted on, as its provenance names
# them (without the held-out folders a pooled table was fitted on too, which the probes judge):
# a probe that refits compares with the package, not with a list that drifts from it.
_INFO = packaged.provenance()
CALIBRATION = [d for d in _INFO["steptime_fitted_from"] if d not in _INFO["steptime_heldout_from"]]


def fitted(calibration: list[str] = CALIBRATION) -> pd.DataFrame:
    """The step-time model fitted now on ``calibration``: one row per GPU label and precision."""
    return steptime_rows.calibrate_dirs(calibration, log=lambda _: None)


def judged(heldout: list[str], table: pd.DataFrame) -> pd.DataFrame:
    """Each held-out step's miss and predicted bound, by the fitted ``table``."""
    out = []
    for d in heldout:
        rows = steptime_rows.read_rows([d])
        for c in table.to_dict("records"):
            mine = rows[
                (rows["precision"] == c["precision"]) & (rows["gpu_label"] == c["gpu_label"])
            ]
            m = steptime_misses.heldout_misses(c, steptime_rows.rows_of(mine, steptime_rows.ops_of))
            out.append(m.assign(set=Path(d).name, precision=c["precision"]))
    return pd.concat(out, ignore_index=True)


def summary(df: pd.DataFrame) -> pd.DataFrame:
    pct = 100 * df["miss"]
    groups = {"all": pct, **{b: pct[df["bound"] == b] for b in steptime.BOUNDS}}
    groups["not host"] = pct[df["bound"] != "host"]
    return pd.DataFrame(
        {
            k: {
                "steps": len(v),
                "median": round(float(v.median()), 1),
                "largest": round(float(v.max()), 1),
                "above 10 %": int((v > 10).sum()),
            }
            for k, v in groups.items()
        }
    ).T
