"""Which kernels run, eager against CUDA-graph replay (config ``launch``), for one pass of one
configuration: GPU time per kernel name over a few iterations of each, from torch.profiler.

A replay re-issues the kernels chosen while the graph was captured; where a library picks
another kernel under capture (an attention backend, a GEMM algorithm that needs workspace),
the replayed pass is not the eager pass, and its energy differs for that reason. This lists
the kernels whose GPU time differs most.

    python benchmarks/graph_kernels.py --precision bf16 --seq 1024 --pass forward > kernels.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

import torch

from flopmetrics.jobs.kernels import by_kernel
from flopmetrics.workloads.causal_lm import CausalLMWorkload, LMConfig


def kernel_times(step, iterations: int) -> Counter:
    for _ in range(3):
        step()
    return Counter(by_kernel(step, iterations, "cuda:0"))  # microseconds per iteration


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="llama-3.2-1b")
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--pass", dest="pass_", default="forward")
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--top", type=int, default=12)
    args = ap.parse_args()
    wl = CausalLMWorkload(
        "cuda:0",
        args.precision,
        LMConfig.of({"model": args.model, "batch_size": args.batch, "seq_len": args.seq}),
    )
    step = wl.steps()[args.pass_]
    with wl.precision_scope():
        eager = kernel_times(step, args.iterations)
        with wl.replayed(args.pass_, step) as replay:
            graph = kernel_times(replay, args.iterations)
    names = set(eager) | set(graph)
    diff = sorted(names, key=lambda k: -abs(graph.get(k, 0) - eager.get(k, 0)))[: args.top]
    result = {
        "gpu": torch.cuda.get_device_name(0),
        "model": wl.model_name,
        "precision": args.precision,
        "batch": args.batch,
        "seq": args.seq,
        "pass": args.pass_,
        "torch": torch.__version__,
        "eager_total_us": sum(eager.values()),
        "graph_total_us": sum(graph.values()),
        "eager_kernels": len(eager),
        "graph_kernels": len(graph),
        "largest_differences": [
            {"kernel": k[:160], "eager_us": eager.get(k, 0.0), "graph_us": graph.get(k, 0.0)}
            for k in diff
        ],
    }
    json.dump(result, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
