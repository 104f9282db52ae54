"""Which meters measure a device: the NVML counter and sampler on a GPU, RAPL on a CPU where
readable, else an explicit "no meter" (NaN energy and a status that says why)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from ..contracts.errors import MeterError
from ..contracts.vocabulary import METERS
from .counter import NvmlCounterMeter
from .cpu import NullMeter, RaplMeter
from .nvml import NvmlGpu, NvmlUnavailable, load_nvml
from .sampler import PowerSampler


@dataclass(frozen=True)
class EnergySettings:
    """Config ``energy`` (defaults and meaning: the schema and config/README.md)."""

    meter: str  # auto | nvml (counter + sampler) | nvml_trace (sampler only) | rapl | none
    sampler_hz: float | None  # None where no sampler runs (a CPU job)
    guard_s: float | None  # same-pass iterations before and after each GPU window (steady edges)
    idle_baseline_s: float

    def __post_init__(self):
        if self.meter not in METERS:
            raise ValueError(f"unknown meter {self.meter!r}; expected one of {METERS}")
        if self.guard_s is not None and self.guard_s < 0:
            raise ValueError(f"guard_s must be >= 0, got {self.guard_s}")


@dataclass
class MeterSetup:
    meters: list
    sampler: PowerSampler | None
    gpu: NvmlGpu | None
    method: str  # how energy_j was obtained
    status: str  # "ok" or why energy is missing

    def wait_for_counter(self) -> None:
        """Where the energy counter is read, wait (its sampler running) until a step of it was
        recorded: a window opened at once needs one before its start."""
        if self.method == "nvml_counter_interpolated":
            self.sampler.wait_for(time.perf_counter(), timeout_s=2.0, tick=True)

    def gpu_info(self) -> dict:
        """Identity columns of the metered GPU (empty on a CPU)."""
        g = self.gpu
        if g is None:
            return {"gpu_name": "", "gpu_uuid": "", "driver_version": "", "power_limit_w": math.nan}
        return {
            "gpu_name": g.name(),
            "gpu_uuid": g.uuid(),
            "driver_version": g.driver_version(),
            "power_limit_w": g.power_limit_w(),
        }


def setup_meters(device: str, settings: EnergySettings, nvml=None) -> MeterSetup:
    """Choose meters for ``device``. ``nvml``: bindings module (real pynvml when None)."""
    dev = torch.device(device)
    want = settings.meter
    if want == "none":
        return MeterSetup([NullMeter("meter: none")], None, None, "none", "no meter requested")
    if dev.type == "cuda":
        if want == "rapl":
            raise ValueError(
                "meter 'rapl' measures the CPU; a cuda job needs 'auto', 'nvml' or 'nvml_trace'"
            )
        if nvml is None:
            nvml = (
                load_nvml()
            )  # NvmlUnavailable propagates: a GPU job must not silently lose energy
        gpu = NvmlGpu.for_torch_device(nvml, dev.index or 0)
        sampler = PowerSampler(gpu, settings.sampler_hz)
        if want in ("auto", "nvml") and gpu.has_energy_counter():
            return MeterSetup(
                [NvmlCounterMeter(sampler), sampler],
                sampler,
                gpu,
                "nvml_counter_interpolated",
                "ok",
            )
        if want == "nvml":
            raise NvmlUnavailable(
                f"{gpu.name()} has no NVML energy counter (pre-Volta); use meter: nvml_trace"
            )
        return MeterSetup([sampler], sampler, gpu, "nvml_trace", "ok")
    if want in ("nvml", "nvml_trace"):
        raise ValueError(f"meter {want!r} needs a cuda device, not {device!r}")
    try:
        return MeterSetup([RaplMeter()], None, None, "rapl", "ok")
    except MeterError as err:
        if want == "rapl":
            raise
        return MeterSetup([NullMeter(str(err))], None, None, "none", f"no CPU energy meter: {err}")
