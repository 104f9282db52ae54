"""Targets: where a job runs. ``cpu``; ``cuda`` / ``cuda:<i>`` (whatever GPU is there); or a
GPU architecture label from the datasheet (``h100``, ``a100``, ...), which runs on the GPU the
job was given and fails unless that GPU is of the named architecture."""

from __future__ import annotations

import re

from ..contracts.errors import TargetError
from ..energy import datasheet

CUDA = re.compile(r"^cuda(:\d+)?$")


def resolve_target(target: str, run_on_cpu: bool = False) -> tuple[str, str | None]:
    """``(torch device, expected GPU label or None)``. ``run_on_cpu`` (config
    ``execution.run_on_cpu``) keeps the target for dispatch but computes on the CPU: for
    testing a cluster's routing on machines without GPUs."""
    if run_on_cpu:
        resolve_target(target)  # still validate the label
        return "cpu", None
    if target == "cpu" or CUDA.match(target):
        return target, None
    known = datasheet.labels() + sorted(datasheet.table())
    if target not in known:
        raise TargetError(
            f"no datasheet entry for GPU {target!r}; known labels: {datasheet.labels()}"
        )
    return "cuda", target
