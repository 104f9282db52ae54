"""Probe (issue 32): what sets an eager step's time where the host's launching bounds it.

The step-time model takes ``max(GPU, host)``: the host issues kernels ahead of the GPU, and a
step takes the longer of the two. In Llama-3.2-1B's calibration rows the measured time grew with
the kernels' as if the two added (bf16 forward at 1 x 256: 15.6 ms measured, 2.9 ms of kernels;
at 4 x 256: 19.8 ms and 6.4 ms), and the cost per launch differs between families. For each
model and size this measures, on the GPU's own host:

- ``wall_ms``: time per iteration over ``--iterations`` iterations issued back to back, one
  synchronize at the end (the pipeline's protocol);
- ``issue_ms``: the host's time inside ``step()``, per iteration (launching, and waiting where
  something synchronizes);
- ``kernel_ms`` and ``busy_ms``: the kernels' summed time, and the time the GPU had any kernel
  running (``torch.profiler``), per iteration;
- ``syncs``: synchronizing calls in one iteration (``torch.cuda.set_sync_debug_mode``);
- ``launches``, ``aten_ops``, ``py_calls``: kernels launched, ATen operations dispatched and
  Python function calls made in one iteration: what the host's time might follow.

    python benchmarks/host_overlap_probe.py --out host_overlap.json
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import sys
import time
import warnings
from pathlib import Path

import torch
import yaml
from torch.utils._python_dispatch import TorchDispatchMode

from flopmetrics.energy.nvml import NvmlGpu, load_nvml
from flopmetrics.energy.sampler import PowerSampler
from flopmetrics.flops.models import build_causal_lm, resolve

MODELS = (
    "llama-3.2-1b",
    "gemma-3-270m",
    "starcoder2-3b",
    "smollm3-3b",
    "pythia-410m",
    "qwen3-0.6b",
    "opt-125m",
    "ernie-4.5-0.3b",
)
SIZES = ((1, 256), (4, 256), (2, 1024))
PASSES = ("forward", "train_step")


def fields_of(name: str) -> dict:
    """A model's fields: a preset, else the first config of ``config/`` that defines it."""
    try:
        return resolve(name)[1]
    except Exception:  # noqa: BLE001 - not a preset: look in the held-out configs
        pass
    for path in sorted(Path("config").glob("*.yaml")):
        for m in (yaml.safe_load(path.read_text()) or {}).get("llm", {}).get("models", []) or []:
            if isinstance(m, dict) and m.get("name") == name:
                return resolve(m)[1]
    raise KeyError(name)


class Dispatched(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.n = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.n += 1
        return func(*args, **(kwargs or {}))


def step_of(model, ids, pass_name: str, optimizer):
    if pass_name == "forward":

        def step():
            with torch.no_grad():
                return model(input_ids=ids).logits

    else:

        def step():
            optimizer.zero_grad(set_to_none=True)
            loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
            optimizer.step()
            return loss

    return step


def py_calls(step) -> int:
    n = [0]

    def count(frame, event, arg):
        if event in ("call", "c_call"):
            n[0] += 1

    sys.setprofile(count)
    try:
        step()
    finally:
        sys.setprofile(None)
    return n[0]


def measure(step, iterations: int) -> dict:
    for _ in range(5):
        step()
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode(1)
        step()
        torch.cuda.set_sync_debug_mode(0)
    torch.cuda.synchronize()
    issue, last = 0.0, None
    start = time.perf_counter()
    for _ in range(iterations):
        a = time.perf_counter()
        last = step()
        issue += time.perf_counter() - a
    torch.cuda.synchronize()
    wall = (time.perf_counter() - start) / iterations
    del last
    acts = [torch.profiler.ProfilerActivity.CUDA]
    with torch.profiler.profile(activities=acts) as prof:
        for _ in range(3):
            step()
        torch.cuda.synchronize()
    spans = sorted(
        (e.time_range.start, e.time_range.end)
        for e in prof.events()
        if e.device_type == torch.autograd.DeviceType.CUDA and e.time_range.end > e.time_range.start
    )
    kernel = sum(b - a for a, b in spans)
    busy, end = 0.0, -1.0
    for a, b in spans:
        busy += max(0.0, b - max(a, end))
        end = max(end, b)
    with Dispatched() as d:
        step()
    return {
        "wall_ms": 1e3 * wall,
        "issue_ms": 1e3 * issue / iterations,
        "kernel_ms": kernel / 3e3,
        "busy_ms": busy / 3e3,
        "launches": len(spans) / 3,
        "syncs": len(caught),
        "aten_ops": d.n,
        "py_calls": py_calls(step),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--sizes", nargs="+", default=[f"{b}x{s}" for b, s in SIZES])
    ap.add_argument("--passes", nargs="+", default=list(PASSES))
    ap.add_argument(
        "--rounds", type=int, default=1, help="times through the sizes; every second one reversed"
    )
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument(
        "--meter",
        action="store_true",
        help="measure each also with the pipeline's NVML sampler process running",
    )
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    rows = []
    metered = (False, True) if args.meter else (False,)
    gpu = NvmlGpu.for_torch_device(load_nvml(), 0) if args.meter else None
    for name in args.models:
        t0 = time.time()
        model = build_causal_lm(fields_of(name), "sdpa", "cuda").to(torch.bfloat16)
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, foreach=True)
        vocab = model.config.vocab_size
        sizes = [tuple(map(int, x.split("x"))) for x in args.sizes]
        order = [(k, bs) for k in range(args.rounds) for bs in (sizes[::-1] if k % 2 else sizes)]
        for k, (b, s) in order:
            ids = torch.randint(0, vocab, (b, s), device="cuda")
            for pass_name, meter in itertools.product(args.passes, metered):
                row = {"model": name, "batch_size": b, "seq_len": s, "pass": pass_name, "round": k}
                row["meter"] = meter
                try:
                    with PowerSampler(gpu) if meter else contextlib.nullcontext():
                        row |= measure(step_of(model, ids, pass_name, optimizer), args.iterations)
                except torch.OutOfMemoryError:
                    row["status"] = "out of memory"
                rows.append(row)
                print(json.dumps(row), flush=True)
        del model, optimizer
        torch.cuda.empty_cache()
        print(f"# {name}: {time.time() - t0:.0f} s", flush=True)
    doc = {
        "gpu_uuid": str(torch.cuda.get_device_properties(0).uuid),
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "rows": rows,
    }
    args.out.write_text(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
