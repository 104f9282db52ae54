"""The card-to-card spread: how far the same configuration measured on another card of the same
kind lands (issue 31); and the job-to-job change of steps waiting on the host (issue 32).

Rows of one configuration measured on several cards (``gpu_uuid``) give each card's mean energy
per iteration; the spread is the relative standard deviation of those means (it includes the
run-to-run spread of one card, since every card is another run). Each card's temperature is kept
beside it and the spread's dependence on it fitted (statsmodels OLS), so that a warm card is not
mistaken for another card. A configuration measured on fewer than ``min_cards`` cards has no
spread of its own: the largest measured spread of its kind stands in (:func:`spread_for`), and
says so.

A step that keeps the GPU busy repeats within a few per cent. One that draws little of the power
the cap allows above idle (its duty, :func:`duty`, below :data:`LOW_DUTY`) waits on the host's
launching, and the same configuration measured again, in another job on the same card, moved by
up to 50 % (``resources/reference/h200_repeat_host``). Each measurement (a job: its card and
start time) of a configuration is therefore kept too, with its duty, and :func:`repeat_for`
takes the 95th percentile of the changes between two measurements of one configuration, over
every configuration measured twice or more at a low duty on a GPU.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import statsmodels.api as sm

from .merge import with_single, without_ranks

# what makes two rows the same configuration (those of them a table has; not ``experiment``,
# which rows from before it was a column lack: the workload's own columns tell it)
CONFIG = [
    "gpu_label",
    "model",
    "batch_size",
    "seq_len",
    "n",
    "d",
    "m",
    "size",
    "precision",
    "pass",
    "launch",
    "world_size",
    "strategy",
]
COLUMNS = [
    "cards",
    "card_sd_pct",
    "card_min_j",
    "card_max_j",
    "temperature_min_c",
    "temperature_max_c",
    "temperature_slope_pct_per_c",
    "temperature_slope_p",
    "card_sd_pct_at_equal_temperature",
    "gpu_uuids",
    "measurements",  # jobs: a card and a start time
    "measurement_j",  # each job's energy per iteration, comma-separated
    "duty_max",  # the largest duty of its jobs (:func:`duty`)
]
# a step drawing less than this share of the power the cap allows above idle waits on the host
LOW_DUTY = 0.5
LEVEL = 0.95


def measured_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Gated rows with a finite energy and a card's UUID: the node rows of distributed jobs."""
    rows = without_ranks(with_single(rows))
    ok = rows["gpu_uuid"].notna() & np.isfinite(rows["energy_j_per_iter"].astype(float))
    if "gates_passed" in rows:
        ok &= rows["gates_passed"].astype(bool)
    return rows[ok]


def card_spread(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration: the cards that measured it, their spread and temperatures
    (no rows: an empty table, and every interval says the spread was not measured)."""
    if rows.empty or not {"gpu_uuid", "energy_j_per_iter"} <= set(rows.columns):
        return pd.DataFrame(columns=[*CONFIG, *COLUMNS])
    rows = measured_rows(rows)
    keys = [c for c in CONFIG if c in rows]
    # each card's mean in one grouping: a grouping per configuration took seconds
    per_card = rows.groupby([*keys, "gpu_uuid"], dropna=False, sort=True).agg(
        energy=("energy_j_per_iter", "mean"), temperature=("temperature_max_c", "mean")
    )
    # the same rows and keys: both groupings hold the same configurations in the same order
    per_job = _jobs(rows, keys).groupby(level=keys, dropna=False, sort=True)
    out = []
    groups = per_card.groupby(level=keys, dropna=False, sort=True)
    for (key, cards), (_, jobs) in zip(groups, per_job, strict=True):
        cards = cards.droplevel(keys)
        out.append({**dict(zip(keys, key, strict=True)), **_spread(cards), **_repeats(jobs)})
    return pd.DataFrame(out, columns=[*keys, *COLUMNS])


def _jobs(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Each measurement's mean energy and duty: a job is a card and the time it started (rows
    without a start time: one job per card). Derived rows (a difference of two passes) are no
    measurement of their own."""
    start = rows["timestamp_utc"] if "timestamp_utc" in rows else pd.Series("", index=rows.index)
    derived = (
        rows["derived"].fillna(False).astype(bool)
        if "derived" in rows
        else pd.Series(False, index=rows.index)
    )
    energy = rows["energy_j_per_iter"].astype(float).where(~derived)  # no measurement: NaN
    rows = rows.assign(job=start.fillna("").astype(str), duty=duty(rows), measured_j=energy)
    return rows.groupby([*keys, "gpu_uuid", "job"], dropna=False, sort=True).agg(
        energy=("measured_j", "mean"), duty=("duty", "mean")
    )


def duty(rows: pd.DataFrame) -> pd.Series:
    """The share of the power the cap allows above idle that each row's step drew (NaN where a
    row lacks its mean power, idle power or limit)."""
    cols = ("power_mean_w", "idle_power_w", "power_limit_w")
    if not set(cols) <= set(rows.columns):
        return pd.Series(math.nan, index=rows.index)
    p, idle, limit = (pd.to_numeric(rows[c], errors="coerce") for c in cols)
    return (p - idle) / (limit - idle)


def _repeats(jobs: pd.DataFrame) -> dict:
    """How many times one configuration was measured, each measurement's energy, and its
    largest duty."""
    energy = jobs["energy"].to_numpy(float)
    energy = energy[np.isfinite(energy) & (energy > 0)]  # a ratio needs two positive numbers
    return {
        "measurements": len(energy),
        "measurement_j": ",".join(f"{e:.6g}" for e in energy),
        "duty_max": float(jobs["duty"].max()),
    }


def _spread(cards: pd.DataFrame) -> dict:
    """The spread of one configuration's cards (``cards``: each card's mean ``energy`` and
    ``temperature``, indexed by its UUID)."""
    energy = cards["energy"].to_numpy(float)
    rel = energy / energy.mean() - 1
    out = {
        "cards": len(cards),
        "card_sd_pct": 100 * float(np.std(rel, ddof=1)) if len(cards) > 1 else math.nan,
        "card_min_j": float(energy.min()),
        "card_max_j": float(energy.max()),
        "temperature_min_c": float(cards["temperature"].min()),
        "temperature_max_c": float(cards["temperature"].max()),
        "temperature_slope_pct_per_c": math.nan,
        "temperature_slope_p": math.nan,
        "card_sd_pct_at_equal_temperature": math.nan,
        "gpu_uuids": ",".join(cards.index),
    }
    temperature = cards["temperature"].to_numpy(float)
    if len(cards) >= 4 and np.isfinite(temperature).all() and np.ptp(temperature) > 0:
        fit = sm.OLS(100 * rel, sm.add_constant(temperature)).fit()
        out["temperature_slope_pct_per_c"] = float(fit.params[1])
        out["temperature_slope_p"] = float(fit.pvalues[1])
        out["card_sd_pct_at_equal_temperature"] = float(np.sqrt(fit.scale))
    return out


def spread_for(
    table: pd.DataFrame | None, config: dict, min_cards: int = 4, exact: bool = True
) -> tuple[float, int, str] | None:
    """(relative SD, cards, where it comes from) of the card spread for ``config`` (a mapping
    of the columns of :data:`CONFIG`): with ``exact``, the configuration's own where
    ``min_cards`` cards measured it; else the largest of its GPU label, precision and pass, of
    its GPU label and pass, of its GPU label, of any GPU. None where no configuration had
    ``min_cards`` cards."""
    if table is None or table.empty:
        return None
    table = table[table["cards"] >= min_cards]
    own = [c for c in CONFIG if c in table and c in config]
    levels = [
        *([("this configuration", own)] if exact else []),
        ("largest of its GPU, precision and pass", ["gpu_label", "precision", "pass"]),
        ("largest of its GPU and pass", ["gpu_label", "pass"]),
        ("largest of its GPU", ["gpu_label"]),
        ("largest of any GPU", []),
    ]
    for name, keys in levels:
        hit = table
        for k in keys:
            hit = hit[_same(hit[k], config.get(k))]
        if not hit.empty:
            top = hit.loc[hit["card_sd_pct"].idxmax()]
            where = f"{top['gpu_label']} {top['precision']} {top['pass']}"
            return (
                float(top["card_sd_pct"]) / 100,
                int(top["cards"]),
                f"{name} ({where}, {int(top['cards'])} cards)",
            )
    return None


def _same(column: pd.Series, value) -> pd.Series:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return column.isna()
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return pd.to_numeric(column, errors="coerce") == float(value)
    return column.astype(str) == str(value)


def describe(spread: tuple[float, int, str] | None) -> str:
    """The card spread as an interval's text says it."""
    if spread is None:
        return "card-to-card spread not measured for any GPU: not included"
    sd, cards, where = spread
    return f"card-to-card SD {100 * sd:.2f} % included ({where})"


def repeat_for(table: pd.DataFrame | None, gpu_label: str) -> tuple[float, int, str] | None:
    """(relative change, pairs, where it comes from) that another measurement of a step at a
    low duty on GPU ``gpu_label`` stays within, 95 times in 100: the 95th percentile of
    ``|log(E_i / E_j)|`` over every pair of measurements of one configuration, pooled over its
    configurations measured twice or more, each time below :data:`LOW_DUTY`; returned as
    ``exp(q) - 1``. None where there is none."""
    if table is None or table.empty or "measurement_j" not in table:
        return None
    hit = table[
        _same(table["gpu_label"], gpu_label)
        & (table["duty_max"] < LOW_DUTY)
        & (table["measurements"] >= 2)
    ]
    changes = [c for values in hit["measurement_j"] for c in _changes(values)]
    if not changes:
        return None
    q = float(np.quantile(changes, LEVEL))
    models = ", ".join(sorted(hit["model"].dropna().astype(str).unique())) if "model" in hit else ""
    where = (
        f"{gpu_label}: {len(hit)} configurations measured {int(hit['measurements'].sum())} "
        f"times{f' ({models})' if models else ''}"
    )
    return math.expm1(q), len(changes), where


def _changes(values: str) -> list[float]:
    """``|log(E_i / E_j)|`` of every ordered pair of one configuration's measurements."""
    log_e = np.log(np.array([float(v) for v in str(values).split(",") if v], float))
    diff = np.abs(log_e[:, None] - log_e[None, :])
    return list(diff[~np.eye(len(log_e), dtype=bool)])


def describe_repeat(found: tuple[float, int, str] | None) -> str:
    """The job-to-job change at a low duty as an interval's text says it."""
    if found is None:
        return "job-to-job change of steps waiting on the host not measured for this GPU"
    change, pairs, where = found
    return (
        f"job-to-job change of steps drawing less than {LOW_DUTY:.0%} of the power the cap "
        f"allows above idle (waiting on the host) included: {100 * change:.1f} %, the 95th "
        f"percentile over {pairs} pairs of measurements of one configuration ({where})"
    )
