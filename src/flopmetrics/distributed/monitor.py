"""A monitor whose windows every rank opens and closes together, and whose decisions (batch
sizes, when a window or a guard ends, when to stop repeating) are the same on every rank."""

from __future__ import annotations

import itertools

import torch
import torch.distributed as dist

from ..energy.windows import Monitor, Window, synchronizer


class RankMonitor(Monitor):
    """This rank's meters, with window edges at a barrier after this rank's own synchronize:
    each rank's window covers the same span of the step, the slowest rank's included.

    ``zeus_gpus``: the node's GPUs (torch indices) for Zeus's monitor to watch over the same
    windows (opened and closed right after ours), an independent reading of the node's energy
    put in each window's ``energy_zeus_j``; one rank watches for all."""

    def __init__(self, device: str, meters=(), zeus_gpus=None):
        super().__init__(device, meters)
        own = synchronizer(device)
        self._flag = torch.zeros(
            1, dtype=torch.float64, device=device if dist.get_backend() == "nccl" else "cpu"
        )
        self._zeus, self._zeus_open, self._zeus_pending, self._names = (
            None,
            {},
            {},
            itertools.count(),
        )
        if zeus_gpus is not None:
            from zeus.monitor import ZeusMonitor  # only where asked for: an optional dependency

            self._zeus = ZeusMonitor(gpu_indices=list(zeus_gpus), cpu_indices=[])

        def sync() -> None:
            own()
            dist.barrier()

        self._sync = sync

    def agree(self, value: float, op: str = "max") -> float:
        self._flag.fill_(float(value))
        dist.all_reduce(self._flag, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.MIN)
        return float(self._flag.item())

    def begin_window(self, name: str) -> None:
        super().begin_window(name)
        if self._zeus is not None:
            self._zeus_open[name] = f"{name}#{next(self._names)}"
            self._zeus.begin_window(self._zeus_open[name], sync_execution=False)

    def end_window(self, name: str, settle=None, defer: bool = False) -> Window:
        if self._zeus is None:
            return super().end_window(name, settle, defer)
        # Zeus closes right after our close (before any guard), at its own raw counter reading
        zeus_name = self._zeus_open.pop(name)

        def close_zeus():
            close_zeus.reading = self._zeus.end_window(zeus_name, sync_execution=False).total_energy
            if settle is not None:
                settle()

        window = super().end_window(name, close_zeus, defer)
        if defer:  # kept aside: a deferred window's empty readings say it is still to be read
            self._zeus_pending[id(window)] = float(close_zeus.reading)
        else:
            window.readings["energy_zeus_j"] = float(close_zeus.reading)
        return window

    def read(self, window: Window) -> Window:
        super().read(window)
        if id(window) in self._zeus_pending:
            window.readings["energy_zeus_j"] = self._zeus_pending.pop(id(window))
        return window
