"""Benchmark (issue 32): how fast the fused causal attention kernel runs, by head size, length
and number of heads, timed alone on the GPU at hand with CUDA events.

The step-time model prices attention at one rate; the profiled steps
(``benchmarks/attention_rate_probe.py``) show rates from 69 to 598 TFLOP/s that rise with the
length and the head size. This sweep measures the kernel itself where the models run it:
``F.scaled_dot_product_attention`` with ``is_causal`` in bf16, head dimension 64-256, 256-8192
tokens, batch 1-8, with as many query heads as a 2048- or 4096-wide model has, and with grouped
key/value heads (``enable_gqa``) beside full ones. FLOPs are those of the causal tiles
(:func:`benchmarks.kernel_rates.attention`'s convention); forward and forward + backward are
timed apart. No energy.

    python benchmarks/attention_rates.py --out attention_rates.json
"""

from __future__ import annotations

import argparse
import json
import sys

import torch
from kernel_rates import attention

DIMS = (64, 80, 96, 128, 256)
WIDTHS = (2048, 4096)
LENGTHS = (256, 512, 1024, 2048, 4096, 8192)
BATCHES = (1, 2, 8)


def sweep(repeats: int) -> list[dict]:
    rows = []
    for dim in DIMS:
        for width in WIDTHS:
            heads = width // dim
            for seq in LENGTHS:
                for batch in BATCHES:
                    rows += attention(batch, heads, seq, dim, repeats)
                    rows += attention(batch, heads, seq, dim, repeats, kv_heads=heads // 4)
            print(f"[attention] d{dim} h{heads} done", file=sys.stderr, flush=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    rows = sweep(args.repeats)
    for r in rows:
        r["tflop_s"] = r["flops"] / r["time_s"] / 1e12
    props = torch.cuda.get_device_properties(0)
    uuid = f"GPU-{props.uuid}" if hasattr(props, "uuid") else None
    info = {"gpu": props.name, "gpu_uuid": uuid, "torch": torch.__version__}
    with open(args.out, "w") as f:
        json.dump({"provenance": info, "rows": rows}, f, indent=1)
    print(f"[attention] {len(rows)} rows -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
