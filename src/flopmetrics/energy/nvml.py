"""A thin adapter over the NVML Python bindings (``pynvml`` from nvidia-ml-py).

Everything flopmetrics asks of a GPU's management library goes through :class:`NvmlGpu`,
which takes the bindings module as an argument: on a GPU it is the real ``pynvml``; on the
CPU-only CI a fake module with the same functions stands in (tests/fake_nvml.py), so the code
above this edge is the same in both places.
"""

from __future__ import annotations

import importlib
import math
import os
import sys
import time

# clock-event (throttle) reason bits that mean the clocks were held down by power or heat;
# GPU idle (0x1), application clocks (0x2) and sync boost (0x10) are benign
THROTTLE_BITS = {
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x20: "sw_thermal",
    0x40: "hw_thermal",
    0x80: "hw_power_brake",
}
FIELD_POWER_INSTANT = 186  # NVML_FI_DEV_POWER_INSTANT
NVML_CLOCK_SM, NVML_CLOCK_MEM, NVML_TEMPERATURE_GPU = 1, 2, 0


class NvmlUnavailable(RuntimeError):
    pass


def load_nvml():
    """Import and initialise the real bindings, or raise :class:`NvmlUnavailable` saying why."""
    try:
        import pynvml  # optional: absent (or without a driver) on machines with no NVIDIA GPU
    except ImportError as err:
        raise NvmlUnavailable("nvidia-ml-py is not installed (pip install nvidia-ml-py)") from err
    try:
        pynvml.nvmlInit()
    except Exception as err:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        raise NvmlUnavailable(f"NVML could not be initialised: {err}") from err
    return pynvml


def throttle_names(mask: int) -> list[str]:
    return [name for bit, name in THROTTLE_BITS.items() if int(mask) & bit]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class NvmlGpu:
    """One GPU seen through NVML. Units: J, W, MHz, degrees C."""

    def __init__(self, nvml, handle):
        self.nvml = nvml
        self.handle = handle

    @classmethod
    def for_torch_device(cls, nvml, torch_index: int = 0) -> NvmlGpu:
        """The NVML device behind ``cuda:<torch_index>``, matched by UUID where possible
        (CUDA_VISIBLE_DEVICES renumbers devices; NVML does not)."""
        try:
            return cls(nvml, nvml.nvmlDeviceGetHandleByUUID(cuda_uuid(torch_index)))
        except Exception:
            visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
            entries = [v.strip() for v in visible.split(",") if v.strip()]
            index = (
                int(entries[torch_index])
                if torch_index < len(entries) and entries[torch_index].isdigit()
                else torch_index
            )
            return cls(nvml, nvml.nvmlDeviceGetHandleByIndex(index))

    # --- readings -------------------------------------------------------------------------
    def energy_j(self) -> float:
        """Total energy since driver load (``nvmlDeviceGetTotalEnergyConsumption``, mJ)."""
        return self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle) / 1000.0

    def power_instant_w(self) -> float:
        """Instantaneous board power (field NVML_FI_DEV_POWER_INSTANT); NaN where unsupported."""
        try:
            (value,) = self.nvml.nvmlDeviceGetFieldValues(self.handle, [FIELD_POWER_INSTANT])
        except Exception:
            return math.nan
        if value.nvmlReturn != 0:
            return math.nan
        return value.value.uiVal / 1000.0

    def power_average_w(self) -> float:
        """``nvmlDeviceGetPowerUsage``: a 1 s moving average on Ampere and newer."""
        return self.nvml.nvmlDeviceGetPowerUsage(self.handle) / 1000.0

    def sm_clock_mhz(self) -> float:
        return float(self.nvml.nvmlDeviceGetClockInfo(self.handle, NVML_CLOCK_SM))

    def mem_clock_mhz(self) -> float:
        return float(self.nvml.nvmlDeviceGetClockInfo(self.handle, NVML_CLOCK_MEM))

    def temperature_c(self) -> float:
        return float(self.nvml.nvmlDeviceGetTemperature(self.handle, NVML_TEMPERATURE_GPU))

    def clock_event_reasons(self) -> int:
        fn = (
            getattr(self.nvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
            or self.nvml.nvmlDeviceGetCurrentClocksThrottleReasons
        )
        return int(fn(self.handle))

    # --- identity -------------------------------------------------------------------------
    def power_limit_w(self) -> float:
        return self.nvml.nvmlDeviceGetEnforcedPowerLimit(self.handle) / 1000.0

    def name(self) -> str:
        return _text(self.nvml.nvmlDeviceGetName(self.handle))

    def uuid(self) -> str:
        return _text(self.nvml.nvmlDeviceGetUUID(self.handle))

    def driver_version(self) -> str:
        return _text(self.nvml.nvmlSystemGetDriverVersion())

    def other_processes(self) -> list[int]:
        """PIDs of compute processes on this GPU other than this one."""
        try:
            procs = self.nvml.nvmlDeviceGetComputeRunningProcesses(self.handle)
        except Exception:
            return []
        return [int(p.pid) for p in procs if int(p.pid) != os.getpid()]

    def has_energy_counter(self) -> bool:
        try:
            self.energy_j()
            return True
        except Exception:
            return False


def read_sample(gpu: NvmlGpu) -> tuple:
    """One trace sample: (perf_counter time, wall time, instant W, 1 s average W, energy J,
    SM MHz, memory MHz, temperature C, clock-event reasons). The clock is read right before the
    instantaneous power, so the two belong together."""
    t, wall = time.perf_counter(), time.time()
    instant = gpu.power_instant_w()
    try:
        energy = gpu.energy_j()
    except Exception:
        energy = math.nan
    return (
        t,
        wall,
        instant,
        gpu.power_average_w(),
        energy,
        gpu.sm_clock_mhz(),
        gpu.mem_clock_mhz(),
        gpu.temperature_c(),
        gpu.clock_event_reasons(),
    )


def sampling_loop(
    gpu: NvmlGpu, interval_s: float, tick_poll_s: float, on_sample, on_tick, stop
) -> None:
    """Sample ``gpu`` every ``interval_s`` and, between samples, poll its energy counter every
    ``tick_poll_s`` to time its steps ("ticks"): ``on_tick(t, joules)`` gets the new value and
    the midpoint of the two polls that bracket the change (where the counter steps every
    ~100 ms, a 1 ms poll times each step to +-0.5 ms). ``stop()`` ends the loop."""
    has_counter = gpu.has_energy_counter()
    next_sample = time.perf_counter()
    last_e = last_t = None
    while not stop():
        now = time.perf_counter()
        if now >= next_sample:
            on_sample(read_sample(gpu))
            next_sample += interval_s
            if (
                next_sample < now
            ):  # fell behind (a stalled host): keep the cadence, skip the backlog
                next_sample = now + interval_s
        pause = next_sample - time.perf_counter()
        if has_counter:
            e, t = gpu.energy_j(), time.perf_counter()
            if last_e is not None and e != last_e:
                on_tick((last_t + t) / 2, e)
            last_e, last_t = e, t
            pause = min(pause, tick_poll_s)
        if pause > 0:
            time.sleep(pause)


def cuda_uuid(torch_index: int) -> str:
    """The UUID of ``cuda:<torch_index>`` as NVML writes it (``GPU-...``)."""
    # torch here only: the sampler process (this module run as a script) starts without it
    import torch

    uuid = str(torch.cuda.get_device_properties(torch_index).uuid)
    return uuid if uuid.startswith("GPU-") else f"GPU-{uuid}"


def sample_forever(
    uuid: str, interval_s: float, out, module: str = "pynvml", tick_poll_s: float = 0.001
) -> None:
    """Body of the sampler *process* (``python -m flopmetrics.energy.nvml UUID INTERVAL [MODULE
    [POLL]]``): its own NVML session in its own interpreter, so sampling is never held up by the
    measured program's GIL, which a busy kernel-launch loop holds for long stretches, releasing it
    mostly at synchronisation points, when power is low. Each sample is one line of numbers on
    ``out``, each counter tick a line ``T <time> <joules>``; ``time.perf_counter`` is
    CLOCK_MONOTONIC, shared by all processes. Ends when killed or when the reader goes away."""
    if module == "pynvml":
        nvml = load_nvml()
    else:  # a stand-in bindings module (tests)
        nvml = importlib.import_module(module)
        nvml.nvmlInit()
    gpu = NvmlGpu(nvml, nvml.nvmlDeviceGetHandleByUUID(uuid))
    out.write("ready\n")
    out.flush()

    def sample(s):
        out.write(" ".join(repr(float(v)) for v in s) + "\n")
        out.flush()

    def tick(t, e):
        out.write(f"T {t!r} {e!r}\n")
        out.flush()

    try:
        sampling_loop(gpu, interval_s, tick_poll_s, sample, tick, lambda: False)
    except (BrokenPipeError, KeyboardInterrupt):
        pass
    except Exception as err:  # the reader raises it in the measured job, naming the cause
        message = f"{type(err).__name__}: {err}".replace("\n", " ")
        out.write(f"E {message}\n")
        out.flush()
        raise SystemExit(1) from None


if __name__ == "__main__":
    sample_forever(
        sys.argv[1],
        float(sys.argv[2]),
        sys.stdout,
        *(sys.argv[3:4] or []),
        *(float(v) for v in sys.argv[4:5]),
    )
