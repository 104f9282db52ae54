"""Validate the workflow configuration, filling in the schema's defaults (the only place
defaults live), and check what a schema cannot express.

Validation fails before any job runs, with a message naming the key path and the value,
e.g. ``config error at mlp.d[2]: -4 is less than the minimum of 1``.
"""

from __future__ import annotations

import re
from pathlib import Path

import jsonschema

from ..contracts import schema as contracts_schema
from ..contracts.errors import ConfigError
from ..contracts.experiments import EXPERIMENTS
from ..contracts.schema import FillingValidator
from ..figures.registry import style_schema
from .checks import check_consistency


def _key_path(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


# old config key -> its name now (config/README.md, "Renamed keys and columns"); "[]" stands for
# every item of a list
RENAMED_KEYS = {
    "mlp.devices": "mlp.targets",
    "mlp.dtypes": "mlp.precisions",
    "calibration.workloads": "calibration.experiments",
    "figures.energy_efficiency.workload": "figures.energy_efficiency.experiment",
    "co2e.workloads[].gpu": "co2e.workloads[].target",
    "slurm.architectures": "slurm.targets",
}


def _holders(config, parts: list[str]):
    """``(path, mapping)`` of every mapping the key path ``parts`` (but its last) leads to."""
    found = [("", config)]
    for part in parts:
        nxt = []
        for where, node in found:
            name = part.removesuffix("[]")
            value = node.get(name) if isinstance(node, dict) else None
            if part.endswith("[]") and isinstance(value, list):
                nxt += [(f"{where}{name}[{i}].", item) for i, item in enumerate(value)]
            elif isinstance(value, dict):
                nxt.append((f"{where}{name}.", value))
        found = nxt
    return found


def check_renamed(config: dict) -> None:
    """An old key fails with the key it was renamed to (before the schema reports it unknown)."""
    found = []
    for old, new in RENAMED_KEYS.items():
        *parents, key = old.split(".")
        for where, holder in _holders(config, parents):
            if isinstance(holder, dict) and key in holder:
                renamed = f"{where}{new.rsplit('.', 1)[-1]}"
                found.append(
                    f"config key {where}{key} was renamed to {renamed}: rename it in your "
                    "config (config/README.md, 'Renamed keys and columns')"
                )
    if found:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(found))


def load_schema(path: str | Path | None = None) -> dict:
    """The config schema (``path``, by default the package's ``data/config.schema.yaml``: the one
    place defaults live, for the workflow, the API and the command alike) with its ``figures``
    block filled in from the figure registry (each figure's style keys and defaults live with
    it)."""
    schema = contracts_schema.load(path)
    schema["properties"]["figures"]["properties"] = style_schema()
    return schema


def numbers_from_strings(config: dict, validator) -> None:
    """Snakemake hands nested ``--config`` values over as strings (``--config 'co2e={"pue": 1.2}'``
    gives ``'1.2'``): where the schema wants a number and the string is one, use the number."""
    for err in list(validator.iter_errors(config)):
        if err.validator != "type" or not isinstance(err.instance, str) or not err.absolute_path:
            continue
        types = (
            set(err.validator_value)
            if isinstance(err.validator_value, list)
            else {err.validator_value}
        )
        if not types & {"number", "integer"}:
            continue
        text = err.instance.strip()
        try:
            value = (
                int(text) if "integer" in types and re.fullmatch(r"[+-]?\d+", text) else float(text)
            )
        except ValueError:
            continue  # not a number: the error stands, naming key and value
        *parents, last = err.absolute_path
        target = config
        for key in parents:
            target = target[key]
        target[last] = value


def validate(config: dict, schema: dict) -> dict:
    """Validate ``config`` in place (defaults filled in) or raise :class:`ConfigError`.

    All violations are reported at once, each with its key path and offending value.
    """
    check_renamed(config)
    validator = jsonschema.Draft202012Validator(schema)
    numbers_from_strings(config, validator)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = []
        for err in errors:
            where = _key_path(err.absolute_path)
            if err.validator == "additionalProperties":
                extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
                where_unknown = ", ".join(f"{where}.{k}" if err.absolute_path else k for k in extra)
                allowed = sorted(err.schema.get("properties", {}))
                lines.append(f"unknown config key {where_unknown} (allowed: {allowed})")
            else:
                lines.append(f"config error at {where}: {err.message}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines))
    for _ in FillingValidator(schema).iter_errors(
        config
    ):  # valid already: this only fills defaults
        pass
    check_consistency(config)
    return config


def all_targets(config: dict) -> list[tuple[str, str]]:
    """(config key, target) of every experiment that runs somewhere."""
    return [
        (f"{e.name}.targets", t)
        for e in EXPERIMENTS
        for t in config.get(e.name, {}).get("targets", [])
    ]
