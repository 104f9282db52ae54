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
from collections.abc import Callable

import pandas as pd
import torch

from .. import workloads
from ..energy import datasheet, gates
from ..energy.setup import setup_meters
from ..energy.windows import Monitor, Window
from ..flops.models import resolve as resolve_model
from . import provenance
from .passes import measure_workload, stderr_progress
from .rows import build_rows, label_trace
from .spec import JobSpec
from .stats import estimate
from .targets import resolve_target


def run(
    spec: JobSpec, *, nvml=None, progress=None, sized: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Measure the one configuration ``spec`` describes. Returns ``(rows, trace)``; ``trace`` is
    empty without a sampler. ``nvml``: the NVML bindings module (the real ``pynvml`` when None);
    ``sized``: see :func:`flopmetrics.energy.windows.run_window`.

    A target that names a GPU architecture (``h100``) fails unless the job got one.
    """
    return run_batch([spec], nvml=nvml, progress=progress, sized=sized)[0]


def run_batch(
    specs: list[JobSpec],
    *,
    nvml=None,
    progress=None,
    sized: bool = True,
    done: Callable[[int, pd.DataFrame, pd.DataFrame], None] | None = None,
) -> list[tuple]:
    """Measure several configurations of one experiment on one target, with the same measuring
    and energy settings, as one job: the meters are set up and the idle baseline measured once,
    and a causal LM is built once per precision and resized for each batch size and sequence
    length. Each configuration gets its own rows and its own slice of the trace, as if it
    had run alone. ``done(i, rows, trace)``, if given, is called as configuration ``i`` finishes
    (the workflow writes its files then, so an interrupted job keeps nothing half-written)."""
    _check_batch(specs)
    first = specs[0]
    say = progress or stderr_progress(first.name if len(specs) == 1 else _batch_name(specs))
    device, expected_gpu = resolve_target(first.target, first.run_on_cpu)
    if device == "cuda":
        device = "cuda:0"  # the first GPU this job was given (CUDA_VISIBLE_DEVICES / Slurm)
    if first.measure.launch == "cuda_graph" and torch.device(device).type != "cuda":
        raise ValueError(
            f"launch 'cuda_graph' replays passes from CUDA graphs, but this {first.experiment} job "
            f"runs on {device!r} (target {first.target!r}{', run_on_cpu' if first.run_on_cpu else ''}); "
            "use launch 'eager' there"
        )
    gpu_spec = check_gpu(device, expected_gpu)
    setup = setup_meters(device, first.energy, nvml)
    monitor = Monitor(device, setup.meters)
    gpu = {
        "device": device,
        "energy_method": setup.method,
        "meter_status": setup.status,
        "gpu_key": gpu_spec.key if gpu_spec else "",
        "gpu_label": gpu_spec.label if gpu_spec else "cpu",
        **setup.gpu_info(),
    }
    # guards matter where a meter reports late (the GPU counter); CPU meters need none
    guard_s = first.energy.guard_s if setup.sampler else 0.0
    out, workload = [], None
    with setup.sampler if setup.sampler else contextlib.nullcontext():
        idle = idle_baseline(
            monitor, setup, first.energy.idle_baseline_s, say, guard_s, first.measure.target_rse
        )
        for i, spec in enumerate(specs):
            if len(specs) > 1:
                say(f"configuration {i + 1}/{len(specs)}: {spec.precision} {_identity(spec)}")
            began = time.perf_counter()
            # the previous workload is handed over, not kept here: its optimizer state must not
            # stay alive while the next configuration runs
            held, workload = [workload], None
            rows, windows, workload = _measure(
                spec, device, gpu, setup, monitor, idle, guard_s, sized, say, held
            )
            trace = pd.DataFrame()
            if setup.sampler and windows:
                trace = _trace_slice(setup.sampler.trace_with_steps(), began, idle.get("_window"))
                trace = label_trace(trace, windows, idle.get("_window"))
                trace["config_hash"] = rows["config_hash"].iloc[0]
            if done:
                done(i, rows, trace)
            out.append((rows, trace))
    return out


def _measure(spec, device, gpu, setup, monitor, idle, guard_s, sized, say, held: list):
    """One configuration's rows and windows, and the workload (for the next configuration);
    ``held``: a list holding the previous configuration's workload (emptied here)."""
    prov = provenance.collect(device, {**spec.params(), "job_name": spec.name})
    describe = _identity(spec)
    base = {**describe, **gpu, **prov}
    m = spec.measure
    try:
        start = time.perf_counter()
        workload = workloads.build(
            spec.experiment, device, spec.precision, spec.workload, m.seed, held.pop()
        )
        built = time.perf_counter()
        with workload.precision_scope():
            counted = workload.counted()
            analytic_cols = workload.analytic()
            profiled = workload.profiled() if m.profiler_flops else {}
            # what a configuration costs before its first window: where GPU time goes
            say(
                f"workload built in {built - start:.1f} s, FLOPs counted in {time.perf_counter() - built:.1f} s"
            )
            steps = workload.steps()
            windows = measure_workload(
                monitor,
                workload,
                {p: steps[p] for p in workload.passes},
                m,
                guard_s=guard_s,
                progress=say,
                sized=sized,
            )
    except OUT_OF_MEMORY as err:
        if not is_out_of_memory(err):
            raise
        workload = None
        held.clear()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        say(f"out of memory: {err}")
        return _finish_oom(base, describe, err), {}, None
    other = setup.gpu.other_processes() if setup.gpu else []
    rows = build_rows(workload, windows, counted, analytic_cols, profiled, idle, m, base, other)
    rows = gates.apply(workload.finish_rows(rows))
    # when the measuring ended (timestamp_utc is when it started), on the same clock
    rows["finished_utc"] = pd.Timestamp.now(tz="UTC").isoformat(timespec="milliseconds")
    return rows, windows, workload


def _check_batch(specs: list[JobSpec]) -> None:
    if not specs:
        raise ValueError("a job needs at least one configuration")
    shared = {(s.experiment, s.target, s.measure, s.energy, s.run_on_cpu) for s in specs}
    if len(shared) > 1:
        raise ValueError(
            "one job measures configurations of one experiment and target with the same "
            f"measuring and energy settings; got {len(shared)} different sets"
        )


def _batch_name(specs: list[JobSpec]) -> str:
    s = specs[0]
    precisions = "/".join(dict.fromkeys(x.precision for x in specs))
    return f"{s.experiment} {s.target} {precisions} ({len(specs)} configurations)"


def _trace_slice(trace: pd.DataFrame, began: float, idle_window) -> pd.DataFrame:
    """The samples of one configuration (from when it began) and of the job's idle baseline."""
    keep = trace["t"] >= began
    if idle_window is not None:
        keep |= (trace["t"] >= idle_window.start_s - 0.5) & (trace["t"] <= idle_window.end_s + 0.5)
    return trace[keep].reset_index(drop=True)


# the spec keys each experiment's rows carry as identity columns
_IDENTITY = {"mlp": ("n", "d", "m"), "llm": ("model", "batch_size", "seq_len"), "matmul": ("size",)}


def _identity(spec: JobSpec) -> dict:
    out = {"target": spec.target, **{k: spec.workload[k] for k in _IDENTITY[spec.experiment]}}
    if spec.experiment == "llm":
        out["model"] = resolve_model(spec.workload["model"])[0]  # the name, not the spec
    return out


# GPU: torch.cuda.OutOfMemoryError; CPU: PyTorch's allocator raises a plain RuntimeError, Python a MemoryError
OUT_OF_MEMORY = (torch.cuda.OutOfMemoryError, MemoryError, RuntimeError)
CPU_OOM_MESSAGES = (
    "DefaultCPUAllocator: can't allocate memory",
    "not enough memory",
    "out of memory",
)


def is_out_of_memory(err: BaseException) -> bool:
    return isinstance(err, (torch.cuda.OutOfMemoryError, MemoryError)) or any(
        m in str(err) for m in CPU_OOM_MESSAGES
    )


def check_gpu(device: str, expected_gpu: str | None):
    """The datasheet entry of the job's GPU (None on a CPU or an unknown GPU); fails where the
    GPU is not of the architecture ``expected_gpu`` names."""
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


def idle_baseline(
    monitor: Monitor, setup, seconds: float, progress, guard_s: float = 0.0, target_rse: float = 0.0
) -> dict:
    """Idle power of the metered device (``setup``: its :class:`MeterSetup`, whose sampler runs)
    from consecutive 0.5 s windows: at least two, stopping once their mean has ``target_rse``
    relative standard error, at most ``seconds`` in all (one window of ``seconds`` where that is
    shorter than two). Nothing is measured where no meter reads energy."""
    if setup.method == "none":
        seconds = 0
    setup.wait_for_counter()
    if seconds <= 0:
        return {"idle_power_w": math.nan, "idle_power_trace_w": math.nan}
    time.sleep(guard_s)  # idle is steady across the edges too
    part = seconds if seconds < 1.0 else 0.5
    parts: list = []
    while True:
        monitor.begin_window("idle")
        time.sleep(part)
        parts.append(monitor.end_window("idle", settle=lambda: time.sleep(guard_s)))
        powers = [w.readings.get("energy_j", math.nan) / w.elapsed_s for w in parts]
        total = sum(w.elapsed_s for w in parts)
        rse = estimate(powers).sem / abs(estimate(powers).mean) if len(parts) > 1 else math.inf
        done = total >= seconds - 1e-9 or (
            len(parts) >= 2 and math.isfinite(rse) and rse <= target_rse
        )
        if monitor.agree(float(done), "min"):  # ranks measuring together stop together
            break
    w = Window(
        "idle",
        parts[0].start_s,
        parts[-1].end_s,
        wall_start=parts[0].wall_start,
        wall_end=parts[-1].wall_end,
        readings={
            k: sum(p.readings.get(k, math.nan) for p in parts)
            for k in ("energy_j", "energy_trace_j")
        },
    )
    elapsed = sum(p.elapsed_s for p in parts)
    progress(
        f"idle baseline: {w.readings['energy_j'] / elapsed:.1f} W over {elapsed:.2f} s ({len(parts)} windows)"
    )
    return {
        "idle_power_w": w.readings["energy_j"] / elapsed,
        "idle_power_trace_w": w.readings["energy_trace_j"] / elapsed,
        "_window": w,
    }


def _finish_oom(base, describe, err):
    """One row per direct pass with status ``oom``: the sweep goes on and the gap is visible."""
    rows = pd.DataFrame(
        [
            {
                **base,
                "pass": p,
                "derived": False,
                "status": "oom",
                "error": str(err)[:500],
                **describe,
            }
            for p in ("forward", "forward_train", "forward_backward", "train_step")
        ]
    )
    return gates.apply(rows)
