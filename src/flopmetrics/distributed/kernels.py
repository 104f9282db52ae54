"""GPU kernel time per iteration of each distributed step, from ``torch.profiler``: all kernels,
and NCCL's (the collectives). Run after the measured windows, over a few iterations, so the
profiler's own cost never enters an energy reading.

NCCL kernels of DDP run on their own stream beside the backward's compute, and a rank that
reaches a collective first waits inside its kernel for the others: their time is how long
communication occupied the GPU, waiting included, not how long it delayed the step (that is
what the energy and time of ``communication`` say). On one H200 pair (host E, 2026-11-28) a
DDP train step held 25 ms of NCCL kernels on one rank and 32 ms on the other."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import torch

NCCL = "nccl"  # every NCCL device kernel's name starts with it (ncclDevKernel_..., ncclKernel_...)


def kernel_ms(trace_events: list[dict]) -> dict[str, float]:
    """Total and NCCL kernel time (ms) of a Chrome trace's kernel events."""
    kernels = [e for e in trace_events if e.get("cat") == "kernel" and "dur" in e]
    return {"kernel_ms": sum(float(e["dur"]) for e in kernels) / 1e3,
            "nccl_kernel_ms": sum(float(e["dur"]) for e in kernels if e["name"].lower().startswith(NCCL)) / 1e3,
            "kernels": len(kernels)}


def profile_steps(steps: dict, iterations: int, device: str) -> dict[str, dict]:
    """Per pass: ``kernel_ms`` and ``nccl_kernel_ms`` per iteration over ``iterations`` iterations
    after one unprofiled one. Empty on a CPU (no GPU kernels) or with ``iterations`` 0. Every rank
    must call it alike: the steps are collective."""
    if iterations <= 0 or not device.startswith("cuda"):
        return {}
    from torch.profiler import ProfilerActivity, profile

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, step in steps.items():
            step()
            torch.cuda.synchronize(device)
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                for _ in range(iterations):
                    step()
                torch.cuda.synchronize(device)
            path = Path(tmp) / f"{name}.json"
            prof.export_chrome_trace(str(path))
            totals = kernel_ms(json.loads(path.read_text())["traceEvents"])
            if not totals["kernels"]:
                raise RuntimeError(f"the profiler saw no GPU kernel in {iterations} iterations of {name}")
            out[name] = {k: totals[k] / iterations for k in ("kernel_ms", "nccl_kernel_ms")}
    return out


def add_kernel_columns(rows, kernels: dict[str, dict], iterations: int):
    """``rows`` with ``kernel_ms``, ``nccl_kernel_ms`` per pass (NaN where not profiled: derived
    passes, CPUs) and ``profile_iterations``."""
    rows = rows.copy()
    for col in ("kernel_ms", "nccl_kernel_ms"):
        rows[col] = [kernels.get(p, {}).get(col, math.nan) for p in rows["pass"]]
    rows["profile_iterations"] = iterations if kernels else 0
    return rows
