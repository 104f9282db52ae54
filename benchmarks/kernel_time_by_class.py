"""Issue 32 (groundwork for a model with physical meaning; the classes of issues 35 and 36):
where the GPU time of each held-out configuration goes, by kernel class. Each configuration's
passes run as the pipeline runs them (eager, the workload's own step functions), one
iteration each under ``torch.profiler`` after warm-up; every kernel is classed by
``flopmetrics.ncu.classify.kernel_class`` (one classifier for all issues) and its time summed
per class, beside the iteration's wall time (so host-bound iterations show as a gap).

Run on a GPU from the repository root:
    python benchmarks/kernel_time_by_class.py --config config/heldout_h200.yaml \\
        --out benchmarks/results/kernel_time_by_class_h200_2026-12-03.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import torch
import yaml
from torch.profiler import ProfilerActivity, profile

from flopmetrics.jobs.kernels import kernel_events, trace_events
from flopmetrics.jobs.output import atomic_path
from flopmetrics.ncu.classify import kernel_class
from flopmetrics.workloads.causal_lm import build


def class_times(prof) -> tuple[dict[str, float], dict[str, float]]:
    """GPU time in seconds per kernel class of a finished profile, and per kernel name (the
    first 120 characters)."""
    out: dict[str, float] = {}
    names: dict[str, float] = {}
    for e in kernel_events(trace_events(prof)):
        cls = kernel_class(e["name"])
        out[cls] = out.get(cls, 0.0) + e["dur"] / 1e6
        names[e["name"][:120]] = names.get(e["name"][:120], 0.0) + e["dur"] / 1e6
    return out, names


def _named(names: dict[str, float], cls: str | None, top: int) -> dict[str, float]:
    """The ``top`` longest kernels by name, of one class (all where ``cls`` is None)."""
    these = {k: v for k, v in names.items() if cls is None or kernel_class(k) == cls}
    return dict(sorted(these.items(), key=lambda kv: -kv[1])[:top])


def one_config(llm: dict, model, precision: str, batch: int, seq: int) -> list[dict]:
    workload = {"model": model, "batch_size": batch, "seq_len": seq, "passes": llm["passes"]}
    # the set's own options (eager attention for models without SDPA); the rest: the schema's
    workload.update({k: llm[k] for k in ("attn_implementation", "attention_flops") if k in llm})
    w = build("cuda", precision, workload, seed=0)
    rows = []
    with w.precision_scope():
        steps = w.steps()
        for name in llm["passes"]:
            for _ in range(3):  # warm-up
                steps[name]()
            torch.cuda.synchronize()
            start = time.perf_counter()
            with profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU]) as prof:
                steps[name]()
                torch.cuda.synchronize()
            wall = time.perf_counter() - start
            times, names = class_times(prof)
            rows.append(
                {
                    "model": model if isinstance(model, str) else model["name"],
                    "precision": precision,
                    "batch_size": batch,
                    "seq_len": seq,
                    "pass": name,
                    "wall_s_profiled": wall,
                    "kernel_s": sum(times.values()),
                    **{f"{k}_s": v for k, v in sorted(times.items())},
                    "attention_kernels_s": _named(names, "attention", 1000),
                    "top_kernels_s": _named(names, None, 40),
                }
            )
    del w, steps
    torch.cuda.empty_cache()
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    llm = yaml.safe_load(args.config.read_text())["llm"]
    rows, failed = [], []
    combos = list(
        itertools.product(llm["models"], llm["precisions"], llm["batch_size"], llm["seq_len"])
    )
    for i, (model, precision, batch, seq) in enumerate(combos):
        name = model if isinstance(model, str) else model["name"]
        try:
            rows += one_config(llm, model, precision, batch, seq)
            status = "ok"
        except torch.OutOfMemoryError:
            torch.cuda.empty_cache()
            failed.append([name, precision, batch, seq])
            status = "out of memory"
        print(
            f"{i + 1}/{len(combos)} {name} {precision} b{batch} s{seq}: {status}", file=sys.stderr
        )
    written(args.out, config=args.config.as_posix(), out_of_memory=failed, rows=rows)
    return 0


def written(out: Path, **fields) -> None:
    """``fields`` as JSON at ``out`` (atomically), after the card's identity."""
    import pynvml

    pynvml.nvmlInit()
    h = pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())
    doc = {
        "gpu_uuid": pynvml.nvmlDeviceGetUUID(h),
        "driver": pynvml.nvmlSystemGetDriverVersion(),
        "torch": torch.__version__,
        **fields,
    }
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
