"""One MLP profiling job: FLOPs (analytic, counted, profiler) and timing of each pass.

Passes measured directly: ``forward`` (inference, no grad), ``forward_train`` (grad-enabled
forward + ``sum`` loss, graph discarded) and ``forward_backward``; ``backward`` is derived as
``forward_backward - forward_train`` per iteration. FLOPs are counted for exactly one
iteration of exactly the work each window runs, so ``flops * iterations`` is the window's work.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd
import torch

from . import analytic, provenance
from .counting import count_flops, profiler_flops
from .measure import Monitor
from .mlp import build_mlp
from .passes import DerivedPass, PassSpec, derive, measure_passes, per_iteration, stderr_progress
from .precision import get_precision, matmul_precision

DIRECT_PASSES = ("forward", "forward_train", "forward_backward")
DERIVED = (DerivedPass("backward", "forward_backward", "forward_train"),)


@dataclass(frozen=True)
class MLPJob:
    device: str
    dtype: str
    n: int
    d: int
    m: int
    repeats: int = 3
    min_window_s: float = 0.05
    warmup_iterations: int = 2
    seed: int = 0
    profiler_flops: bool = True

    def __post_init__(self):
        get_precision(self.dtype)  # fails early on an unknown dtype
        for key in ("n", "d", "m", "repeats"):
            value = getattr(self, key)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{key} must be a positive integer, got {value!r}")


def _steps(model, x):
    params = list(model.parameters())

    def forward():
        with torch.no_grad():
            return model(x)

    def forward_train():
        return model(x).sum()

    def forward_backward():
        for p in params:
            p.grad = None  # no accumulation kernel: backward work only
        model(x).sum().backward()

    return {"forward": forward, "forward_train": forward_train, "forward_backward": forward_backward}


def _counted(model, x, steps) -> dict[str, dict[str, int]]:
    """FlopCounterMode (and profiler) FLOPs of one iteration of every pass."""
    counted = {name: count_flops(step).total for name, step in steps.items()}
    for p in model.parameters():
        p.grad = None
    loss = model(x).sum()
    counted["backward"] = count_flops(loss.backward).total
    out = {name: {"flops_counted": v} for name, v in counted.items()}
    return out


def _profiled(model, x, steps) -> dict[str, int]:
    prof = {name: profiler_flops(step) for name, step in steps.items()}
    loss = model(x).sum()
    prof["backward"] = profiler_flops(loss.backward)
    return prof


def _analytic_columns(pass_name: str, job: MLPJob, bytes_per_element: int) -> dict:
    # forward_train does the forward's FLOPs (the sum is not counted); forward_backward adds backward
    parts = {
        "forward": ("forward",),
        "forward_train": ("forward",),
        "backward": ("backward",),
        "forward_backward": ("forward", "backward"),
    }[pass_name]
    cols = {}
    for suffix, convention in (("", "ours"), ("_thesis", "thesis")):
        br = [analytic.mlp_flops(p, job.n, job.d, job.m, convention) for p in parts]
        cols[f"flops_analytic{suffix}"] = sum(b.total for b in br)
        cols[f"flops_analytic_gemm{suffix}"] = sum(b.gemm for b in br)
        cols[f"flops_analytic_activation{suffix}"] = sum(b.activation for b in br)
    cols["bytes_analytic"] = sum(analytic.mlp_bytes(p, job.n, job.d, job.m, bytes_per_element) for p in parts)
    return cols


def run(job: MLPJob, progress=None) -> pd.DataFrame:
    """Measure ``job`` and return one row per pass (direct and derived)."""
    precision = get_precision(job.dtype)
    progress = progress or stderr_progress(f"mlp {job.device} {job.dtype} n={job.n} d={job.d} m={job.m}")
    with matmul_precision(precision):
        model, x = build_mlp(job.n, job.d, job.m, precision, job.device, job.seed)
        steps = _steps(model, x)
        counted = _counted(model, x, steps)
        profiled = _profiled(model, x, steps) if job.profiler_flops else {}
        monitor = Monitor(job.device)
        windows = measure_passes(
            monitor,
            [PassSpec(name, steps[name]) for name in DIRECT_PASSES],
            repeats=job.repeats,
            min_window_s=job.min_window_s,
            warmup_iterations=job.warmup_iterations,
            progress=progress,
        )
    times = derive({name: per_iteration(ws) for name, ws in windows.items()}, DERIVED)
    prov = provenance.collect(job.device, asdict(job))
    rows = []
    for pass_name in (*DIRECT_PASSES, *(d.name for d in DERIVED)):
        t = times[pass_name]
        ws = windows.get(pass_name, [])
        row = {
            "workload": "mlp",
            "pass": pass_name,
            "derived": pass_name not in windows,
            **{k: getattr(job, k) for k in ("device", "dtype", "n", "d", "m", "repeats", "min_window_s")},
            **_analytic_columns(pass_name, job, precision.bytes_per_element),
            "flops_counted": counted[pass_name]["flops_counted"],
            "flops_profiler": profiled.get(pass_name, pd.NA),
            "iterations_per_window": min((w.iterations for w in ws), default=pd.NA),
            "window_s_mean": (sum(w.elapsed_s for w in ws) / len(ws)) if ws else pd.NA,
            "time_per_iter_s": t.mean,
            "time_per_iter_sem_s": t.sem,
            **prov,
        }
        rows.append(row)
    df = pd.DataFrame(rows)
    df["flops_per_s"] = df["flops_analytic"] / df["time_per_iter_s"]
    df["arithmetic_intensity"] = df["flops_analytic"] / df["bytes_analytic"]
    df["pct_diff_counted_vs_analytic"] = 100 * (df["flops_counted"] - df["flops_analytic"]) / df["flops_analytic"]
    df["pct_diff_counted_vs_analytic_gemm"] = (
        100 * (df["flops_counted"] - df["flops_analytic_gemm"]) / df["flops_analytic_gemm"]
    )
    return df
