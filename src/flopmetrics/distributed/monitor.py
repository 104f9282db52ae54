"""A monitor whose windows every rank opens and closes together, and whose decisions (batch
sizes, when a window or a guard ends, when to stop repeating) are the same on every rank."""

from __future__ import annotations

import torch
import torch.distributed as dist

from ..energy.windows import Monitor, synchronizer


class RankMonitor(Monitor):
    """This rank's meters, with window edges at a barrier after this rank's own synchronize:
    each rank's window covers the same span of the step, the slowest rank's included."""

    def __init__(self, device: str, meters=()):
        super().__init__(device, meters)
        own = synchronizer(device)
        self._flag = torch.zeros(1, dtype=torch.float64, device=device if dist.get_backend() == "nccl" else "cpu")

        def sync() -> None:
            own()
            dist.barrier()

        self._sync = sync

    def agree(self, value: float, op: str = "max") -> float:
        self._flag.fill_(float(value))
        dist.all_reduce(self._flag, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.MIN)
        return float(self._flag.item())
