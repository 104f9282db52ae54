"""Probe: does NVML's instantaneous power field agree with its energy counter?

    python benchmarks/power_sensor_probe.py > probe.json

Three phases (idle; a saturating bf16 matmul; a half-duty matmul), each several seconds long.
For each, the mean power from the energy counter (difference over the whole phase, tick to
tick) is compared with the mean of instantaneous-power samples taken at ~200 Hz in the same
interval. A constant ratio across phases means the two sensors differ by a scale; a ratio that
moves with load means one of them filters or misses part of the power.
"""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import torch

from flopmetrics.energy.nvml import NvmlGpu, load_nvml


def next_tick(gpu: NvmlGpu) -> tuple[float, float]:
    """Busy-poll until the energy counter steps; return (time, new value)."""
    start = gpu.energy_j()
    while (value := gpu.energy_j()) == start:
        time.sleep(0.0005)
    return time.perf_counter(), value


def main() -> int:
    gpu = NvmlGpu.for_torch_device(load_nvml(), 0)
    ticks = [next_tick(gpu)[0] for _ in range(6)]
    period = float(np.median(np.diff(ticks)))
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    samples, stop = [], threading.Event()

    def sample():
        while not stop.is_set():
            samples.append((time.perf_counter(), gpu.power_instant_w()))
            time.sleep(0.005)

    def phase(name, seconds, work):
        t0, e0 = next_tick(gpu)
        end = t0 + seconds
        while time.perf_counter() < end:
            work()
        torch.cuda.synchronize()
        t1, e1 = next_tick(gpu)
        inst = np.array([p for t, p in samples if t0 <= t <= t1])
        return {
            "phase": name,
            "seconds": t1 - t0,
            "counter_power_w": (e1 - e0) / (t1 - t0),
            "instant_mean_w": float(inst.mean()),
            "instant_samples": int(len(inst)),
            "ratio_counter_over_instant": (e1 - e0) / (t1 - t0) / float(inst.mean()),
        }

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    results = [
        phase("idle", 4.0, lambda: time.sleep(0.01)),
        phase("bf16 matmul, saturating", 5.0, lambda: (a @ a, torch.cuda.synchronize())),
        phase(
            "bf16 matmul, ~50% duty",
            5.0,
            lambda: ((a @ a), torch.cuda.synchronize(), time.sleep(0.0015)),
        ),
    ]
    stop.set()
    print(
        json.dumps(
            {
                "gpu": gpu.name(),
                "driver": gpu.driver_version(),
                "counter_period_s": period,
                "phases": results,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
