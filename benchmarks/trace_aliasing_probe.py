"""Probe: does the integrated instant-power trace alias with periodic work?

    python benchmarks/trace_aliasing_probe.py > probe.json

Each "iteration" is a burst of bf16 matmuls (about half of the period) followed by an idle
sleep (the other half), so the work repeats with a chosen period. For each period, guarded 3 s
windows are measured exactly as the pipeline measures a pass (counter interpolated at the edges,
trace integrated), and the counter-vs-trace gap of each window is reported. The instant-power
field updates every ~102 ms; if it averages a shorter span than that, periods near 102 ms / k
make its samples lock onto one phase of the iteration and the trace gap grows, while the counter's
energy per iteration stays smooth in the period.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from flopmetrics.energy.counter import NvmlCounterMeter
from flopmetrics.energy.nvml import NvmlGpu, load_nvml
from flopmetrics.energy.sampler import PowerSampler
from flopmetrics.energy.windows import Monitor
from flopmetrics.jobs.protocol import run_window


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--periods-ms", default="40,51,60,77,90,98,102,106,115,150")
    ap.add_argument("--window", type=float, default=3.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    gpu = NvmlGpu.for_torch_device(load_nvml(), 0)
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    for _ in range(20):
        a @ a
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(50):
        a @ a
    torch.cuda.synchronize()
    matmul_s = (time.perf_counter() - t0) / 50
    results = []
    with PowerSampler(gpu, hz=50) as sampler:
        sampler.wait_for(time.perf_counter(), tick=True)
        mon = Monitor("cuda:0", [NvmlCounterMeter(sampler), sampler])
        for period_ms in (float(p) for p in args.periods_ms.split(",")):
            burst = max(1, round(period_ms / 2e3 / matmul_s))

            def step(burst=burst, period_ms=period_ms):
                t = time.perf_counter()
                for _ in range(burst):
                    a @ a
                torch.cuda.synchronize()
                time.sleep(max(0.0, period_ms / 1e3 - (time.perf_counter() - t)))

            windows = [
                run_window(mon, f"p{period_ms:g}", step, args.window, guard_s=0.3)
                for _ in range(args.repeats)
            ]
            gaps = [
                100
                * (w.readings["energy_j"] - w.readings["energy_trace_j"])
                / w.readings["energy_trace_j"]
                for w in windows
            ]
            per_iter = [w.readings["energy_j"] / w.iterations for w in windows]
            results.append(
                {
                    "period_ms_target": period_ms,
                    "matmuls_per_burst": burst,
                    "period_ms": 1e3
                    * float(np.mean([w.elapsed_s / w.iterations for w in windows])),
                    "counter_j_per_iter": float(np.mean(per_iter)),
                    "counter_j_per_iter_cv": float(np.std(per_iter, ddof=1) / np.mean(per_iter)),
                    "counter_vs_trace_pct": gaps,
                    "counter_vs_trace_pct_mean": float(np.mean(gaps)),
                }
            )
            print(json.dumps(results[-1]), flush=True, file=sys.stderr)
    print(
        json.dumps(
            {
                "gpu": gpu.name(),
                "gpu_uuid": gpu.uuid(),
                "driver": gpu.driver_version(),
                "matmul_s": matmul_s,
                "window_s": args.window,
                "guard_s": 0.3,
                "results": results,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
