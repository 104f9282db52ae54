"""Slurm resources of a profiling job, from the config's ``slurm`` block: the one place where a
site maps GPU targets to partitions, gres/gpu types, constraints and accounts."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from ..contracts.errors import ConfigError


def slurm_resources(config: dict, target: str, strict: bool = True, gpus: int = 1) -> dict:
    """Slurm resources of a profiling job on ``target``, from config ``slurm`` (the one place
    where a site maps GPU targets to partitions, gres/gpu types, constraints and accounts).

    ``gpu_request: gres`` asks ``--gres=gpu:<type>:<n>``; ``gpus`` asks ``--gpus=<model>:<n>``
    (the plugin's ``gpu``/``gpu_model``); ``<n>`` is ``gpus``, the ranks of a distributed job, all
    on one node. Unset values are empty strings / 0, which the Slurm
    plugin leaves out of ``sbatch``. ``strict=False`` (local execution) lets a target
    without a mapping through with empty values.
    """
    s = config["slurm"]
    res = {
        "slurm_partition": "",
        "constraint": "",
        "slurm_account": "",
        "gres": "",
        "gpu": 0,
        "gpu_model": "",
    }
    if target == "cpu":
        res["slurm_partition"] = s["cpu"].get("partition") or ""
        res["slurm_account"] = s["cpu"].get("account") or ""
        return res
    arch = s["targets"].get(target)
    if arch is None and not strict:
        return res  # local runs need no cluster mapping
    if arch is None:
        raise ConfigError(
            f"config error at slurm.targets: no entry for GPU target {target!r} "
            f"(known: {sorted(s['targets'])}); add its partition and gres type"
        )
    gpu_type = arch.get("gpu_type") or target
    res.update(
        slurm_partition=arch.get("partition") or "",
        constraint=arch.get("constraint") or "",
        slurm_account=arch.get("account") or s.get("account") or "",
    )
    if s["gpu_request"] == "gres":
        res["gres"] = f"gpu:{gpu_type}:{gpus}"
    else:
        res.update(gpu=gpus, gpu_model=gpu_type)
    return res


def requested_executor(argv: list[str], environ=os.environ) -> str | None:
    """The executor a ``snakemake`` command line asks for (``--executor``/``-e``, else the
    ``executor:`` of its ``--profile`` or ``$SNAKEMAKE_PROFILE``), dry runs included: Snakemake
    hands a dry run's jobs to its own dry-run executor, so only the command tells that a
    cluster was meant. None where it names none."""
    named = _option(argv, "--executor", "-e")
    if named:
        return named
    profile = _option(argv, "--profile") or environ.get("SNAKEMAKE_PROFILE")
    if not profile:
        return None
    for folder in (Path(profile), Path.home() / ".config/snakemake" / profile):
        for name in ("config.v9+.yaml", "config.v8+.yaml", "config.yaml"):
            if (folder / name).is_file():
                return (yaml.safe_load((folder / name).read_text()) or {}).get("executor")
    return None


def _option(argv: list[str], *names: str) -> str | None:
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name and i + 1 < len(argv):
                return argv[i + 1]
            if arg.startswith(f"{name}=") and name.startswith("--"):
                return arg.split("=", 1)[1]
    return None


def check_mapped(config: dict, targets, executor: str | None) -> None:
    """Fail now, dry runs included, where a cluster executor is asked for and a GPU target has
    no ``slurm.targets`` entry (the submission would refuse it after the DAG was built)."""
    if executor not in ("slurm",):
        return
    for target in sorted(set(targets) - {"cpu"}):
        slurm_resources(config, target, strict=True)
