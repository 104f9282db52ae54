"""Command-line values checked as the config checks them: the bounds are read from the schema,
so an option and its config key can never disagree."""

from __future__ import annotations

import argparse
import math
import operator
from functools import cache

from ..contracts.schema import load

BOUNDS = (
    ("minimum", operator.lt, "at least"),
    ("exclusiveMinimum", operator.le, "above"),
    ("maximum", operator.gt, "at most"),
    ("exclusiveMaximum", operator.ge, "below"),
)


@cache
def schema_property(path: str) -> dict:
    """The schema of config key ``path`` (``co2e.pue``; ``co2e.workloads[].tokens`` for a
    key of a list's items)."""
    node = load()
    for part in path.split("."):
        node = node["properties"][part.removesuffix("[]")]
        if part.endswith("[]"):
            node = node["items"]
    return node


def from_schema(path: str):
    """An argparse ``type`` that reads a number and refuses what config key ``path`` refuses
    (argparse then names the option, and exits 2)."""
    prop = schema_property(path)
    integer = prop.get("type") == "integer"

    def parse(text: str):
        try:
            value = int(text) if integer else float(text)
        except ValueError:
            kind = "an integer" if integer else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind} ({path})") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number ({path})")
        for key, violates, words in BOUNDS:
            if key in prop and violates(value, prop[key]):
                raise argparse.ArgumentTypeError(
                    f"{text} must be {words} {prop[key]} (as the config's {path})"
                )
        return value

    parse.schema_path = path  # the test of every bounded option finds them by it
    parse.__name__ = "number"
    return parse
