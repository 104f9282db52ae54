"""GPU kernel time of a step, from ``torch.profiler``: all kernels, NCCL's (the collectives), and
how much of the time the GPU had any kernel running. Profiled outside measured windows, so the
profiler's own cost never enters an energy reading.

NCCL kernels of DDP run on their own stream beside the backward's compute, and a rank that
reaches a collective first waits inside its kernel for the others: their time is how long
communication occupied the GPU, waiting included, not how long it delayed the step (that is
what the energy and time of ``communication`` say), and it differs between the ranks of one
step."""

from __future__ import annotations

import json
import math
import tempfile
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity
from torch.profiler import profile as torch_profile

NCCL = "nccl"  # every NCCL device kernel's name starts with it (ncclDevKernel_..., ncclKernel_...)


def trace_events(prof) -> list[dict]:
    """The Chrome-trace events of a finished ``torch.profiler`` run: only the trace holds each
    kernel's launch configuration (grid, block, registers, shared memory)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trace.json"
        prof.export_chrome_trace(str(path))
        return json.loads(path.read_text())["traceEvents"]


def kernel_events(events: list[dict]) -> list[dict]:
    """A Chrome trace's GPU kernel events (with a duration)."""
    return [e for e in events if e.get("cat") == "kernel" and "dur" in e]


def kernel_ms(events: list[dict]) -> dict[str, float]:
    """Of a Chrome trace's kernel events: total and NCCL kernel time, and ``busy_ms``, the time
    at least one kernel ran (overlapping kernels counted once), all in ms."""
    kernels = sorted((float(e["ts"]), float(e["dur"]), e["name"]) for e in kernel_events(events))
    busy, end = 0.0, -math.inf
    for start, dur, _ in kernels:  # the union of [start, start + dur)
        busy += max(0.0, start + dur - max(start, end))
        end = max(end, start + dur)
    return {
        "kernel_ms": sum(d for _, d, _ in kernels) / 1e3,
        "nccl_kernel_ms": sum(d for _, d, n in kernels if n.lower().startswith(NCCL)) / 1e3,
        "busy_ms": busy / 1e3,
        "kernels": len(kernels),
    }


def _profiled(step, iterations: int, device: str) -> tuple[list[dict], float]:
    """The Chrome-trace events of ``iterations`` back-to-back iterations of ``step`` under
    ``torch.profiler`` (GPU activity), and their wall time in seconds."""
    torch.cuda.synchronize(device)
    with torch_profile(activities=[ProfilerActivity.CUDA]) as prof:
        start = time.perf_counter()
        for _ in range(iterations):
            step()
        torch.cuda.synchronize(device)
        wall = time.perf_counter() - start
    return trace_events(prof), wall


def profile(step, iterations: int, device: str, what: str = "the step") -> dict[str, float]:
    """``kernel_ms``, ``nccl_kernel_ms`` and ``busy_ms`` per iteration over ``iterations``
    back-to-back iterations of ``step`` (already warmed up), and ``wall_ms``, the host's time per
    iteration from the first launch to the synchronize after the last."""
    events, wall = _profiled(step, iterations, device)
    totals = kernel_ms(events)
    if not totals["kernels"]:
        raise RuntimeError(f"the profiler saw no GPU kernel in {iterations} iterations of {what}")
    out = {k: totals[k] / iterations for k in ("kernel_ms", "nccl_kernel_ms", "busy_ms")}
    out["wall_ms"] = 1e3 * wall / iterations
    return out


def by_kernel(step, iterations: int, device: str) -> dict[str, float]:
    """GPU time per iteration (microseconds) of each kernel name over ``iterations`` iterations."""
    out: dict[str, float] = {}
    for e in kernel_events(_profiled(step, iterations, device)[0]):
        out[e["name"]] = out.get(e["name"], 0.0) + float(e["dur"]) / iterations
    return out


def profile_steps(steps: dict, iterations: int, device: str) -> dict[str, dict]:
    """:func:`profile` of every pass of ``steps``, each after one unprofiled iteration. Empty on a
    CPU (no GPU kernels) or with ``iterations`` 0. Every rank of a distributed job must call it
    alike: the steps are collective."""
    if iterations <= 0 or not device.startswith("cuda"):
        return {}
    out = {}
    for name, step in steps.items():
        step()
        out[name] = profile(step, iterations, device, name)
    return out


def add_kernel_columns(rows, kernels: dict[str, dict], iterations: int):
    """``rows`` with ``kernel_ms``, ``nccl_kernel_ms`` per pass (NaN where not profiled: derived
    passes, CPUs) and ``profile_iterations``."""
    rows = rows.copy()
    for col in ("kernel_ms", "nccl_kernel_ms"):
        rows[col] = [kernels.get(p, {}).get(col, math.nan) for p in rows["pass"]]
    rows["profile_iterations"] = iterations if kernels else 0
    return rows
