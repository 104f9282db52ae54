"""The environment every rank runs in: NVLink multicast off.

A program that uses NVLink multicast (NCCL's NVLS algorithms, PyTorch's symmetric memory,
NVSHMEM) can put a shared host's GPUs out of service, so every rank is started with these
values, whoever builds its environment (torchrun, Slurm), and checks them before it touches a
GPU.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

NO_MULTICAST = {
    "NCCL_NVLS_ENABLE": "0",
    "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1",
    "NVSHMEM_DISABLE_NVLS": "1",
}


def with_no_multicast(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (the current environment by default) with multicast off, whatever it said."""
    return {**(os.environ if env is None else env), **NO_MULTICAST}


def check_no_multicast(env: Mapping[str, str] | None = None) -> None:
    """Refuse to run a rank whose environment lets multicast on."""
    env = os.environ if env is None else env
    wrong = {k: env.get(k) for k, v in NO_MULTICAST.items() if env.get(k) != v}
    if wrong:
        raise RuntimeError(
            f"NVLink multicast must be off on every rank; this rank has {wrong} "
            f"(expected {NO_MULTICAST})"
        )
