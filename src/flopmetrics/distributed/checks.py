"""Parse-time checks of the ``distributed`` section that its schema cannot express (named by
the experiment registry, run by the pipeline before any job): strong scaling splits each batch
evenly over the ranks, and Zeus watches GPUs only."""

from __future__ import annotations

from ..contracts.errors import ConfigError


def check(config: dict) -> None:
    ds = config.get("distributed", {})
    if not ds.get("targets"):
        return
    if "strong" in ds["scaling"]:
        for b in ds["batch_size"]:
            for n in ds["world_size"]:
                if b % n:
                    raise ConfigError(
                        f"config error at distributed.batch_size: {b} cannot be split evenly "
                        f"over world_size {n} ranks (strong scaling: batch_size is the batch of "
                        "all ranks)"
                    )
    if not ds["zeus"]:
        return
    for i, target in enumerate(ds["targets"]):
        on_cpu = "execution.run_on_cpu is on" if config["execution"]["run_on_cpu"] else ""
        on_cpu = on_cpu or ("it is the CPU" if target == "cpu" else "")
        if on_cpu:
            raise ConfigError(
                f"config error at distributed.zeus: Zeus watches GPUs, but "
                f"distributed.targets[{i}] = {target!r} runs on the CPU ({on_cpu}); set it false"
            )
