"""Synchronized measurement windows, in the style of Zeus's ``begin_window``/``end_window``.

A window opens and closes only after the device has finished all queued work, so what it
covers is the work issued inside it and nothing else. Meters (energy counters, samplers)
plug in through the small :class:`Meter` protocol and add their readings to each window.

Typical use::

    with Monitor.for_device("cuda:0") as monitor:    # NVML counter + sampler (RAPL on a CPU)
        monitor.begin_window("forward")
        ...                                          # whole iterations of the pass
        window = monitor.end_window("forward")       # window.elapsed_s, window.readings["energy_j"]

The measuring protocol built on these windows (warm-up, guards, repeats of whole iterations):
:mod:`flopmetrics.jobs.protocol`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch

from ..contracts.errors import WindowError
from ..contracts.schema import defaults
from .setup import EnergySettings, setup_meters


class Meter(Protocol):
    """Something that measures over a window.

    ``begin(t_start)`` is called right after the device is synchronized at open; ``end(t_end)``
    after the synchronization at close (and after any settling work the caller runs past the
    window's end); both times are on the ``time.perf_counter`` clock. Meters are opened and read
    in list order. A meter that keeps a record (the GPU's counter steps, a power trace) may also
    have ``read(t_start, t_end)``, the reading of any past window: windows can then run back to
    back and be read later (:meth:`Monitor.end_window` with ``defer``).
    """

    name: str

    def begin(self, t_start: float) -> None: ...

    def end(self, t_end: float) -> dict[str, float]: ...


def synchronizer(device: str) -> Callable[[], None]:
    """Return a function that blocks until ``device`` has finished its queued work."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return lambda: torch.cuda.synchronize(dev)
    return lambda: None  # CPU ops are synchronous


@dataclass
class Window:
    name: str
    start_s: float  # time.perf_counter() at open (after sync)
    end_s: float  # time.perf_counter() at close (after sync)
    iterations: int = 0
    readings: dict[str, float] = field(default_factory=dict)
    wall_start: float = 0.0  # time.time() at open, to line windows up with sampler traces
    wall_end: float = 0.0
    numerics: str = (
        "unknown"  # finite | non_finite (what the window computed), unknown: not checked
    )
    first_nonfinite: str = ""  # the first tensor found non-finite
    launch: str = "eager"  # how the iterations were issued: eager | cuda_graph (replayed)
    launch_check: dict = field(default_factory=dict)  # launch auto: the shares that chose it
    replaces: list = field(
        default_factory=list
    )  # shorter windows of the pass this one's length superseded

    @property
    def elapsed_s(self) -> float:
        return self.end_s - self.start_s


class Monitor:
    """Opens and closes named, synchronized windows and collects each meter's readings.

    ``Monitor.for_device("cuda:0")`` attaches the meters the device has; ``Monitor(device,
    meters)`` takes meters of one's own (``Monitor("cuda:0")`` alone measures time only)."""

    def __init__(self, device: str = "cpu", meters: Sequence[Meter] = ()):
        self.device = device
        self.meters = list(meters)
        self.setup = None  # the MeterSetup of for_device: its method, status and sampler
        self._sync = synchronizer(device)
        self._open: dict[str, tuple[float, float]] = {}
        self.last_close_s = math.nan  # when the last window closed (perf_counter clock)

    @classmethod
    def for_device(
        cls, device: str = "cuda:0", meter: str | None = None, sampler_hz: float | None = None
    ) -> Monitor:
        """A monitor with the meters of ``device``: on a GPU the NVML energy counter (interpolated
        at the window's edges) and a power sampler, which starts now; on a CPU RAPL where readable,
        else a stand-in whose energy is NaN and whose ``status`` says why. ``meter`` and
        ``sampler_hz`` default to the config schema's ``energy`` block. Close it (``close()``, or
        use it in a ``with`` block) to stop the sampler."""
        d = defaults("energy")
        settings = EnergySettings(
            meter or d["meter"], sampler_hz or d["sampler_hz"], d["guard_s"], d["idle_baseline_s"]
        )
        setup = setup_meters(device, settings)
        monitor = cls(device, setup.meters)
        monitor.setup = setup
        if setup.sampler is not None:
            setup.sampler.start()
            setup.wait_for_counter()
        return monitor

    @property
    def status(self) -> str:
        """``ok``, or why energy is missing (a monitor without meters measures time only)."""
        if self.setup is not None:
            return self.setup.status
        return "ok" if self.meters else "no meters attached: time only"

    def close(self) -> None:
        if self.setup is not None and self.setup.sampler is not None:
            self.setup.sampler.stop()

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def synchronize(self) -> None:
        self._sync()

    def agree(self, value: float, op: str = "max") -> float:
        """The value that every process measuring together acts on: here this process's own. A
        monitor over several ranks (:class:`flopmetrics.distributed.monitor.RankMonitor`) returns
        the largest (``op="max"``) or smallest (``"min"``) over the ranks, so that all of them
        size batches, end windows and stop repeating alike (a rank that ran one iteration more
        than the others would wait for them forever in its next collective)."""
        return value

    def begin_window(self, name: str) -> None:
        if name in self._open:
            raise WindowError(f"window {name!r} is already open")
        self._sync()
        start_s, wall_start = time.perf_counter(), time.time()
        for meter in self.meters:
            meter.begin(start_s)
        self._open[name] = (start_s, wall_start)

    def end_window(
        self, name: str, settle: Callable[[], object] | None = None, defer: bool = False
    ) -> Window:
        """Close ``name`` at the next synchronization. ``settle``, if given, runs after the close
        and before the meters are read (guard iterations that keep power steady past the edge).
        With ``defer`` the meters are not read now but by :meth:`read`, later (once work of the
        same power has run past the edge: the next window); only meters that can read a past
        window (:meth:`can_defer`) allow it."""
        if name not in self._open:
            raise WindowError(f"window {name!r} was never opened")
        self._sync()
        end_s, wall_end = time.perf_counter(), time.time()
        self.last_close_s = end_s
        start_s, wall_start = self._open.pop(name)
        if settle is not None:
            settle()
        window = Window(name, start_s, end_s, wall_start=wall_start, wall_end=wall_end)
        if defer:
            if not self.can_defer():
                raise WindowError(
                    "a meter of this monitor cannot read a past window; read it at its close"
                )
            return window
        for meter in self.meters:
            window.readings.update(meter.end(end_s))
        return window

    def can_defer(self) -> bool:
        """Whether every meter reads past windows from its record (``read(t_start, t_end)``)."""
        return all(hasattr(m, "read") for m in self.meters)

    def read(self, window: Window) -> Window:
        """Fill the readings of a window closed with ``defer``."""
        for meter in self.meters:
            window.readings.update(meter.read(window.start_s, window.end_s))
        return window
