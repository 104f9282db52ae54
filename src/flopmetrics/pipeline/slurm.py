"""Slurm resources of a profiling job, from the config's ``slurm`` block: the one place where a
site maps GPU targets to partitions, gres/gpu types, constraints and accounts."""

from __future__ import annotations

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
