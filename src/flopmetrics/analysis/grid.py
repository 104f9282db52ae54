"""Grid carbon intensity by country or region code (``co2e.grid: DE``, ``estimate --grid DE``)
from the bundled, cited and dated table ``data/grid_intensity.yaml`` (Electricity Maps 2025 per
zone; WORLD: Ember's 2023 world average), or a number the user gives with its source."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml

DEFAULT = "WORLD"


@dataclass(frozen=True)
class Grid:
    """One grid intensity and where it comes from: the source and its year go with every
    kg CO2e (``grid_intensity_source``)."""

    code: str
    g_per_kwh: float
    source: str


@cache
def table() -> dict:
    text = resources.files("flopmetrics").joinpath("data/grid_intensity.yaml").read_text()
    return yaml.safe_load(text)


def codes() -> list[str]:
    return sorted(table()["zones"])


def lookup(code: str) -> Grid:
    """The zone ``code`` (any case, e.g. DE, us-cal-ciso) or a ValueError naming the nearest
    codes."""
    zones = table()["zones"]
    key = code.upper()
    if key not in zones:
        near = difflib.get_close_matches(key, codes(), n=4, cutoff=0.5)
        hint = f"; did you mean {', '.join(near)}?" if near else ""
        raise ValueError(
            f"grid {code!r} is not in the bundled table of {len(zones)} zones "
            f"(flopmetrics/data/grid_intensity.yaml){hint}"
        )
    code, z = key, zones[key]
    source = table()["sources"][z["source"]]
    return Grid(code, float(z["g_per_kwh"]), f"{code} ({z['name']}): {source}, {z['year']}")


def resolve(co2e: dict) -> Grid:
    """The intensity a ``co2e`` config section asks for: its own number with its source where
    it gives one (``grid_intensity_g_per_kwh``), else its ``grid`` code's."""
    own = co2e.get("grid_intensity_g_per_kwh")
    if own is not None:
        return Grid("", float(own), co2e["grid_intensity_source"])
    return lookup(co2e.get("grid", DEFAULT))


def problems(co2e: dict) -> list[tuple[str, str]]:
    """``(config key, message)`` for what a ``co2e`` section gets wrong: a grid code the table
    lacks; a number of one's own without its source, or beside a code (which would count?)."""
    own = co2e.get("grid_intensity_g_per_kwh")
    code = co2e.get("grid", DEFAULT)
    if own is None:
        try:
            lookup(code)
        except ValueError as err:
            return [("co2e.grid", str(err))]
        return []
    out = []
    if not co2e.get("grid_intensity_source"):
        out.append(
            (
                "co2e.grid_intensity_source",
                f"co2e.grid_intensity_g_per_kwh {own} needs its source (every kg CO2e names it)",
            )
        )
    if code != DEFAULT:
        out.append(
            (
                "co2e.grid",
                f"{code!r} and co2e.grid_intensity_g_per_kwh {own} are both set: give one",
            )
        )
    return out
