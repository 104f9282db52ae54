"""A job process's hold on its device, set up once for every configuration it measures: the
device its target resolves to (checked against the GPU it got), the meters, the monitor that
opens windows on them, and the idle baseline."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
import torch

from ..energy import datasheet
from ..energy.setup import MeterSetup, setup_meters
from ..energy.windows import Monitor, Window
from .protocol import measure_passes
from .spec import JobSpec
from .stats import estimate
from .targets import resolve_target

IDLE_PART_S = 0.5  # the idle baseline's windows
FORGET_MARGIN_S = 2.0  # the sampler's record kept before a configuration's start


@dataclass
class Session:
    """What every configuration of one job (or one rank) shares.

    ``columns``: the device's identity columns of every row (torch device, how energy is read,
    the datasheet entry, the metered GPU's name, UUID, driver and power limit); ``guard_s``: the
    guard the protocol runs (none where no meter reports late: a CPU); ``progress``: where
    progress lines go; ``measure``: the protocol
    (:func:`~flopmetrics.jobs.protocol.measure_passes`; a benchmark may compare another);
    ``idle``: the idle baseline once measured (:meth:`measure_idle`)."""

    device: str
    setup: MeterSetup
    monitor: Monitor
    columns: dict
    guard_s: float
    progress: Callable[[str], None] = print
    measure: Callable = measure_passes
    idle: dict = field(default_factory=dict)
    idle_trace: pd.DataFrame | None = None  # the sampler's record around the idle baseline

    @classmethod
    def open(cls, spec: JobSpec, *, nvml=None, device: str | None = None, **options) -> Session:
        """The session of ``spec``'s target: ``device`` where the caller chose it (a rank's own
        GPU), else the one the target resolves to (``cuda``: the first GPU the job was given).
        A target naming a GPU architecture fails unless the GPU is of it. ``options``:
        ``monitor_type`` (a :class:`Monitor` class or factory of ``(device, meters)``),
        ``progress``, ``measure``."""
        resolved, expected_gpu = resolve_target(spec.target, spec.run_on_cpu)
        device = device or ("cuda:0" if resolved == "cuda" else resolved)
        check_launch(spec, device)
        gpu_spec = check_gpu(device, expected_gpu)
        setup = setup_meters(device, spec.energy, nvml)
        columns = {
            "device": device,
            "energy_method": setup.method,
            "meter_status": setup.status,
            "gpu_key": gpu_spec.key if gpu_spec else "",
            "gpu_label": gpu_spec.label if gpu_spec else "cpu",
            **setup.gpu_info(),
        }
        # guards matter where a meter reports late (the GPU counter); CPU meters need none
        guard_s = spec.energy.guard_s if setup.sampler else 0.0
        monitor = options.pop("monitor_type", Monitor)(device, setup.meters)
        return cls(device, setup, monitor, columns, guard_s, **options)

    def sampling(self) -> contextlib.AbstractContextManager:
        """The power sampler running (nothing where there is none)."""
        return self.setup.sampler if self.setup.sampler else contextlib.nullcontext()

    def measure_idle(self, spec: JobSpec) -> dict:
        """The idle baseline (:func:`idle_baseline`) with ``spec``'s settings, kept for later
        configurations."""
        self.idle = idle_baseline(
            self.monitor,
            self.setup,
            spec.energy.idle_baseline_s,
            self.progress,
            guard_s=self.guard_s,
            target_rse=spec.measure.target_rse,
        )
        window = self.idle.get("_window")
        if self.setup.sampler and window is not None:
            trace = self.setup.sampler.trace_with_steps()
            near = (trace["t"] >= window.start_s - 0.5) & (trace["t"] <= window.end_s + 0.5)
            self.idle_trace = trace[near]
        return self.idle

    def begin(self) -> float:
        """A configuration's start (perf_counter clock): the sampler's record from long before
        is dropped (the idle baseline's part is kept)."""
        began = time.perf_counter()
        if self.setup.sampler:
            self.setup.sampler.forget_before(began - FORGET_MARGIN_S)
        return began

    def other_processes(self) -> list:
        """Other processes on the metered GPU now (none known on a CPU)."""
        return self.setup.gpu.other_processes() if self.setup.gpu else []

    def trace_since(self, began: float) -> pd.DataFrame:
        """The samples of one configuration (from ``began`` on) and of the idle baseline."""
        if not self.setup.sampler:
            return pd.DataFrame()
        trace = self.setup.sampler.trace_with_steps()
        trace = trace[trace["t"] >= began]
        if self.idle_trace is not None:
            trace = pd.concat([self.idle_trace, trace]).drop_duplicates("t").sort_values("t")
        return trace.reset_index(drop=True)


def check_launch(spec: JobSpec, device: str) -> None:
    """Fails where ``spec`` asks for CUDA graphs on a device that has none."""
    if spec.measure.launch == "cuda_graph" and torch.device(device).type != "cuda":
        on_cpu = ", run_on_cpu" if spec.run_on_cpu else ""
        raise ValueError(
            f"launch 'cuda_graph' replays passes from CUDA graphs, but this {spec.experiment} "
            f"job runs on {device!r} (target {spec.target!r}{on_cpu}); use launch 'eager' there"
        )


def check_gpu(device: str, expected_gpu: str | None):
    """The datasheet entry of the job's GPU (None on a CPU or an unknown GPU); fails where the
    GPU is not of the architecture ``expected_gpu`` names."""
    if torch.device(device).type != "cuda":
        return None
    if not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but no CUDA GPU is available to this job")
    torch.cuda.set_device(torch.device(device))
    name = torch.cuda.get_device_name(torch.device(device))
    if expected_gpu:
        return datasheet.check_label_matches(expected_gpu, name)
    try:
        return datasheet.for_device_name(name)
    except datasheet.UnknownGPU:
        return None


def idle_baseline(
    monitor: Monitor,
    setup: MeterSetup,
    seconds: float,
    progress: Callable[[str], None],
    guard_s: float = 0.0,
    target_rse: float = 0.0,
) -> dict:
    """Idle power of the metered device (``setup``: its meters, whose sampler runs) from
    consecutive 0.5 s windows: at least two, stopping once their mean has ``target_rse``
    relative standard error, at most ``seconds`` in all (one window of ``seconds`` where that is
    shorter than two). Nothing is measured where no meter reads energy."""
    if setup.method == "none":
        seconds = 0
    setup.wait_for_counter()
    if seconds <= 0:
        return {"idle_power_w": math.nan, "idle_power_trace_w": math.nan}
    time.sleep(guard_s)  # idle is steady across the edges too
    part = seconds if seconds < 2 * IDLE_PART_S else IDLE_PART_S
    parts: list[Window] = []
    while True:
        monitor.begin_window("idle")
        time.sleep(part)
        parts.append(monitor.end_window("idle", settle=lambda: time.sleep(guard_s)))
        if monitor.agree(float(_idle_done(parts, seconds, target_rse)), "min"):
            break  # ranks measuring together stop together
    window = Window(
        "idle",
        parts[0].start_s,
        parts[-1].end_s,
        wall_start=parts[0].wall_start,
        wall_end=parts[-1].wall_end,
        readings={
            k: sum(p.readings.get(k, math.nan) for p in parts)
            for k in ("energy_j", "energy_trace_j")
        },
    )
    elapsed = sum(p.elapsed_s for p in parts)
    power = window.readings["energy_j"] / elapsed
    progress(f"idle baseline: {power:.1f} W over {elapsed:.2f} s ({len(parts)} windows)")
    return {
        "idle_power_w": power,
        "idle_power_trace_w": window.readings["energy_trace_j"] / elapsed,
        "_window": window,
    }


def _idle_done(parts: list[Window], seconds: float, target_rse: float) -> bool:
    if sum(w.elapsed_s for w in parts) >= seconds - 1e-9:
        return True
    if len(parts) < 2:
        return False
    powers = estimate([w.readings.get("energy_j", math.nan) / w.elapsed_s for w in parts])
    rse = powers.sem / abs(powers.mean)
    return math.isfinite(rse) and rse <= target_rse
