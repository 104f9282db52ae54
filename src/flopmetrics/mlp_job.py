"""One MLP profiling job: FLOPs (analytic, counted, profiler), time and (where a meter
exists) energy of each pass.

Passes measured directly: ``forward`` (inference, no grad), ``forward_train`` (grad-enabled
forward + ``sum`` loss, graph discarded) and ``forward_backward``; ``backward`` is derived as
``forward_backward - forward_train`` per iteration. FLOPs are counted for exactly one
iteration of exactly the work each window runs, so ``flops * iterations`` is the window's work.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

from . import job as job_runner
from .precision import get_precision
from .targets import resolve_target
from .workloads import MLPWorkload

DIRECT_PASSES = ("forward", "forward_train", "forward_backward")


@dataclass(frozen=True)
class MLPJob:
    device: str  # a target: cpu, cuda, cuda:<i> or a GPU label (h100, ...)
    dtype: str
    n: int
    d: int
    m: int
    repeats: int = 3
    min_window_s: float = 0.05
    warmup_iterations: int = 2
    seed: int = 0
    profiler_flops: bool = True
    meter: str = "auto"
    sampler_hz: float = 50.0
    guard_s: float = 0.3
    idle_baseline_s: float = 0.0
    run_on_cpu: bool = False

    def __post_init__(self):
        get_precision(self.dtype)  # fails early on an unknown dtype
        for key in ("n", "d", "m", "repeats"):
            value = getattr(self, key)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{key} must be a positive integer, got {value!r}")


def run_with_trace(job: MLPJob, progress=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    device, expected = resolve_target(job.device, job.run_on_cpu)
    settings = job_runner.EnergySettings(meter=job.meter, sampler_hz=job.sampler_hz, guard_s=job.guard_s,
                                         idle_baseline_s=job.idle_baseline_s, repeats=job.repeats,
                                         min_window_s=job.min_window_s, warmup_iterations=job.warmup_iterations)
    describe = {"target": job.device, "n": job.n, "d": job.d, "m": job.m}
    rows, trace = job_runner.run(
        lambda: MLPWorkload(device, job.dtype, job.n, job.d, job.m, job.seed, passes=DIRECT_PASSES),
        device=device, settings=settings, params={**asdict(job), "job_name": f"mlp {job.device} {job.dtype} "
                                                 f"n={job.n} d={job.d} m={job.m}"},
        describe=describe, expected_gpu=expected, headline="analytic", profiler=job.profiler_flops,
        progress=progress)
    rows["device"] = job.device
    if "flops_analytic" in rows:
        rows["flops_per_s"] = rows["flops_analytic"] / rows["time_per_iter_s"]
        rows["arithmetic_intensity"] = rows["flops_analytic"] / rows["bytes_analytic"]
        rows["pct_diff_counted_vs_analytic"] = 100 * (rows["flops_counted"] - rows["flops_analytic"]) / rows["flops_analytic"]
        rows["pct_diff_counted_vs_analytic_gemm"] = (
            100 * (rows["flops_counted"] - rows["flops_analytic_gemm"]) / rows["flops_analytic_gemm"])
    return rows, trace


def run(job: MLPJob, progress=None) -> pd.DataFrame:
    """Measure ``job`` and return one row per pass (direct and derived)."""
    return run_with_trace(job, progress)[0]
