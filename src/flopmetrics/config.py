"""Validate the workflow configuration and expand its sweeps into jobs.

Validation fails before any job runs, with a message naming the key path and the value,
e.g. ``config error at mlp.d[2]: -4 is less than the minimum of 1``.
"""

from __future__ import annotations

import copy
import itertools
from pathlib import Path

import jsonschema
import yaml


class ConfigError(ValueError):
    pass


def _key_path(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


def _fill_defaults(instance, schema) -> None:
    """Insert schema ``default`` values for absent keys, recursively through objects."""
    if not isinstance(instance, dict):
        return
    for key, sub in schema.get("properties", {}).items():
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if key in instance:
            _fill_defaults(instance[key], sub)


def load_schema(path: str | Path) -> dict:
    return yaml.safe_load(Path(path).read_text())


def validate(config: dict, schema: dict) -> dict:
    """Validate ``config`` in place (defaults filled in) or raise :class:`ConfigError`.

    All violations are reported at once, each with its key path and offending value.
    """
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = []
        for err in errors:
            where = _key_path(err.absolute_path)
            if err.validator == "additionalProperties":
                extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
                where_unknown = ", ".join(f"{where}.{k}" if err.absolute_path else k for k in extra)
                lines.append(f"unknown config key {where_unknown} (allowed: {sorted(err.schema.get('properties', {}))})")
            else:
                lines.append(f"config error at {where}: {err.message}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines))
    _fill_defaults(config, schema)
    check_consistency(config)
    return config


def check_consistency(config: dict) -> None:
    """Cross-key checks that a schema cannot express."""
    style = config.get("figures", {}).get("mlp_flops_vs_d", {})
    for key in ("n", "m"):
        chosen = style.get(key)
        if chosen is not None and chosen not in config["mlp"][key]:
            raise ConfigError(
                f"config error at figures.mlp_flops_vs_d.{key}: {chosen} is not in the sweep "
                f"mlp.{key} = {config['mlp'][key]} (pick one of those, or null for the largest)"
            )


def check_devices(devices, cuda_available=None, cuda_count=None) -> None:
    """Fail if a requested device does not exist here (``cuda`` with no GPU, ``cuda:3`` of 2)."""
    wanted = [d for d in devices if d.startswith("cuda")]
    if not wanted:
        return
    if cuda_available is None or cuda_count is None:
        import torch

        cuda_available = torch.cuda.is_available()
        cuda_count = torch.cuda.device_count() if cuda_available else 0
    for dev in wanted:
        if not cuda_available:
            raise ConfigError(
                f"config error at mlp.devices: {dev!r} requested but no CUDA GPU is available on this machine "
                "(torch.cuda.is_available() is False). Use 'cpu', or set execution.check_devices: false "
                "if jobs run on other (GPU) nodes."
            )
        index = int(dev.split(":")[1]) if ":" in dev else 0
        if index >= cuda_count:
            raise ConfigError(f"config error at mlp.devices: {dev!r} requested but only {cuda_count} GPU(s) exist")


MLP_JOB_KEYS = ("repeats", "min_window_s", "warmup_iterations", "seed", "profiler_flops")


def mlp_grid(mlp: dict) -> list[dict]:
    """All (device, dtype, n, d, m) combinations of the MLP sweep, in a stable order."""
    return [
        {"device": dev, "dtype": dt, "n": n, "d": d, "m": m}
        for dev, dt, n, d, m in itertools.product(mlp["devices"], mlp["dtypes"], mlp["n"], mlp["d"], mlp["m"])
    ]


def mlp_job_params(mlp: dict, device: str, dtype: str, n: int, d: int, m: int) -> dict:
    """Everything one profiling job needs; exactly this reaches the job via ``params``."""
    return {"device": device, "dtype": dtype, "n": int(n), "d": int(d), "m": int(m), **{k: mlp[k] for k in MLP_JOB_KEYS}}
