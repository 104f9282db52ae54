"""Issue 35, item 1: the kernels cuBLAS launches for each MLP config, read with
``torch.profiler`` (a sub-second run, no ncu; ``flopmetrics.ncu.profiler.read_on_gpu``): every
GPU kernel of one forward and one backward of the thesis MLP, with its name and grid. The kernel
choice depends on the card, torch and cuBLAS: each table names them.

Run on a GPU from the repository root (one JSON per precision under --out):
    python benchmarks/kernel_choice.py --shapes benchmarks/results/unseen_shapes_2026-12-03.json \\
        --out benchmarks/results/kernel_choice_h200_2026-12-03 [--precisions fp32 bf16]
"""

from __future__ import annotations

import argparse
import ctypes
import gzip
import json
import os
import sys
from pathlib import Path

import torch

from flopmetrics.jobs.provenance import git_revision
from flopmetrics.ncu.profiler import read_on_gpu


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
            rows.append(read_on_gpu(s["n"], s["d"], s["m"], precision))
            torch.cuda.empty_cache()
            print(
                f"[{precision}] {i + 1}/{len(shapes)} n{s['n']} d{s['d']} m{s['m']}",
                file=sys.stderr,
            )
        doc = {
            **info,
            "precision": precision,
            "shapes_file": args.shapes.name,  # no machine path
            "configs": rows,
        }
        tmp = args.out / f".{precision}.json.gz.partial"
        with gzip.open(tmp, "wt") as fh:
            json.dump(doc, fh, default=str)
        os.replace(tmp, args.out / f"{precision}.json.gz")
    return 0


if __name__ == "__main__":
    sys.exit(main())
