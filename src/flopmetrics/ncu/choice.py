"""The kernels the library launches for an MLP's GEMM calls: read on the GPU at hand with
``torch.profiler`` (one forward and one backward, well under a second, no ncu), or from a
committed kernel-choice table that names the card, driver, torch and cuBLAS it was read with.

A table is a JSON document: provenance keys and ``configs``, each ``n``, ``d``, ``m``,
``precision`` and per pass the launched ``kernels`` (name, grid, ...) in launch order, as
:func:`read_on_gpu` writes it. :func:`calls_of` turns it into one launch per GEMM call shape
``(role, M, N, K)``: the GEMM-class launches of a pass, in order, are its calls as
:func:`flopmetrics.ncu.gap.calls` lists them, each with the split-K kernel that follows it.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from ..jobs.kernels import kernel_events, trace_events
from ..workloads.mlp import build_mlp
from ..workloads.precision import get_precision, matmul_precision
from .classify import kernel_class
from .gap import calls

PASSES = ("forward", "backward")


def load(path: str | Path) -> dict:
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:
        doc = json.load(fh)
    if "configs" not in doc:
        raise ValueError(f"{path}: not a kernel-choice table (no 'configs')")
    return doc


def calls_of(doc: dict) -> dict:
    """``(precision, role, M, N, K) -> {"kernel", "grid", "reduction"}`` over a table."""
    out = {}
    for config in doc["configs"]:
        n, d, m = (int(config[k]) for k in ("n", "d", "m"))
        for pass_ in PASSES:
            launches = config["passes"].get(pass_, {}).get("kernels", [])
            pairs = _pair(launches)
            expected = calls(n, d, m, pass_)
            if len(pairs) != len(expected):
                raise ValueError(
                    f"{config['precision']} n{n} d{d} m{m} {pass_}: {len(pairs)} GEMM launches, "
                    f"the MLP makes {len(expected)} GEMM calls"
                )
            for call, launch in zip(expected, pairs, strict=True):
                out.setdefault((config["precision"], *call), launch)
    return out


def _pair(launches: list[dict]) -> list[dict]:
    pairs = []
    for launch in launches:
        cls = kernel_class(launch["name"])
        if cls == "gemm":
            pairs.append({"kernel": launch["name"], "grid": launch["grid"], "reduction": ""})
        elif cls == "split_k" and pairs and not pairs[-1]["reduction"]:
            pairs[-1]["reduction"] = launch["name"]
    return pairs


def for_precision(table: dict, precision: str) -> dict:
    """``(role, M, N, K) -> launch`` of one precision."""
    return {k[1:]: v for k, v in table.items() if k[0] == precision}


def read_on_gpu(n: int, d: int, m: int, precision: str) -> dict:
    """One config's launches on the current GPU: ``{n, d, m, precision, passes}``."""
    import torch  # late: reading on a GPU needs torch, a table does not
    from torch.profiler import ProfilerActivity, profile

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
