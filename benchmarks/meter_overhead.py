"""Benchmark: step time with vs without the power sampler running (target: <= 1 % overhead).

    python benchmarks/meter_overhead.py [--model llama-3.2-1b] [--seq 512] [--rounds 5]

Alternates windows with and without the 50 Hz sampler (which also polls the energy counter
every 1 ms, in its own process) and the counter meter on a
train step, so drifts hit both alike; prints the mean step time of each and the difference.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from flopmetrics.energy.counter import NvmlCounterMeter
from flopmetrics.energy.nvml import NvmlGpu, load_nvml
from flopmetrics.energy.sampler import PowerSampler
from flopmetrics.energy.windows import Monitor
from flopmetrics.jobs.protocol import run_window
from flopmetrics.workloads.causal_lm import CausalLMWorkload, LMConfig


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="llama-3.2-1b")
    ap.add_argument("--precision", default="bf16-mixed")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--window", type=float, default=2.0)
    args = ap.parse_args()
    config = LMConfig.of(
        {
            "model": args.model,
            "batch_size": args.batch,
            "seq_len": args.seq,
            "passes": ["train_step"],
        }
    )
    wl = CausalLMWorkload("cuda", args.precision, config)
    step = wl.steps()["train_step"]
    for _ in range(3):
        step()
    gpu = NvmlGpu.for_torch_device(load_nvml(), 0)
    bare = Monitor("cuda")
    times = {"without": [], "with": []}
    for _ in range(args.rounds):
        w = run_window(bare, "bare", step, args.window)
        times["without"].append(w.elapsed_s / w.iterations)
        with PowerSampler(gpu, 50) as sampler:
            sampler.wait_for(time.perf_counter(), tick=True)
            metered = Monitor("cuda", [NvmlCounterMeter(sampler), sampler])
            w = run_window(metered, "metered", step, args.window)
        times["with"].append(w.elapsed_s / w.iterations)
    a, b = np.mean(times["without"]), np.mean(times["with"])
    result = {
        "gpu": torch.cuda.get_device_name(0),
        "model": wl.model_name,
        "precision": args.precision,
        "batch": args.batch,
        "seq": args.seq,
        "step_s_without": a,
        "step_s_with": b,
        "overhead_pct": 100 * (b - a) / a,
        "rounds": times,
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
