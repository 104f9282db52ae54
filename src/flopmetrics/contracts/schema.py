"""The config schema in the package (``data/config.schema.yaml``): the one place defaults live,
for the workflow, the API and the command alike. The figure blocks are not in the file: the
pipeline adds them from the figure registry (:func:`flopmetrics.pipeline.config.load_schema`)."""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path

import jsonschema
import jsonschema.validators
import yaml


def _set_defaults(validator, properties, instance, schema):
    """The ``properties`` keyword, which also inserts each absent property's ``default``:
    validation reaches every object of the config, list items included."""
    if isinstance(instance, dict):
        for key, sub in properties.items():
            if key not in instance and isinstance(sub, dict) and "default" in sub:
                instance[key] = copy.deepcopy(sub["default"])
    yield from _PROPERTIES(validator, properties, instance, schema)


_PROPERTIES = jsonschema.Draft202012Validator.VALIDATORS["properties"]
FillingValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator, {"properties": _set_defaults}
)


def packaged_text() -> str:
    return resources.files("flopmetrics").joinpath("data/config.schema.yaml").read_text()


def load(path: str | Path | None = None) -> dict:
    """The schema at ``path``, by default the packaged one (its ``figures`` block still empty)."""
    return yaml.safe_load(Path(path).read_text() if path else packaged_text())


def defaults(block: str) -> dict:
    """The schema's defaults of one top-level block (``energy``, ``co2e``, ...)."""
    filled: dict = {}
    for _ in FillingValidator(yaml.safe_load(packaged_text())["properties"][block]).iter_errors(
        filled
    ):
        pass  # the validator fills defaults in as it walks
    return filled
