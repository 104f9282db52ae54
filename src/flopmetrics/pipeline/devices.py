"""Parse-time check that the ``cuda``/``cuda:<i>`` targets a config names exist on this machine
(the glue imports this module only where such a target is configured: it loads torch)."""

from __future__ import annotations

import torch

from ..contracts.errors import ConfigError


def check_devices(devices, cuda_available=None, cuda_count=None, key="mlp.targets") -> None:
    """Fail if a requested device does not exist here (``cuda`` with no GPU, ``cuda:3`` of 2).
    GPU labels (``h100``) need a GPU too; which one is checked by the job itself."""
    wanted = [d for d in devices if d != "cpu"]
    if not wanted:
        return
    if cuda_available is None or cuda_count is None:
        cuda_available = torch.cuda.is_available()
        cuda_count = torch.cuda.device_count() if cuda_available else 0
    for dev in wanted:
        if not cuda_available:
            raise ConfigError(
                f"config error at {key}: {dev!r} requested but no CUDA GPU is available on this "
                "machine "
                "(torch.cuda.is_available() is False). Use 'cpu', or set execution.check_devices: "
                "false "
                "if jobs run on other (GPU) nodes."
            )
        index = int(dev.split(":")[1]) if dev.startswith("cuda:") else 0
        if index >= cuda_count:
            raise ConfigError(
                f"config error at {key}: {dev!r} requested but only {cuda_count} GPU(s) exist"
            )
