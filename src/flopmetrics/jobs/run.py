"""Run one measurement job: any workload, every pass, time + energy + FLOPs + provenance.

The job opens synchronized windows of whole iterations (see :mod:`flopmetrics.energy.windows`),
reads the meters chosen for its device, counts FLOPs for exactly one iteration of each
measured pass, derives the passes that cannot run alone, applies the plausibility gates and
returns one row per pass plus the raw power trace.
"""

from __future__ import annotations

import contextlib
import math
import time

import pandas as pd
import torch

from .. import workloads
from ..energy import datasheet, gates
from ..energy.setup import setup_meters
from ..energy.windows import Monitor
from ..workloads.models import resolve as resolve_model
from . import provenance
from .passes import PassSpec, measure_passes, stderr_progress
from .rows import build_rows, label_trace
from .spec import JobSpec
from .targets import resolve_target


def run(spec: JobSpec, *, nvml=None, progress=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Measure the job ``spec`` describes. Returns ``(rows, trace)``; ``trace`` is empty
    without a sampler. ``nvml``: the NVML bindings module (the real ``pynvml`` when None).

    A target that names a GPU architecture (``h100``) fails unless the job got one.
    """
    progress = progress or stderr_progress(spec.name)
    device, expected_gpu = resolve_target(spec.target, spec.run_on_cpu)
    if device == "cuda":
        device = "cuda:0"  # the first GPU this job was given (CUDA_VISIBLE_DEVICES / Slurm)
    gpu_spec = _check_gpu(device, expected_gpu)
    setup = setup_meters(device, spec.energy, nvml)
    monitor = Monitor(device, setup.meters)
    prov = provenance.collect(device, {**spec.params(), "job_name": spec.name})
    describe = _identity(spec)
    base = {**describe, "device": device, "energy_method": setup.method, "meter_status": setup.status,
            "gpu_key": gpu_spec.key if gpu_spec else "", "gpu_label": gpu_spec.label if gpu_spec else "cpu",
            **setup.gpu_info(), **prov}
    try:
        workload = workloads.build(spec.experiment, device, spec.precision, spec.workload, spec.measure.seed)
    except OUT_OF_MEMORY as err:
        if not is_out_of_memory(err):
            raise
        progress(f"out of memory while building the workload: {err}")
        return _finish_oom(base, describe, err)
    sampler_ctx = setup.sampler if setup.sampler else contextlib.nullcontext()
    m = spec.measure
    try:
        with workload.precision_scope(), sampler_ctx:
            counted = workload.counted()
            analytic_cols = workload.analytic()
            profiled = workload.profiled() if m.profiler_flops else {}
            # guards matter where a meter reports late (the GPU counter); CPU meters need none
            guard_s = spec.energy.guard_s if setup.sampler else 0.0
            idle_s = spec.energy.idle_baseline_s if setup.method != "none" else 0
            idle = _idle_baseline(monitor, idle_s, progress, guard_s)
            steps = workload.steps()
            specs = [PassSpec(p, steps[p], prepare=workload.restore,
                              check=lambda out, p=p: workload.health(p, out)) for p in workload.passes]
            windows = measure_passes(monitor, specs,
                                     repeats=m.repeats, min_window_s=m.min_window_s,
                                     warmup_iterations=m.warmup_iterations, guard_s=guard_s, progress=progress,
                                     min_repeats=m.min_repeats, target_rse=m.target_rse)
    except OUT_OF_MEMORY as err:
        if not is_out_of_memory(err):
            raise
        del workload
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        progress(f"out of memory: {err}")
        return _finish_oom(base, describe, err)
    other = setup.gpu.other_processes() if setup.gpu else []
    trace = setup.sampler.trace_with_steps() if setup.sampler else pd.DataFrame()
    rows = build_rows(workload, windows, counted, analytic_cols, profiled, idle, m, base, other)
    rows = gates.apply(workload.finish_rows(rows))
    # when the measuring ended (timestamp_utc is when the job started), on the same clock
    rows["finished_utc"] = pd.Timestamp.now(tz="UTC").isoformat(timespec="milliseconds")
    if len(trace):
        trace = label_trace(trace, windows, idle.get("_window"))
        trace["config_hash"] = prov["config_hash"]
    return rows, trace


# the spec keys each experiment's rows carry as identity columns
_IDENTITY = {"mlp": ("n", "d", "m"), "llm": ("model", "batch_size", "seq_len"), "matmul": ("size",)}


def _identity(spec: JobSpec) -> dict:
    out = {"target": spec.target, **{k: spec.workload[k] for k in _IDENTITY[spec.experiment]}}
    if spec.experiment == "llm":
        out["model"] = resolve_model(spec.workload["model"])[0]  # the name, not the spec
    return out


# GPU: torch.cuda.OutOfMemoryError; CPU: PyTorch's allocator raises a plain RuntimeError, Python a MemoryError
OUT_OF_MEMORY = (torch.cuda.OutOfMemoryError, MemoryError, RuntimeError)
CPU_OOM_MESSAGES = ("DefaultCPUAllocator: can't allocate memory", "not enough memory", "out of memory")


def is_out_of_memory(err: BaseException) -> bool:
    return isinstance(err, (torch.cuda.OutOfMemoryError, MemoryError)) or any(
        m in str(err) for m in CPU_OOM_MESSAGES)


def _check_gpu(device: str, expected_gpu: str | None):
    """The datasheet entry of the job's GPU (None on a CPU or an unknown GPU)."""
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


def _idle_baseline(monitor: Monitor, seconds: float, progress, guard_s: float = 0.0) -> dict:
    if seconds <= 0:
        return {"idle_power_w": math.nan, "idle_power_trace_w": math.nan}
    time.sleep(guard_s)  # idle is steady across the edges too
    monitor.begin_window("idle")
    time.sleep(seconds)
    w = monitor.end_window("idle", settle=lambda: time.sleep(guard_s))
    progress(f"idle baseline: {w.readings.get('energy_j', math.nan) / w.elapsed_s:.1f} W over {w.elapsed_s:.2f} s")
    return {"idle_power_w": w.readings.get("energy_j", math.nan) / w.elapsed_s,
            "idle_power_trace_w": w.readings.get("energy_trace_j", math.nan) / w.elapsed_s,
            "_window": w}


def _finish_oom(base, describe, err):
    """One row per direct pass with status ``oom``: the sweep goes on and the gap is visible."""
    rows = pd.DataFrame([{**base, "pass": p, "derived": False, "status": "oom", "error": str(err)[:500], **describe}
                         for p in ("forward", "forward_train", "forward_backward", "train_step")])
    return gates.apply(rows), pd.DataFrame()
