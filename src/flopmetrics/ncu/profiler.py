"""The kernel choice read on the GPU at hand: one forward and one backward of an MLP config
under ``torch.profiler`` (well under a second, no ncu), every kernel's name and grid in launch
order, in the form of a kernel-choice table's config (:mod:`flopmetrics.ncu.choice`)."""

from __future__ import annotations

import torch
from torch.profiler import ProfilerActivity, profile

from ..jobs.kernels import kernel_events, trace_events
from ..workloads.mlp import build_mlp
from ..workloads.precision import get_precision, matmul_precision
from .choice import PASSES


def read_on_gpu(n: int, d: int, m: int, precision: str) -> dict:
    """One config's launches on the current GPU: ``{n, d, m, precision, passes}``."""
    p = get_precision(precision)
    model, x = build_mlp(n, d, m, p, "cuda")
    record = {}
    with matmul_precision(p):
        for _ in range(2):  # warm-up: cuBLAS's heuristics and workspaces
            model(x).float().sum().backward()
        for pass_ in PASSES:
            model.zero_grad(set_to_none=True)
            y = model(x).float().sum() if pass_ == "backward" else None
            torch.cuda.synchronize()
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                if pass_ == "forward":
                    with torch.no_grad():
                        model(x)
                else:
                    y.backward()
                torch.cuda.synchronize()
            events = sorted(kernel_events(trace_events(prof)), key=lambda e: e.get("ts", 0))
            record[pass_] = {
                "kernels": [
                    {"name": e["name"], "grid": e.get("args", {}).get("grid")} for e in events
                ]
            }
    return {"n": n, "d": d, "m": m, "precision": precision, "passes": record}
