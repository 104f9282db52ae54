"""Run one measurement job: any workload, every pass, time + energy + FLOPs + provenance.

The job opens synchronized windows of whole iterations (see :mod:`flopmetrics.measure`),
reads the meters chosen for its device, counts FLOPs for exactly one iteration of each
measured pass, derives the passes that cannot run alone, applies the plausibility gates and
returns one row per pass plus the raw power trace.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch

from . import gates, provenance
from .measure import Monitor
from .meters import MeterError, NullMeter, NvmlCounterMeter, PowerSampler, RaplMeter
from .nvml import NvmlGpu, NvmlUnavailable, load_nvml, throttle_names
from .passes import PassSpec, derive, measure_passes, per_iteration, stderr_progress
from .stats import Estimate, estimate
from .workloads import Workload, derivable

METERS = ("auto", "nvml", "nvml_trace", "rapl", "none")


@dataclass(frozen=True)
class EnergySettings:
    meter: str = "auto"  # auto | nvml (counter + sampler) | nvml_trace (sampler only) | rapl | none
    sampler_hz: float = 50.0
    guard_s: float = 0.3  # same-pass iterations before and after each GPU window (steady edges)
    idle_baseline_s: float = 2.0
    repeats: int = 5
    min_window_s: float = 2.0
    warmup_iterations: int = 3

    def __post_init__(self):
        if self.meter not in METERS:
            raise ValueError(f"unknown meter {self.meter!r}; expected one of {METERS}")
        if self.guard_s < 0:
            raise ValueError(f"guard_s must be >= 0, got {self.guard_s}")


@dataclass
class MeterSetup:
    meters: list
    sampler: PowerSampler | None
    gpu: NvmlGpu | None
    method: str  # how energy_j was obtained
    status: str  # "ok" or why energy is missing


def setup_meters(device: str, settings: EnergySettings, nvml=None) -> MeterSetup:
    """Choose meters for ``device``. ``nvml``: bindings module (real pynvml when None)."""
    dev = torch.device(device)
    want = settings.meter
    if want == "none":
        return MeterSetup([NullMeter("meter: none")], None, None, "none", "no meter requested")
    if dev.type == "cuda":
        if want == "rapl":
            raise ValueError("meter 'rapl' measures the CPU; a cuda job needs 'auto', 'nvml' or 'nvml_trace'")
        if nvml is None:
            nvml = load_nvml()  # NvmlUnavailable propagates: a GPU job must not silently lose energy
        gpu = NvmlGpu.for_torch_device(nvml, dev.index or 0)
        sampler = PowerSampler(gpu, settings.sampler_hz)
        if want in ("auto", "nvml") and gpu.has_energy_counter():
            return MeterSetup([NvmlCounterMeter(sampler), sampler], sampler, gpu, "nvml_counter_interpolated", "ok")
        if want == "nvml":
            raise NvmlUnavailable(f"{gpu.name()} has no NVML energy counter (pre-Volta); use meter: nvml_trace")
        return MeterSetup([sampler], sampler, gpu, "nvml_trace", "ok")
    if want in ("nvml", "nvml_trace"):
        raise ValueError(f"meter {want!r} needs a cuda device, not {device!r}")
    try:
        return MeterSetup([RaplMeter()], None, None, "rapl", "ok")
    except MeterError as err:
        if want == "rapl":
            raise
        return MeterSetup([NullMeter(str(err))], None, None, "none", f"no CPU energy meter: {err}")


def _gpu_info(setup: MeterSetup) -> dict:
    g = setup.gpu
    if g is None:
        return {"gpu_name": "", "gpu_uuid": "", "driver_version": "", "power_limit_w": math.nan}
    return {"gpu_name": g.name(), "gpu_uuid": g.uuid(), "driver_version": g.driver_version(),
            "power_limit_w": g.power_limit_w()}


def _mean_reading(windows, key) -> float:
    vals = [w.readings.get(key, math.nan) for w in windows]
    return float(np.nanmean(vals)) if vals and not all(math.isnan(v) for v in vals) else math.nan


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


def run(
    make_workload: Callable[[], Workload],
    *,
    device: str,
    settings: EnergySettings,
    params: dict,
    describe: dict,
    expected_gpu: str | None = None,
    attention_convention: str = "full",
    headline: str = "counted",
    profiler: bool = False,
    nvml=None,
    progress=None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Measure a workload. Returns ``(rows, trace)``; ``trace`` is empty without a sampler.

    ``headline`` picks the FLOPs that efficiency uses: ``counted`` (FlopCounterMode, attention
    by ``attention_convention``) or ``analytic`` (the workload's closed form).
    ``expected_gpu``: a datasheet label (e.g. ``h100``); the job fails unless it got one.
    """
    progress = progress or stderr_progress(params.get("job_name", "job"))
    if device == "cuda":
        device = "cuda:0"  # the first GPU this job was given (CUDA_VISIBLE_DEVICES / Slurm)
    dev = torch.device(device)
    gpu_spec = None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {device!r} requested but no CUDA GPU is available to this job")
        torch.cuda.set_device(dev)
        name = torch.cuda.get_device_name(dev)
        from . import datasheet

        gpu_spec = datasheet.check_label_matches(expected_gpu, name) if expected_gpu else _spec_or_none(name)
    setup = setup_meters(device, settings, nvml)
    monitor = Monitor(device, setup.meters)
    prov = provenance.collect(device, params)
    base = {**describe, "device": device, "energy_method": setup.method, "meter_status": setup.status,
            "gpu_key": gpu_spec.key if gpu_spec else "", "gpu_label": gpu_spec.label if gpu_spec else "cpu",
            **_gpu_info(setup), **prov}
    try:
        workload = make_workload()
    except torch.cuda.OutOfMemoryError as err:
        progress(f"out of memory while building the workload: {err}")
        return _finish_oom(base, describe, err)
    sampler_ctx = setup.sampler if setup.sampler else contextlib.nullcontext()
    try:
        with workload.precision_scope(), sampler_ctx:
            counted = workload.counted()
            analytic_cols = workload.analytic()
            profiled = workload.profiled() if profiler else {}
            # guards matter where a meter reports late (the GPU counter); CPU meters need none
            guard_s = settings.guard_s if setup.sampler else 0.0
            idle = _idle_baseline(monitor, settings.idle_baseline_s if setup.method != "none" else 0, progress, guard_s)
            steps = workload.steps()
            windows = measure_passes(monitor, [PassSpec(p, steps[p]) for p in workload.passes],
                                     repeats=settings.repeats, min_window_s=settings.min_window_s,
                                     warmup_iterations=settings.warmup_iterations, guard_s=guard_s,
                                     progress=progress)
    except torch.cuda.OutOfMemoryError as err:
        del workload
        torch.cuda.empty_cache()
        progress(f"out of memory: {err}")
        return _finish_oom(base, describe, err)
    other = setup.gpu.other_processes() if setup.gpu else []
    trace = setup.sampler.trace_with_steps() if setup.sampler else pd.DataFrame()
    rows = _rows(workload, windows, counted, analytic_cols, profiled, idle, settings, attention_convention,
                 headline, base, other)
    rows = gates.apply(rows)
    # when the measuring ended (timestamp_utc is when the job started), on the same clock
    rows["finished_utc"] = pd.Timestamp.now(tz="UTC").isoformat(timespec="milliseconds")
    if len(trace):
        trace = _label_trace(trace, windows, idle.get("_window"))
        trace["config_hash"] = prov["config_hash"]
    return rows, trace


def _spec_or_none(name):
    from . import datasheet

    try:
        return datasheet.for_device_name(name)
    except datasheet.UnknownGPU:
        return None


def _finish_oom(base, describe, err):
    """One row per direct pass with status ``oom``: the sweep goes on and the gap is visible."""
    rows = pd.DataFrame([{**base, "pass": p, "derived": False, "status": "oom", "error": str(err)[:500], **describe}
                         for p in ("forward", "forward_train", "forward_backward", "train_step")])
    return gates.apply(rows), pd.DataFrame()


def _label_trace(trace, windows, idle_window):
    """Name the window of each sample, and put each window's exact edges and iteration count
    on its samples, so every row's energy can be recomputed from the saved trace."""
    trace = trace.copy()
    trace["window"] = ""
    trace["repeat"] = -1
    trace[["window_start_t", "window_end_t"]] = np.nan
    trace["window_iterations"] = 0
    spans = [(idle_window, "idle", 0)] if idle_window else []
    for name, ws in windows.items():
        spans += [(w, name, i) for i, w in enumerate(ws)]
    for w, name, i in spans:
        inside = (trace["t"] >= w.start_s) & (trace["t"] <= w.end_s)
        trace.loc[inside, ["window", "repeat"]] = [name, i]
        trace.loc[inside, ["window_start_t", "window_end_t", "window_iterations"]] = [w.start_s, w.end_s, w.iterations]
    t0 = trace["t"].iloc[0]
    trace["t_rel_s"] = trace["t"] - t0
    return trace


def _flops_for(workload, counted, convention, headline, analytic_cols):
    """Headline FLOPs per pass, and where they came from."""
    out = {}
    for name in ("forward", "forward_train", "forward_backward", "backward"):
        if name in counted:
            out[name] = (counted[name].with_convention(convention), f"FlopCounterMode ({convention} attention)")
    opt = workload.optimizer_flops() if hasattr(workload, "optimizer_flops") else 0
    if "forward_backward" in out:
        out["optimizer"] = (opt, "analytic AdamW (14 FLOPs/parameter)")
        out["train_step"] = (out["forward_backward"][0] + opt, "FlopCounterMode + analytic AdamW")
    if headline == "analytic":
        out = {k: (v["flops_analytic"], "analytic") for k, v in analytic_cols.items()}
    return out


def _rows(workload, windows, counted, analytic_cols, profiled, idle, settings, convention, headline, base, other):
    direct = tuple(windows)
    derived = derivable(direct)
    est = {
        "time": derive({p: per_iteration(ws) for p, ws in windows.items()}, derived),
        "energy": derive({p: per_iteration(ws, "energy_j") for p, ws in windows.items()}, derived),
    }
    has_trace = all("energy_trace_j" in w.readings for ws in windows.values() for w in ws)
    if has_trace:
        est["trace"] = derive({p: per_iteration(ws, "energy_trace_j") for p, ws in windows.items()}, derived)
    idle_w = idle.get("idle_power_w", math.nan)
    # dynamic energy: above what the idle device would have used over the same time
    dyn = {p: _dynamic(ws, idle_w) for p, ws in windows.items()}
    est["dynamic"] = derive(dyn, derived)
    flops = _flops_for(workload, counted, convention, headline, analytic_cols)
    rows = []
    for p in (*direct, *(d.name for d in derived)):
        ws = windows.get(p, [])
        t, e = est["time"][p], est["energy"][p]
        f, source = flops.get(p, (math.nan, ""))
        c = counted.get(p)
        row = {
            **base,
            "workload": workload.kind, "pass": p, "derived": p not in windows, "status": "ok", "error": "",
            "precision": workload.precision_mode, "dtype": workload.precision_mode,
            **workload.describe(),
            "flops": f, "flops_source": source,
            "flops_counted": c.total if c else pd.NA,
            "flops_counted_attention": c.attention if c else pd.NA,
            **analytic_cols.get(p, {}),
            "flops_profiler": profiled.get(p, pd.NA),
            "repeats": settings.repeats, "min_window_s": settings.min_window_s,
            "windows": len(ws) if ws else min(len(windows[d.minuend]) for d in derived if d.name == p),
            "iterations_per_window": min((w.iterations for w in ws), default=pd.NA),
            "window_s_min": min((w.elapsed_s for w in ws), default=_component_min(windows, derived, p)),
            "window_s_mean": float(np.mean([w.elapsed_s for w in ws])) if ws else math.nan,
            "time_per_iter_s": t.mean, "time_per_iter_sem_s": t.sem,
            "energy_j_per_iter": e.mean, "energy_j_per_iter_sem": e.sem, "energy_cv": e.cv,
            "energy_trace_j_per_iter": est["trace"][p].mean if has_trace else math.nan,
            "dynamic_energy_j_per_iter": est["dynamic"][p].mean,
            "dynamic_energy_j_per_iter_sem": est["dynamic"][p].sem,
            "idle_power_w": idle_w,
            "power_mean_w": _mean_reading(ws, "power_mean_w") if ws else math.nan,
            "power_max_w": max((w.readings.get("power_max_w", math.nan) for w in ws), default=math.nan),
            "power_counter_mean_w": (sum(w.readings.get("energy_j", math.nan) for w in ws) /
                                     sum(w.elapsed_s for w in ws)) if ws else math.nan,
            "sm_clock_mean_mhz": _mean_reading(ws, "sm_clock_mean_mhz") if ws else math.nan,
            "mem_clock_mean_mhz": _mean_reading(ws, "mem_clock_mean_mhz") if ws else math.nan,
            "temperature_max_c": max((w.readings.get("temperature_max_c", math.nan) for w in ws), default=math.nan),
            "clock_event_reasons": int(_or_reasons(ws)),
            "throttle_reasons": ",".join(throttle_names(_or_reasons(ws))),
            "counter_period_s": _mean_reading(ws, "counter_period_s") if ws else math.nan,
            "other_processes": len(other),
        }
        rows.append(row)
    df = pd.DataFrame(rows)
    df["flops_per_s"] = df["flops"] / df["time_per_iter_s"]
    df["flops_per_j"] = df["flops"] / df["energy_j_per_iter"]
    df["flops_per_j_sem"] = df["flops_per_j"] * df["energy_j_per_iter_sem"] / df["energy_j_per_iter"]
    df["tflops_per_j"] = df["flops_per_j"] / 1e12
    df["counter_vs_trace_pct"] = 100 * (df["energy_j_per_iter"] - df["energy_trace_j_per_iter"]) / df["energy_trace_j_per_iter"]
    return df


def _component_min(windows, derived, p):
    for d in derived:
        if d.name == p:
            return min(w.elapsed_s for name in (d.minuend, d.subtrahend) for w in windows[name])
    return math.nan


def _or_reasons(ws) -> int:
    out = 0
    for w in ws:
        r = w.readings.get("clock_event_reasons", 0)
        out |= int(r) if not math.isnan(r) else 0
    return out


def _dynamic(ws, idle_w) -> Estimate:
    return estimate([(w.readings.get("energy_j", math.nan) - idle_w * w.elapsed_s) / w.iterations for w in ws])
