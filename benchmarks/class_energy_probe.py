"""Issue 36, first probe on a GPU: does the energy of a train step split into operation classes
that each run in windows of their own and add up to the step?

The causal LM's train step (the pipeline's workload, capturable AdamW, the unmasked SDPA call the
graph replay makes) is recorded once (:mod:`flopmetrics.workloads.optape`); the whole step and
each class's operations are captured in CUDA graphs of their own, and windows of each are metered
round-robin with the NVML counter (:class:`flopmetrics.energy.windows.Monitor`).

    python benchmarks/class_energy_probe.py --shape llama-3.2-1b:0:8:1024 --precision bf16 \
        --out probe.json [--window-s 2 --repeats 5] [--recorded-inputs]

``--recorded-inputs`` adds the whole tape replayed the way it was before 2026-12-04 (each
operation reading the tensors the recording left behind, not what its producer just wrote in the
replay): the pass ``tape:recorded-inputs``, beside the dataflow replay ``tape``.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import sys

import numpy as np
import torch

from flopmetrics.energy.windows import Monitor
from flopmetrics.jobs.protocol import run_window
from flopmetrics.jobs.provenance import collect
from flopmetrics.ncu.capture import shape_workload
from flopmetrics.workloads import causal_lm, graphs, optape

GUARD_S = 0.3  # replays before a window opens and after it closes: power steady at its edges


def measure(replays: dict, window_s: float, repeats: int, device: str, guard_s: float) -> dict:
    """Windows of each replay, round-robin: the protocol's one window of whole iterations framed
    by guards (:func:`flopmetrics.jobs.protocol.run_window`), per iteration."""
    out = {k: [] for k in replays}
    with Monitor.for_device(device) as monitor:
        out["gpu"] = monitor.setup.gpu_info() if monitor.setup else {}
        for r in range(repeats):
            for k, fn in replays.items():
                w = run_window(monitor, k, fn, window_s, guard_s=guard_s)
                out[k].append(
                    {
                        "energy_j": w.readings["energy_j"] / w.iterations,
                        "time_s": w.elapsed_s / w.iterations,
                        "iterations": w.iterations,
                    }
                )
            print(f"[probe] repeat {r + 1}/{repeats}", file=sys.stderr, flush=True)
    return out


def summary(windows: list[dict]) -> dict:
    e = np.array([w["energy_j"] for w in windows], dtype=float)
    t = np.array([w["time_s"] for w in windows], dtype=float)
    return {
        "energy_j": float(e.mean()),
        "power_w": float(e.sum() / t.sum()),
        "energy_cv": float(e.std(ddof=1) / e.mean()) if len(e) > 1 else math.nan,
        "time_s": float(t.mean()),
        "windows": windows,
    }


def _subsets(names: list[str]) -> list[frozenset]:
    """Every subset of ``names`` with two or more and fewer than all members."""
    return [frozenset(c) for r in range(2, len(names)) for c in itertools.combinations(names, r)]


def _key(subset) -> str:
    return "subset:" + "+".join(sorted(subset))


def shapley(energy: dict[str, float], names: list[str]) -> dict[str, float]:
    """Each class's Shapley share of the tape's energy: its marginal energy over every subset of
    the other classes, weighted |S|! (n-|S|-1)! / n!; the shares add up to the tape's energy."""
    n = len(names)

    def value(subset: frozenset) -> float:
        if not subset:
            return 0.0
        if len(subset) == n:
            return energy["tape"]
        if len(subset) == 1:
            return energy[f"class:{next(iter(subset))}"]
        return energy[_key(subset)]

    out = {}
    for c in names:
        others = [x for x in names if x != c]
        out[c] = sum(
            math.factorial(r)
            * math.factorial(n - r - 1)
            / math.factorial(n)
            * (value(frozenset(s) | {c}) - value(frozenset(s)))
            for r in range(n)
            for s in itertools.combinations(others, r)
        )
    return out


def recorded_inputs(tape: optape.Tape):
    """The whole tape, each operation on its recorded inputs (no dataflow)."""

    def replay() -> None:
        with torch.no_grad():
            for op in tape.ops:
                op()

    return replay


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", required=True)
    ap.add_argument("--precision", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--window-s", type=float, default=2.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cuda:0", help="cpu: a dry run of the logic (time only)")
    ap.add_argument("--eager", action="store_true", help="replay without CUDA graphs")
    ap.add_argument("--guard-s", type=float, default=GUARD_S)
    ap.add_argument("--recorded-inputs", action="store_true", help="see the module's docstring")
    ap.add_argument(
        "--shapley", action="store_true", help="every subset of classes too: Shapley shares"
    )
    args = ap.parse_args()
    graphed = not args.eager and args.device.startswith("cuda")
    lm = causal_lm.build(args.device, args.precision, shape_workload(args.shape), seed=0)
    step = lm.steps()["train_step"]
    if graphed:
        graphs.capturable_optimizer(lm.optimizer)
    with lm.precision_scope(), graphs.unmasked_sdpa(lm.model):
        for _ in range(2):
            step()
        with contextlib.ExitStack() as stack:  # every graph and its pool freed on exit
            # the step's graph first: the tape keeps tensors of an eager step alive
            replays = {
                "train_step": stack.enter_context(graphs.replayed(step)) if graphed else step
            }
            tape = optape.record(step, args.device, lm.optimizer)
            # the tape's graphs share one pool: replayed one at a time, their results unused
            pool = torch.cuda.graph_pool_handle() if graphed else None
            calls = {"tape": tape.replay()} | {f"class:{c}": fn for c, fn in tape.replays().items()}
            if args.recorded_inputs:
                calls["tape:recorded-inputs"] = recorded_inputs(tape)
            if args.shapley:
                calls |= {_key(s): tape.replay(s) for s in _subsets(list(tape.classes()))}
            for k, fn in calls.items():
                replays[k] = stack.enter_context(graphs.replayed(fn, pool)) if graphed else fn
            results = measure(replays, args.window_s, args.repeats, args.device, args.guard_s)
            gpu = results.pop("gpu")
        finite = all(bool(torch.isfinite(p).all()) for p in lm.trainable)
    table = {k: summary(v) for k, v in results.items()}
    parts = sum(v["energy_j"] for k, v in table.items() if k.startswith("class:"))
    if args.shapley:
        doc_shapley = shapley({k: v["energy_j"] for k, v in table.items()}, list(tape.classes()))
    doc = {
        "shape": args.shape,
        "precision": args.precision,
        "launch": "cuda_graph" if graphed else "eager",
        "operations": tape.counts(),
        "skipped": dict(tape.skipped),
        "parameters_finite_after": finite,
        "classes_sum_j": parts,
        "train_step_j": table["train_step"]["energy_j"],
        "sum_over_step": parts / table["train_step"]["energy_j"],
        "sum_over_tape": parts / table["tape"]["energy_j"],
        "tape_over_step": table["tape"]["energy_j"] / table["train_step"]["energy_j"],
        "classes_time_s": sum(v["time_s"] for k, v in table.items() if k.startswith("class:")),
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if graphed else None,
        "shapley_j": doc_shapley if args.shapley else None,
        "interaction_j": table["tape"]["energy_j"] - parts,
        "results": table,
        "provenance": {**collect(args.device, vars(args)), **gpu},
    }
    with open(args.out, "w") as fh:
        json.dump(doc, fh, indent=1, default=str)
    print(json.dumps({k: v for k, v in doc.items() if k not in ("results", "provenance")}))
    for k, v in table.items():
        print(
            f"{k:18s} {v['energy_j']:9.3f} J  cv {v['energy_cv']:.4f}  {1e3 * v['time_s']:8.2f} ms"
            f"  {v['power_w']:6.1f} W"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
