"""Benchmark (issue 32, groundwork): the rates the step-time model fits, read directly on the GPU
at hand with CUDA events, for what the reference model's calibration cannot separate.

- fused causal attention (``F.scaled_dot_product_attention``, ``is_causal``), forward and
  forward + backward, at head dimension 64 and 128, 512-4096 tokens, and with dropout 0.1 (as
  GPT-2's attention trains) at 64: FLOP/s of the causal tiles
  (:func:`flopmetrics.flops.kernel_facts.causal_share`'s convention: ``(n + 1) / 2n`` of the full
  score matrix, ``n`` tiles of 128 rows);
- LM-head GEMMs (``F.linear``, tokens x hidden -> vocabulary) with an aligned and an unaligned
  vocabulary (50304 / 50257, 128256 / 128257) at hidden 768 and 2048, forward and the two
  gradients, FLOP/s.

Times the median of ``--repeats`` timed runs after warm-up; no energy. Prints a table and writes
JSON (with the card's UUID) to ``--out``.

    python benchmarks/kernel_rates.py --out kernel_rates.json
"""

from __future__ import annotations

import argparse
import json
import sys

import torch
import torch.nn.functional as F

from flopmetrics.flops.kernel_facts import TILE as _TILE


def timed(fn, repeats: int) -> float:
    """Median seconds of ``fn`` over ``repeats`` runs timed by CUDA events, after 3 warm-ups."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return sorted(times)[len(times) // 2]


def attention(batch: int, heads: int, seq: int, dim: int, repeats: int, **variant):
    """Forward and forward + backward rows of causal SDPA. ``variant``: ``dropout`` (0 unless
    given) and ``kv_heads`` (fewer than ``heads`` groups the keys and values with
    ``enable_gqa``, as transformers runs grouped-query attention)."""
    dropout = variant.get("dropout", 0.0)
    kv_heads = variant.get("kv_heads", heads)
    q, k, v = (
        torch.randn(batch, h, seq, dim, device="cuda", dtype=torch.bfloat16, requires_grad=True)
        for h in (heads, kv_heads, kv_heads)
    )
    n = -(-seq // _TILE)
    causal = 4 * batch * heads * seq * seq * dim * (n + 1) / (2 * n)  # QK^T and PV, causal tiles

    def sdpa():
        return F.scaled_dot_product_attention(
            q, k, v, dropout_p=dropout, is_causal=True, enable_gqa=kv_heads != heads
        )

    fwd = timed(sdpa, repeats)
    grad = torch.randn_like(q)

    def both():
        sdpa().backward(grad)

    fb = timed(both, repeats)
    shape = {"batch": batch, "heads": heads, "kv_heads": kv_heads, "seq": seq, "dim": dim}
    shape["dropout"] = dropout
    return [
        {"kind": "attention", "pass": "forward", **shape, "flops": causal, "time_s": fwd},
        # backward: 2.5x the forward's matrix products (dQ, dK, dV, and the recomputed scores)
        {
            "kind": "attention",
            "pass": "forward_backward",
            **shape,
            "flops": 3.5 * causal,
            "time_s": fb,
        },
    ]


def lm_head(tokens: int, hidden: int, vocab: int, repeats: int) -> list[dict]:
    x = torch.randn(tokens, hidden, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(vocab, hidden, device="cuda", dtype=torch.bfloat16)
    dy = torch.randn(tokens, vocab, device="cuda", dtype=torch.bfloat16)
    flops = 2 * tokens * hidden * vocab
    shape = {"tokens": tokens, "hidden": hidden, "vocab": vocab, "aligned": vocab % 8 == 0}
    runs = {
        "forward": lambda: F.linear(x, w),
        "input_grad": lambda: dy @ w,
        "weight_grad": lambda: dy.t() @ x,
    }
    return [
        {"kind": "lm_head", "pass": name, **shape, "flops": flops, "time_s": timed(fn, repeats)}
        for name, fn in runs.items()
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    rows = []
    for dim, heads in ((64, 12), (64, 32), (128, 16)):
        for seq in (512, 1024, 2048, 4096):
            rows += attention(max(1, 16384 // seq), heads, seq, dim, args.repeats)
            print(f"[rates] attention d{dim} h{heads} s{seq}", file=sys.stderr, flush=True)
    for seq in (512, 1024, 2048, 4096):  # GPT-2's attention: dropout 0.1 in training mode
        rows += attention(max(1, 16384 // seq), 12, seq, 64, args.repeats, dropout=0.1)
    for hidden, vocabs in ((768, (50304, 50257)), (2048, (128256, 128257))):
        for vocab in vocabs:
            for tokens in (4096, 16384):
                rows += lm_head(tokens, hidden, vocab, args.repeats)
    for r in rows:
        r["tflop_s"] = r["flops"] / r["time_s"] / 1e12
        print(
            " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items())
        )
    props = torch.cuda.get_device_properties(0)
    uuid = f"GPU-{props.uuid}" if hasattr(props, "uuid") else None
    info = {"gpu": props.name, "gpu_uuid": uuid, "torch": torch.__version__}
    with open(args.out, "w") as f:
        json.dump({"provenance": info, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
