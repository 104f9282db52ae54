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
    from .models import ModelConfigError, resolve
    from .targets import TargetError, resolve_target

    for section in ("mlp", "llm", "matmul"):
        key = "devices" if section == "mlp" else "targets"
        for i, target in enumerate(config.get(section, {}).get(key, [])):
            try:
                resolve_target(target)
            except TargetError as err:
                raise ConfigError(f"config error at {section}.{key}[{i}]: {err}") from None
    names = {}
    for i, spec in enumerate(config.get("llm", {}).get("models", [])):
        try:
            name, _ = resolve(spec)
        except ModelConfigError as err:
            raise ConfigError(f"config error at llm.models[{i}]: {err}") from None
        if name in names:
            raise ConfigError(f"config error at llm.models[{i}]: model name {name!r} used twice")
        names[name] = spec
    for i, w in enumerate(config.get("co2e", {}).get("workloads", [])):
        try:
            resolve(w["model"])
            resolve_target(w["gpu"])
        except (ModelConfigError, TargetError) as err:
            raise ConfigError(f"config error at co2e.workloads[{i}]: {err}") from None
    style = config.get("figures", {}).get("mlp_flops_vs_d", {})
    for key in ("n", "m"):
        chosen = style.get(key)
        if chosen is not None and chosen not in config["mlp"][key]:
            raise ConfigError(
                f"config error at figures.mlp_flops_vs_d.{key}: {chosen} is not in the sweep "
                f"mlp.{key} = {config['mlp'][key]} (pick one of those, or null for the largest)"
            )


def all_targets(config: dict) -> list[tuple[str, str]]:
    """(config key, target) of every experiment that runs somewhere."""
    out = [("mlp.devices", t) for t in config["mlp"]["devices"]]
    out += [(f"{s}.targets", t) for s in ("llm", "matmul") for t in config.get(s, {}).get("targets", [])]
    return out


def check_devices(devices, cuda_available=None, cuda_count=None, key="mlp.devices") -> None:
    """Fail if a requested device does not exist here (``cuda`` with no GPU, ``cuda:3`` of 2).
    GPU labels (``h100``) need a GPU too; which one is checked by the job itself."""
    wanted = [d for d in devices if d != "cpu"]
    if not wanted:
        return
    if cuda_available is None or cuda_count is None:
        import torch

        cuda_available = torch.cuda.is_available()
        cuda_count = torch.cuda.device_count() if cuda_available else 0
    for dev in wanted:
        if not cuda_available:
            raise ConfigError(
                f"config error at {key}: {dev!r} requested but no CUDA GPU is available on this machine "
                "(torch.cuda.is_available() is False). Use 'cpu', or set execution.check_devices: false "
                "if jobs run on other (GPU) nodes."
            )
        index = int(dev.split(":")[1]) if dev.startswith("cuda:") else 0
        if index >= cuda_count:
            raise ConfigError(f"config error at {key}: {dev!r} requested but only {cuda_count} GPU(s) exist")


MLP_JOB_KEYS = ("repeats", "min_window_s", "warmup_iterations", "seed", "profiler_flops")
ENERGY_KEYS = ("meter", "sampler_hz", "guard_s", "idle_baseline_s")


def mlp_grid(mlp: dict) -> list[dict]:
    """All (device, dtype, n, d, m) combinations of the MLP sweep, in a stable order."""
    return [
        {"device": dev, "dtype": dt, "n": n, "d": d, "m": m}
        for dev, dt, n, d, m in itertools.product(mlp["devices"], mlp["dtypes"], mlp["n"], mlp["d"], mlp["m"])
    ]


def mlp_job_params(mlp: dict, device: str, dtype: str, n: int, d: int, m: int, energy: dict | None = None,
                   run_on_cpu: bool = False) -> dict:
    """Everything one profiling job needs; exactly this reaches the job via ``params``."""
    params = {"device": device, "dtype": dtype, "n": int(n), "d": int(d), "m": int(m), **{k: mlp[k] for k in MLP_JOB_KEYS}}
    if run_on_cpu:
        params["run_on_cpu"] = True
    if energy is not None and device != "cpu":
        # energy settings reach only GPU jobs: editing them leaves CPU MLP jobs alone
        params.update({k: energy[k] for k in ENERGY_KEYS})
    return params


def model_specs(config: dict) -> dict:
    """Model wildcard name -> spec (preset name, config.json path or inline mapping)."""
    from .models import resolve

    return {resolve(spec)[0]: spec for spec in config["llm"]["models"]}


def llm_grid(llm: dict) -> list[dict]:
    from .models import resolve

    names = [resolve(s)[0] for s in llm["models"]]
    return [
        {"target": t, "model": mo, "precision": p, "batch": b, "seq": s}
        for t, mo, p, b, s in itertools.product(llm["targets"], names, llm["precisions"], llm["batch_size"], llm["seq_len"])
    ]


def llm_job_params(config: dict, target, model, precision, batch, seq) -> dict:
    llm = config["llm"]
    keys = ("passes", "attn_implementation", "attention_flops", "profiler_flops", "repeats", "min_window_s",
            "warmup_iterations", "seed")
    return {"target": target, "model": model_specs(config)[model], "precision": precision, "batch_size": int(batch),
            "seq_len": int(seq), **{k: llm[k] for k in keys}, "energy": dict(config["energy"]),
            **_cpu_flag(config)}


def _cpu_flag(config: dict) -> dict:
    # only present when on, so turning it on reruns exactly the jobs it changes
    return {"run_on_cpu": True} if config["execution"].get("run_on_cpu") else {}


def matmul_grid(mm: dict) -> list[dict]:
    return [{"target": t, "precision": p, "size": n}
            for t, p, n in itertools.product(mm["targets"], mm["precisions"], mm["sizes"])]


def matmul_job_params(config: dict, target, precision, size) -> dict:
    mm = config["matmul"]
    return {"target": target, "precision": precision, "size": int(size),
            **{k: mm[k] for k in ("repeats", "min_window_s", "warmup_iterations", "seed")},
            "energy": dict(config["energy"]), **_cpu_flag(config)}


def slurm_resources(config: dict, target: str, strict: bool = True) -> dict:
    """Slurm resources of a profiling job on ``target``, from config ``slurm`` (the one place
    where a site maps architectures to partitions, gres/gpu types, constraints and accounts).

    ``gpu_request: gres`` asks ``--gres=gpu:<type>:<n>``; ``gpus`` asks ``--gpus=<model>:<n>``
    (the plugin's ``gpu``/``gpu_model``). Unset values are empty strings / 0, which the Slurm
    plugin leaves out of ``sbatch``. ``strict=False`` (local execution) lets a target
    without a mapping through with empty values.
    """
    s = config["slurm"]
    res = {"slurm_partition": "", "constraint": "", "slurm_account": "", "gres": "", "gpu": 0, "gpu_model": ""}
    if target == "cpu":
        res["slurm_partition"] = s["cpu"].get("partition") or ""
        res["slurm_account"] = s["cpu"].get("account") or ""
        return res
    arch = s["architectures"].get(target)
    if arch is None and not strict:
        return res  # local runs need no cluster mapping
    if arch is None:
        raise ConfigError(
            f"config error at slurm.architectures: no entry for GPU target {target!r} "
            f"(known: {sorted(s['architectures'])}); add its partition and gres type"
        )
    gpu_type = arch.get("gpu_type") or target
    res.update(slurm_partition=arch.get("partition") or "", constraint=arch.get("constraint") or "",
               slurm_account=arch.get("account") or s.get("account") or "")
    if s["gpu_request"] == "gres":
        res["gres"] = f"gpu:{gpu_type}:1"
    else:
        res.update(gpu=1, gpu_model=gpu_type)
    return res
