"""Probe: how late does the GPU's energy counter report energy, and how late the instant power?

    python benchmarks/counter_delay_probe.py > probe.json

A square wave of load (idle, then a saturating bf16 matmul, synchronized, for ``--on`` s; four
cycles) with the sampler timing every step of the energy counter (1 ms polls) and sampling
power at 100 Hz. Two readings of each on/off edge:

* counter delay: the delay ``d`` for which a step-shaped power (idle / busy levels taken from
  steady steps) integrated over ``[T_k-1 - d, T_k - d]`` best explains each counter increment
  reported at ``T_k`` (least squares over ``d`` in 0..250 ms);
* half-rise time of each signal: from the synchronized edge until the instant power (or the
  counter's per-step mean power, placed at its step time) has crossed half of the step.

Why it matters: a meter read at a window's edge while power changes there is off by about
``delay x power step``; steady power across the edge (guard iterations) removes that error.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from flopmetrics.energy.nvml import NvmlGpu, load_nvml
from flopmetrics.energy.sampler import PowerSampler


def square_wave(a, cycles: int, on_s: float, off_s: float) -> list[tuple[float, float]]:
    edges = []
    for _ in range(cycles):
        time.sleep(off_s)
        torch.cuda.synchronize()
        t_on = time.perf_counter()
        while time.perf_counter() - t_on < on_s:
            for _ in range(4):
                a @ a
            torch.cuda.synchronize()
        edges.append((t_on, time.perf_counter()))
    time.sleep(off_s)
    return edges


def step_power(t: np.ndarray, edges, idle_w: float, busy_w: float) -> np.ndarray:
    p = np.full_like(t, idle_w)
    for on, off in edges:
        p[(t >= on) & (t < off)] = busy_w
    return p


def fit_counter_delay(ticks: np.ndarray, edges, idle_w: float, busy_w: float) -> dict:
    t, e = ticks[:, 0], ticks[:, 1]
    grid = np.linspace(t[0], t[-1], int((t[-1] - t[0]) / 1e-4))
    sse = []
    delays = np.arange(0.0, 0.2505, 0.001)
    for d in delays:
        cum = np.concatenate(
            [[0], np.cumsum(step_power(grid[:-1] - d, edges, idle_w, busy_w) * np.diff(grid))]
        )
        predicted = np.diff(np.interp(t, grid, cum))
        sse.append(float(np.sum((np.diff(e) - predicted) ** 2)))
    best = int(np.argmin(sse))
    return {
        "counter_delay_s": float(delays[best]),
        "rms_residual_j": float(np.sqrt(sse[best] / (len(t) - 1))),
        "rms_residual_at_zero_delay_j": float(np.sqrt(sse[0] / (len(t) - 1))),
    }


def half_rise(times: np.ndarray, power: np.ndarray, edges, idle_w: float, busy_w: float) -> dict:
    half = (idle_w + busy_w) / 2
    rise, fall = [], []
    for on, off in edges:
        after_on = times[(times >= on) & (power > half)]
        after_off = times[(times >= off) & (power < half)]
        if len(after_on):
            rise.append(float(after_on[0] - on))
        if len(after_off):
            fall.append(float(after_off[0] - off))
    return {"rise_s": rise, "fall_s": fall}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=4)
    ap.add_argument("--on", type=float, default=1.2)
    ap.add_argument("--off", type=float, default=0.8)
    args = ap.parse_args()
    gpu = NvmlGpu.for_torch_device(load_nvml(), 0)
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    for _ in range(10):
        a @ a
    torch.cuda.synchronize()
    with PowerSampler(gpu, hz=100) as sampler:
        edges = square_wave(a, args.cycles, args.on, args.off)
        sampler.wait_for(time.perf_counter() + 0.3, tick=True)
    ticks, trace = sampler.ticks(), sampler.trace()
    step_t = ticks[1:, 0]
    step_w = np.diff(ticks[:, 1]) / np.diff(ticks[:, 0])
    # steady levels: counter steps well inside an idle or a busy phase
    inside = np.zeros(len(step_t), bool)
    for on, off in edges:
        inside |= (step_t > on + 0.4) & (step_t < off - 0.1)
    outside = np.ones(len(step_t), bool)
    for on, off in edges:
        outside &= ~((step_t > on - 0.1) & (step_t < off + 0.4))
    busy_w, idle_w = float(np.median(step_w[inside])), float(np.median(step_w[outside]))
    result = {
        "gpu": gpu.name(),
        "driver": gpu.driver_version(),
        "power_limit_w": gpu.power_limit_w(),
        "counter_period_s": float(np.median(np.diff(ticks[:, 0]))),
        "idle_w": idle_w,
        "busy_w": busy_w,
        "cycles": args.cycles,
        "on_s": args.on,
        "off_s": args.off,
        **fit_counter_delay(ticks, edges, idle_w, busy_w),
        "counter_step_power_half_rise": half_rise(step_t, step_w, edges, idle_w, busy_w),
        "instant_power_half_rise": half_rise(
            trace["t"].to_numpy(), trace["power_instant_w"].to_numpy(), edges, idle_w, busy_w
        ),
        "instant_power_update_period_s": float(
            np.median(
                np.diff(
                    trace["t"].to_numpy()[1:][np.diff(trace["power_instant_w"].to_numpy()) != 0]
                )
            )
        ),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
