"""The card-to-card spread: how far the same configuration measured on another card of the same
kind lands (issue 31).

Rows of one configuration measured on several cards (``gpu_uuid``) give each card's mean energy
per iteration; the spread is the relative standard deviation of those means (it includes the
run-to-run spread of one card, since every card is another run). Each card's temperature is kept
beside it and the spread's dependence on it fitted (statsmodels OLS), so that a warm card is not
mistaken for another card. A configuration measured on fewer than ``min_cards`` cards has no
spread of its own: the largest measured spread of its kind stands in (:func:`spread_for`), and
says so.
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
]


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
    out = []
    for key, cards in per_card.groupby(level=keys, dropna=False, sort=True):
        cards = cards.droplevel(keys)
        out.append({**dict(zip(keys, key, strict=True)), **_spread(cards)})
    return pd.DataFrame(out, columns=[*keys, *COLUMNS])


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
