"""Measure one's own code: a training step, an ``nn.Module``'s forward, any callable.

    import flopmetrics
    result = flopmetrics.measure(lambda: train_step(batch), device="cuda:0")
    print(result.summary())        # time, energy, FLOPs and FLOPs/J per iteration, with errors

The same protocol as the pipeline's jobs: warm-up, ``repeats`` synchronized windows of whole
iterations lasting at least ``seconds`` each with guard iterations around them, the meters of
:meth:`flopmetrics.energy.windows.Monitor.for_device`, FLOPs counted by PyTorch's
``FlopCounterMode`` on one iteration (or given), and the output of each window's last iteration
checked for NaN/inf (numbers computed on non-finite values are flagged, not trusted).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..energy.windows import Monitor
from ..flops.counted import count_flops
from ..workloads.base import finite_check
from .protocol import PassSpec, Protocol, measure_pass, stderr_progress
from .stats import Estimate, per_iteration


@dataclass
class Measurement:
    """Per-iteration means with their standard errors over the repeats."""

    device: str
    iterations: int
    time_s: Estimate
    energy_j: Estimate | None  # None where the device has no meter (``status`` says why)
    flops: float
    numerics: str  # finite | non_finite | unknown (the step returned no tensors to check)
    status: str
    meter: str

    @property
    def flops_per_j(self) -> float:
        return (
            self.flops / self.energy_j.mean
            if self.energy_j and self.energy_j.mean > 0
            else math.nan
        )

    @property
    def power_w(self) -> float:
        return self.energy_j.mean / self.time_s.mean if self.energy_j else math.nan

    def summary(self) -> str:
        energy = (
            f"{self.energy_j.mean:.4g} J +- {self.energy_j.sem:.2g} ({self.power_w:.1f} W, "
            f"{self.flops_per_j:.4g} FLOPs/J)"
            if self.energy_j
            else f"not measured ({self.status})"
        )
        return (
            f"{self.device}: {self.time_s.mean * 1e3:.4g} ms +- {self.time_s.sem * 1e3:.2g} per "
            "iteration, "
            f"{self.flops:.4g} FLOPs, energy {energy}, meter {self.meter}, numerics {self.numerics}"
        )


def _tensors(output) -> list[torch.Tensor]:
    if isinstance(output, torch.Tensor):
        return [output.detach()]
    if isinstance(output, (list, tuple)):
        return [t for o in output for t in _tensors(o)]
    if isinstance(output, dict):
        return [t for o in output.values() for t in _tensors(o)]
    return []


def _check(output) -> Callable[[], tuple[bool, str]]:
    tensors = [t for t in _tensors(output) if t.is_floating_point()]
    if not tensors:
        return lambda: (True, "unchecked")
    return finite_check(tensors, [f"output[{i}]" for i in range(len(tensors))])


def measure(  # noqa: PLR0913 - the public API names every setting
    step: Callable[[], object],
    device: str = "cuda:0",
    seconds: float = 2.0,
    repeats: int = 5,
    warmup: int = 3,
    guard_s: float = 0.3,
    flops: float | None = None,
    monitor: Monitor | None = None,
    progress: bool = False,
) -> Measurement:
    """Measure ``step`` (one iteration of one's own work; what it returns is checked for finite
    values) on ``device`` by the pipeline's protocol: ``repeats`` windows of at least
    ``seconds``, at most ``warmup`` warm-up tries, ``guard_s`` guards. ``flops``: per iteration,
    counted with ``FlopCounterMode`` when None."""
    if flops is None:
        flops = float(count_flops(step).total)
    protocol = Protocol(repeats, repeats, 0.0, seconds, warmup, guard_s)
    own = monitor is None
    monitor = Monitor.for_device(device) if own else monitor
    try:
        say = stderr_progress("measure") if progress else None
        windows = measure_pass(monitor, PassSpec("step", step, check=_check), protocol, say)
    finally:
        if own:
            monitor.close()
    return _summary(device, windows, flops, monitor)


def _summary(device: str, windows, flops: float, monitor: Monitor) -> Measurement:
    energies = [w.readings.get("energy_j", math.nan) for w in windows]
    measured = all(math.isfinite(e) for e in energies)
    checked = {w.first_nonfinite for w in windows} != {"unchecked"}
    numerics = "unknown"
    if checked:
        numerics = "finite" if all(w.numerics == "finite" for w in windows) else "non_finite"
    return Measurement(
        device,
        sum(w.iterations for w in windows),
        per_iteration(windows),
        per_iteration(windows, "energy_j") if measured else None,
        flops,
        numerics,
        monitor.status,
        monitor.setup.method if monitor.setup else "custom",
    )
