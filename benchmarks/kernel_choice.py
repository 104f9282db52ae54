"""Issue 35, item 1 (groundwork): the kernels cuBLAS launches for each MLP shape, read with
``torch.profiler`` (a sub-second run, no ncu): every GPU kernel of one forward and one
backward of the thesis MLP, with its name, grid, block, registers, shared memory and duration,
and the matmul shapes it served. The kernel choice depends on the card, torch and cuBLAS: each
file names them.

Run on a GPU from the repository root (one JSON per precision under --out):
    python benchmarks/kernel_choice.py --shapes benchmarks/results/unseen_shapes_2026-12-03.json \\
        --out benchmarks/results/kernel_choice_h200_2026-12-03 [--precisions fp32 bf16]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from flopmetrics.jobs.kernels import kernel_events, trace_events
from flopmetrics.jobs.provenance import git_revision
from flopmetrics.workloads.mlp import build_mlp
from flopmetrics.workloads.precision import get_precision, matmul_precision


def cublas_version() -> str:
    """cuBLAS's version as the loaded library reports it (cublasGetProperty)."""
    torch.ones(2, 2, device="cuda") @ torch.ones(2, 2, device="cuda")  # load it
    libs = [p for p in open("/proc/self/maps").read().split() if "libcublas.so" in p]
    lib = ctypes.CDLL(sorted(set(libs))[0] if libs else "libcublas.so")
    parts = []
    for prop in range(3):  # MAJOR_VERSION, MINOR_VERSION, PATCH_LEVEL
        value = ctypes.c_int()
        lib.cublasGetProperty(prop, ctypes.byref(value))
        parts.append(str(value.value))
    return ".".join(parts)


def kernels(prof) -> list[dict]:
    """Every GPU kernel of the profile, in launch order, with its launch configuration."""
    keep = ("grid", "block", "registers per thread", "shared memory", "blocks per SM")
    return [
        {
            "name": e["name"],
            "duration_us": e["dur"],
            **{k: e.get("args", {})[k] for k in keep if k in e.get("args", {})},
        }
        for e in sorted(kernel_events(trace_events(prof)), key=lambda e: e.get("ts", 0))
    ]


def one_shape(shape: dict, precision: str) -> dict:
    p = get_precision(precision)
    model, x = build_mlp(shape["n"], shape["d"], shape["m"], p, "cuda")
    with matmul_precision(p):
        for _ in range(2):  # warm-up: cuBLAS's heuristics and workspaces
            model(x).float().sum().backward()
        torch.cuda.synchronize()
        record = {}
        for name in ("forward", "backward"):
            model.zero_grad(set_to_none=True)
            y = model(x).float().sum() if name == "backward" else None
            torch.cuda.synchronize()
            with profile(
                activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU], record_shapes=True
            ) as prof:
                if name == "forward":
                    with torch.no_grad():
                        model(x)
                else:
                    y.backward()
                torch.cuda.synchronize()
            record[name] = {
                "kernels": kernels(prof),
                "mm_shapes": [
                    e.input_shapes for e in prof.events() if e.name in ("aten::mm", "aten::addmm")
                ],
            }
    del model, x
    torch.cuda.empty_cache()
    return {**shape, "precision": precision, "passes": record}


def provenance() -> dict:
    import pynvml  # the card's UUID and driver

    pynvml.nvmlInit()
    h = pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())
    return {
        "gpu_name": torch.cuda.get_device_name(),
        "gpu_uuid": pynvml.nvmlDeviceGetUUID(h),
        "driver": pynvml.nvmlSystemGetDriverVersion(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cublas": cublas_version(),
        "git_revision": git_revision()[0],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shapes", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    args = ap.parse_args()
    shapes = json.loads(args.shapes.read_text())["shapes"]
    info = provenance()
    args.out.mkdir(parents=True, exist_ok=True)
    for precision in args.precisions:
        rows = []
        for i, s in enumerate(shapes):
            rows.append(one_shape(s, precision))
            print(
                f"[{precision}] {i + 1}/{len(shapes)} n{s['n']} d{s['d']} m{s['m']}",
                file=sys.stderr,
            )
        doc = {
            **info,
            "precision": precision,
            "shapes_file": args.shapes.as_posix(),
            "configs": rows,
        }
        tmp = args.out / f".{precision}.json.partial"
        tmp.write_text(json.dumps(doc, indent=1, default=str) + "\n")
        os.replace(tmp, args.out / f"{precision}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
