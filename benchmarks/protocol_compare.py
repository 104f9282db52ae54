"""The adaptive protocol against the fixed one, back to back on one card, interleaved
configuration by configuration (issue 15's validation): energy per iteration of every pass and
the GPU time each job took.

    old: 5 windows of >= 2 s per pass (``target_rse: 0``), the H100 reference's protocol
    new: at least 3, at most 10 windows of >= MIN_WINDOW_S, stopping at 0.5 % relative standard error

    python benchmarks/protocol_compare.py --min-window 0.5 --configs bf16:256 bf16-mixed:1024 fp16-mixed:512 > out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from flopmetrics.jobs import run as job
from flopmetrics.jobs.spec import JobSpec
from flopmetrics.workflow.schema import defaults


def spec(precision: str, seq: int, measure: dict) -> JobSpec:
    llm, energy = defaults("llm"), defaults("energy")
    return JobSpec.from_params({
        "experiment": "llm", "target": "h100" if "H100" in torch.cuda.get_device_name() else "cuda",
        "precision": precision,
        "workload": {"model": "llama-3.2-1b", "batch_size": 8, "seq_len": seq, "passes": llm["passes"],
                     "attn_implementation": llm["attn_implementation"], "attention_flops": llm["attention_flops"]},
        "measure": {"warmup_iterations": llm["warmup_iterations"], "seed": 0, "profiler_flops": False, **measure},
        "energy": {k: energy[k] for k in ("meter", "sampler_hz", "guard_s", "idle_baseline_s")},
    })


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", nargs="+", default=["bf16:256", "bf16-mixed:1024", "fp16-mixed:512"])
    ap.add_argument("--min-window", type=float, default=0.5)
    args = ap.parse_args()
    protocols = {
        "old": {"repeats": 5, "min_repeats": 5, "target_rse": 0.0, "min_window_s": 2.0},
        "new": {"repeats": 10, "min_repeats": 3, "target_rse": 0.005, "min_window_s": args.min_window},
    }
    out = []
    for config in args.configs:
        precision, seq = config.split(":")
        for name, measure in protocols.items():
            start = time.perf_counter()
            rows, _ = job.run(spec(precision, int(seq), measure),
                              progress=lambda m, c=config, n=name: print(f"[{c} {n}] {m}", file=sys.stderr, flush=True))
            seconds = time.perf_counter() - start
            for r in rows.to_dict("records"):
                out.append({"config": config, "protocol": name, "job_s": seconds, "pass": r["pass"],
                            "derived": r["derived"], "windows": r["windows"], "energy_j_per_iter": r["energy_j_per_iter"],
                            "energy_cv": r["energy_cv"], "time_per_iter_s": r["time_per_iter_s"],
                            "tflops_per_j": r["flops_per_j"] / 1e12, "gates_passed": bool(r["gates_passed"]),
                            "gpu_uuid": r["gpu_uuid"], "numerics": r["numerics"]})
            print(f"[{config} {name}] {seconds:.1f} s", file=sys.stderr, flush=True)
    json.dump(out, sys.stdout, indent=1, default=str)


if __name__ == "__main__":
    main()
