"""Issue 32 (a probe): the rate of each matrix product of a model's layer at one token count, as
the model calls it, timed alone on the GPU with CUDA events. Written to tell whether Falcon-7B's
products (a hidden size of 4544 = 71 x 64) run slower per FLOP than those of a model of its size
whose dimensions are multiples of 128.

    python benchmarks/gemm_shape_probe.py --tokens 4608 \\
        --out benchmarks/results/gemm_shape_probe_h200_2026-12-04.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from kernel_time_by_class import written

# (name, K, N) of each model's layer products, as (tokens x K) @ (K x N)
SHAPES = {
    "falcon-7b": [("qkv", 4544, 4672), ("dense", 4544, 4544), ("up", 4544, 18176),
                  ("down", 18176, 4544), ("lm_head", 4544, 65024)],
    "falcon-7b-4608": [("qkv", 4608, 4736), ("dense", 4608, 4608), ("up", 4608, 18432),
                       ("down", 18432, 4608)],
    "persimmon-8b": [("qkv", 4096, 12288), ("dense", 4096, 4096), ("up", 4096, 16384),
                     ("down", 16384, 4096)],
}  # fmt: skip


def timed(fn, iterations: int = 20) -> float:
    """Seconds per call, after warm-up."""
    for _ in range(3):
        fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iterations):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / 1e3 / iterations


def _forms(x, w, g):
    """The product as ``F.linear`` and as FalconLinear calls it, and its two backward products."""
    x3 = x.view(1, *x.shape)
    return (
        ("linear", lambda: torch.nn.functional.linear(x, w)),
        ("matmul_3d_wT", lambda: x3 @ w.T),
        ("grad_input", lambda: g @ w),
        ("grad_weight", lambda: g.T @ x),
    )


def rates(tokens: int) -> list[dict]:
    rows = []
    for model, shapes in SHAPES.items():
        for name, k, n in shapes:
            x = torch.randn(tokens, k, device="cuda", dtype=torch.bfloat16)
            w = torch.randn(n, k, device="cuda", dtype=torch.bfloat16)
            g = torch.randn(tokens, n, device="cuda", dtype=torch.bfloat16)
            for form, fn in _forms(x, w, g):
                t = timed(fn)
                f = 2 * tokens * k * n
                rows.append({"model": model, "gemm": name, "M": tokens, "K": k, "N": n,
                             "form": form, "s": t, "tflop_per_s": f / t / 1e12})  # fmt: skip
                print(f"{model} {name} {form}: {f / t / 1e12:.0f} TFLOP/s", file=sys.stderr)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokens", type=int, default=4608)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    written(args.out, rows=rates(args.tokens))
    return 0


if __name__ == "__main__":
    sys.exit(main())
