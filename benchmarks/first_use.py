"""Where a job's first configuration spends its seconds before its first window (issue 15): the
imports, CUDA's start, the model build (with a profile of it), and the FLOP count's first use of
each pass, each timed on its own, in a fresh process as a pipeline job starts.

    python benchmarks/first_use.py --precision bf16 --seq 256 > first_use.json
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import time

T0 = time.perf_counter()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="llama-3.2-1b")
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--profile-lines", type=int, default=25)
    args = ap.parse_args()
    times: dict[str, float] = {}

    def mark(what: str, since: float) -> float:
        now = time.perf_counter()
        times[what] = now - since
        print(f"{what}: {times[what]:.2f} s", file=sys.stderr, flush=True)
        return now

    t = mark("interpreter to main", T0)
    import torch

    t = mark("import torch", t)
    import transformers
    import transformers.models.llama.modeling_llama  # noqa: F401  (what from_config imports lazily)

    t = mark("import transformers' llama", t)
    from flopmetrics.workloads.causal_lm import build

    t = mark("import flopmetrics", t)
    torch.cuda.init()
    torch.empty(1, device="cuda:0")
    torch.cuda.synchronize()
    t = mark("CUDA context", t)
    workload = {
        "model": args.model,
        "batch_size": args.batch,
        "seq_len": args.seq,
        "attn_implementation": "sdpa",
        "passes": ["forward", "forward_train", "forward_backward"],
        "attention_flops": "full",
    }
    profiler = cProfile.Profile()
    profiler.enable()
    wl = build("cuda:0", args.precision, workload, 0)
    torch.cuda.synchronize()
    profiler.disable()
    t = mark("model build", t)
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(args.profile_lines)
    with wl.precision_scope():
        steps = wl.steps()
        for p in ("forward", "forward_train", "forward_backward"):
            steps[p]()
            torch.cuda.synchronize()
            t = mark(f"first {p}", t)
        for p in ("forward", "forward_train", "forward_backward"):
            steps[p]()
            torch.cuda.synchronize()
            t = mark(f"second {p}", t)
        wl.counted()
        torch.cuda.synchronize()
        t = mark("FLOP count (every pass once more)", t)
    json.dump(
        {
            "device": torch.cuda.get_device_name(0),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "precision": args.precision,
            "seq": args.seq,
            "seconds": times,
            "build_profile": text.getvalue(),
        },
        sys.stdout,
        indent=1,
    )


if __name__ == "__main__":
    main()
