"""How far a fitted step-time model misses measured steps it was not fitted on: rows of other
models (:func:`heldout_bound`), or of sizes a fit left out (:func:`left_out_misses`), as the
95th percentile its intervals carry (:func:`q95`)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .steptime import BOUNDS, LEVEL, kind_of, predict, step, table_of
from .steptime_fit import fit


def heldout_bound(calibration: dict, rows: list[dict]) -> dict:
    """The calibration's misses on measured rows of models it was not fitted on (each with
    ``ops``, ``energy_j`` and ``row``), as an interval's bound: their 95th percentile
    (``heldout_q95``), and apart for the rows of each bound the model predicts
    (``heldout_q95_<bound>``: a host-bound step of a new family misses more), median, largest,
    how many above 10 %, count and models. Rows it refuses are not counted."""
    return misses_bound(heldout_misses(calibration, rows))


def misses_bound(judged: pd.DataFrame) -> dict:
    """:func:`heldout_bound`'s columns from judged rows (:func:`heldout_misses`)."""
    misses, bounds = judged["miss"].to_numpy(float), judged["bound"].to_numpy(str)
    models = set(judged["model"])
    return {
        "heldout_q95": q95(misses),
        **{f"heldout_q95_{b}": q95(misses[bounds == b]) for b in BOUNDS},
        "heldout_median": float(np.median(misses)) if len(misses) else math.nan,
        "heldout_max": float(misses.max()) if len(misses) else math.nan,
        "heldout_over_10pct": int((misses > 0.10).sum()),
        "heldout_n": len(misses),
        "heldout_models": ",".join(sorted(models)),
    }


def summary(judged: pd.DataFrame) -> str:
    """Judged rows (:func:`heldout_misses`) in a log's words."""
    m = 100 * judged["miss"].to_numpy(float)
    if not len(m):
        return "no rows answered"
    return (
        f"{len(m)} rows, median miss {np.median(m):.1f} %, largest {m.max():.1f} %, "
        f"{int((m > 10).sum())} above 10 %"
    )


# a judged step's columns: what it is, what was measured and predicted, and the miss
STEP_COLUMNS = (
    *("model", "precision", "pass", "batch_size", "seq_len", "bound"),
    *("energy_j_measured", "energy_j_predicted", "time_s_measured", "time_s_predicted"),
    *("signed_miss", "miss"),
)


def heldout_misses(calibration: dict, rows: list[dict]) -> pd.DataFrame:
    """Each row the calibration answers for (each with ``ops``, ``energy_j``, ``time_s`` and
    ``row``) in :data:`STEP_COLUMNS`: its relative energy miss (``miss``; ``signed_miss`` is
    predicted over measured, less 1), the bound the model predicts (``bound``), what it is and
    what was measured and predicted."""
    out = []
    for r in rows:
        est = predict({**calibration, "heldout_q95": math.nan}, r["ops"])
        if "status" not in est:
            error = est["energy_j"] / r["energy_j"] - 1
            out.append(
                {
                    **{k: r["row"][k] for k in ("model", "precision", "pass")},
                    **{k: int(r["row"][k]) for k in ("batch_size", "seq_len")},
                    "bound": est["bound"],
                    "energy_j_measured": r["energy_j"],
                    "energy_j_predicted": est["energy_j"],
                    "time_s_measured": r["time_s"],
                    "time_s_predicted": est["time_s"],
                    "signed_miss": error,
                    "miss": abs(error),
                }
            )
    return pd.DataFrame(out, columns=list(STEP_COLUMNS)).astype({"model": str})


def left_out_misses(
    rows: list[dict], label: str, precision: str, held: dict | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The relative energy misses of fits that leave one batch size, or one length, out, on
    the rows they left out (how far the fit carries beyond what it saw, measured on the
    calibration's own rows), and each row's slower kind (:func:`kind_of`)."""
    misses, kinds = [], []
    for key in ("batch_size", "seq_len"):
        values = sorted({r["row"][key] for r in rows})
        for value in values if len(values) > 1 else []:
            p = fit([r for r in rows if r["row"][key] != value], label, precision, held)
            for r in (r for r in rows if r["row"][key] == value):
                e = step(p, r["ops"], r["idle_w"], r["limit_w"])[0]
                misses.append(abs(e / r["energy_j"] - 1))
                kinds.append(kind_of(r["ops"], table_of(held or {})))
    return np.asarray(misses), np.asarray(kinds, str)


def q95(misses: np.ndarray) -> float:
    """The split-conformal bound: the misses' 95th percentile, rounded up to one of them."""
    return float(np.quantile(misses, LEVEL, method="higher")) if len(misses) else math.nan
