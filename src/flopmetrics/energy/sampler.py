"""The GPU power sampler: a background reader (>= 20 Hz) of instantaneous power, the 1 s
average, clocks, temperature and clock-event (throttle) reasons, which also times every step of
the GPU's energy counter.

It saves the raw trace of every job, integrates power over each window (a cross-check of the
counter, see :mod:`flopmetrics.energy.counter`) and is the energy source where no counter
exists. The instant-power field updates only every ~100 ms and averages a shorter span, so its
integral aliases with work that repeats near that period (``benchmarks/trace_aliasing_probe.py``);
the counter does not.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import types

import numpy as np
import pandas as pd

from ..contracts.errors import MeterError
from .counter import window_stats
from .nvml import NvmlGpu, sampling_loop

SAMPLE_COLUMNS = [
    "t",
    "wall",
    "power_instant_w",
    "power_average_w",
    "energy_counter_j",
    "sm_clock_mhz",
    "mem_clock_mhz",
    "temperature_c",
    "clock_event_reasons",
]


class PowerSampler:
    """Background sampler of one GPU; also a meter (trace-integrated energy per window).

    With ``process=True`` (the default for the real NVML bindings) sampling runs in a separate
    process: a sampler *thread* in the measured process reads the instantaneous power low,
    because a thread gets the GIL mostly while the main thread
    waits at synchronisation points, when the GPU drains and power dips. A thread (``False``)
    remains for fakes that cannot cross a process boundary (the CPU tests).
    """

    name = "nvml_trace"

    def __init__(
        self,
        gpu: NvmlGpu,
        hz: float = 50.0,
        process: bool | None = None,
        module: str = "pynvml",
        tick_poll_s: float = 0.001,
    ):
        if hz < 20:
            raise ValueError(f"sampler rate must be >= 20 Hz to resolve pass windows, got {hz}")
        self.gpu = gpu
        self.interval_s = 1.0 / hz
        self.tick_poll_s = tick_poll_s
        self.process = process if process is not None else isinstance(gpu.nvml, types.ModuleType)
        self.samples: list[tuple] = []
        self._ticks: list[tuple[float, float]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._proc = None
        self.module = module  # the bindings the sampler process imports
        self.error: str | None = None  # why sampling stopped, where it did

    def _add_sample(self, s: tuple) -> None:
        with self._lock:
            self.samples.append(s)

    def _add_tick(self, t: float, e: float) -> None:
        with self._lock:
            self._ticks.append((t, e))

    def _receive(self, stream) -> None:
        for line in stream:
            values = line.split()
            if values and values[0] == "T" and len(values) == 3:
                self._add_tick(float(values[1]), float(values[2]))
            elif values and values[0] == "E":
                self.error = line[2:].strip()
            elif len(values) == len(SAMPLE_COLUMNS):
                self._add_sample(tuple(float(v) for v in values))
        if not self._stop.is_set() and self.error is None:
            self.error = f"the power-sampler process ended (exit code {self._proc.poll()})"

    def _sample_in_thread(self) -> None:
        try:
            sampling_loop(
                self.gpu,
                self.interval_s,
                self.tick_poll_s,
                self._add_sample,
                self._add_tick,
                self._stop.is_set,
            )
        except Exception as err:  # the meters read it: a window must not wait on a dead sampler
            self.error = f"{type(err).__name__}: {err}"

    def check(self) -> None:
        """Raise where the sampler stopped reading the GPU (a driver fault, NVML gone)."""
        if self.error is not None:
            raise MeterError(f"the NVML power sampler failed: {self.error}")

    def start(self) -> PowerSampler:
        if not self.process:
            self._thread = threading.Thread(
                target=self._sample_in_thread, name="flopmetrics-power-sampler", daemon=True
            )
            self._thread.start()
            return self
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "flopmetrics.energy.nvml",
                self.gpu.uuid(),
                repr(self.interval_s),
                self.module,
                repr(self.tick_poll_s),
            ],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            env=env,
        )
        if self._proc.stdout.readline().strip() != "ready":
            self._proc.kill()
            raise MeterError(
                f"the power-sampler process did not start (exit code {self._proc.poll()})"
            )
        self._thread = threading.Thread(
            target=self._receive, args=(self._proc.stdout,), daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
        if self._thread:
            self._thread.join(timeout=10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def trace(self) -> pd.DataFrame:
        with self._lock:
            return pd.DataFrame(list(self.samples), columns=SAMPLE_COLUMNS)

    def trace_with_steps(self) -> pd.DataFrame:
        """The trace plus, on each sample, the latest counter step before it (``counter_step_t``,
        ``counter_step_j``): every step is kept (samples outnumber steps), so the counter
        readings can be recomputed from the saved trace."""
        trace = self.trace()
        steps = pd.DataFrame(self.ticks(), columns=["counter_step_t", "counter_step_j"])
        if trace.empty or steps.empty:
            return trace.assign(counter_step_t=np.nan, counter_step_j=np.nan)
        return pd.merge_asof(
            trace.sort_values("t"),
            steps,
            left_on="t",
            right_on="counter_step_t",
            direction="backward",
        )

    def forget_before(self, t: float) -> None:
        """Drop the samples recorded before ``t`` and the counter's steps before the last one
        before ``t`` (a long-lived worker's record would otherwise grow without end)."""
        with self._lock:
            self.samples = [s for s in self.samples if s[0] >= t]
            earlier = [i for i, (when, _) in enumerate(self._ticks) if when < t]
            if earlier:
                self._ticks = self._ticks[earlier[-1] :]

    def ticks(self) -> np.ndarray:
        """The energy counter's steps seen so far: rows of (time, joules)."""
        with self._lock:
            return np.array(self._ticks, dtype=float).reshape(-1, 2)

    def wait_for(self, t: float, timeout_s: float = 1.0, tick: bool = False) -> bool:
        """Wait until a sample (or, with ``tick``, a counter step) later than ``t`` was recorded."""
        deadline = time.perf_counter() + timeout_s
        while True:
            with self._lock:
                seq = self._ticks if tick else self.samples
                if seq and seq[-1][0] > t:
                    return True
            if time.perf_counter() > deadline:
                return False
            time.sleep(min(self.interval_s, 0.005))

    # --- meter interface -----------------------------------------------------------------
    def begin(self, t_start: float) -> None:
        self._t0 = t_start

    def end(self, t_end: float) -> dict[str, float]:
        return self.read(self._t0, t_end)

    def read(self, t_start: float, t_end: float) -> dict[str, float]:
        """The reading of any past window ``[t_start, t_end]`` (the trace keeps every sample)."""
        self.wait_for(t_end)  # one sample past the edge, to interpolate there
        return window_stats(self.trace(), t_start, t_end)
