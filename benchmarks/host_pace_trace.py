"""Benchmark: what the host does while a host-bound step's pace changes.

    python benchmarks/host_pace_trace.py --model pythia-70m --config config/heldout22_h200.yaml \
        --batch 2 --seq 288 [--seconds 40] [--window 0.5] > pace.jsonl

No meter runs. Windows of whole iterations of one pass, back to back; each records its time per
step and, over the window, the time the kernel says the machine's CPUs and this process's CPU
were stolen by the hypervisor (``steal``), this process's involuntary context switches and its
CPU. A pace that follows steal time is the virtual machine's neighbours, not the step.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from host_meter_probe import cpu_of, model_spec

from flopmetrics.workloads.causal_lm import CausalLMWorkload, LMConfig


def cpu_times() -> dict:
    """Per CPU line of /proc/stat (``cpu`` for all): (busy, steal) in clock ticks."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if not line.startswith("cpu"):
            break
        name, *f = line.split()
        v = list(map(int, f))
        out[name] = (sum(v[:3]) + sum(v[4:7]), v[7] if len(v) > 7 else 0)
    return out


def switches() -> dict:
    text = Path("/proc/self/status").read_text().splitlines()
    return {k: int(v) for k, _, v in (ln.partition(":") for ln in text) if "ctxt" in k}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="pythia-70m")
    ap.add_argument("--config", type=Path)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=288)
    ap.add_argument("--pass", dest="pass_", default="forward")
    ap.add_argument("--seconds", type=float, default=40.0)
    ap.add_argument("--window", type=float, default=0.5)
    args = ap.parse_args()
    workload = {
        "model": model_spec(args.model, args.config),
        "batch_size": args.batch,
        "seq_len": args.seq,
        "passes": [args.pass_],
    }
    step = CausalLMWorkload("cuda", "bf16", LMConfig.of(workload)).steps()[args.pass_]
    for _ in range(10):
        step()
    torch.cuda.synchronize()
    end = time.perf_counter() + args.seconds
    while time.perf_counter() < end:
        c0, s0, t0, n = cpu_times(), switches(), time.perf_counter(), 0
        while time.perf_counter() - t0 < args.window:
            step()
            n += 1
        torch.cuda.synchronize()
        t1, c1, s1, me = time.perf_counter(), cpu_times(), switches(), cpu_of()
        mine = f"cpu{me}"
        row = {
            "t": round(t1, 3),
            "wall": round(time.time(), 3),
            "step_ms": 1e3 * (t1 - t0) / n,
            "cpu": me,
            "steal_all_ticks": c1["cpu"][1] - c0["cpu"][1],
            "busy_all_ticks": c1["cpu"][0] - c0["cpu"][0],
            "steal_mine_ticks": c1[mine][1] - c0[mine][1],
            **{k: s1[k] - s0[k] for k in s1},
        }
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
