"""Why do launch-bound passes scatter? Time and energy per iteration of one configuration under
host-side variants, interleaved window by window on one card (issue 15: 16-bit Llama at s256 ran
to the 10-window cap with 2-8 % CV while the SM clock stayed at its maximum).

Variants (each a 1 s window framed as the pipeline frames it: sized, guards until the counter
has stepped past each edge):
    plain    what a job does today
    gc       Python's garbage collector frozen and off during the window
    pinned   the measuring thread pinned to one CPU core (the sampler process to the others)
    both     gc and pinned
    graph    the forward replayed from a CUDA graph (no Python per kernel): what the GPU work
             alone scatters (forward only)

For every window it also records the measuring thread's CPU time (thread_time / wall: below 1,
the thread waited or was descheduled), the host's steal time (a VM's CPUs taken by others) and
the load average. JSON lines go to --output as each window closes.

    python benchmarks/host_jitter.py --precision bf16 --seq 256 --rounds 8 --output jitter.jsonl
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import time

import torch

from flopmetrics.energy.setup import EnergySettings, setup_meters
from flopmetrics.energy.windows import Monitor
from flopmetrics.jobs.protocol import run_window
from flopmetrics.workloads.causal_lm import CausalLMWorkload, LMConfig


def steal_jiffies() -> int:
    with open("/proc/stat") as f:
        fields = f.readline().split()
    return int(fields[8]) if len(fields) > 8 else 0


def graphed_forward(wl: CausalLMWorkload):
    """The workload's forward captured once in a CUDA graph; each call replays it."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side), torch.no_grad(), wl.context():
        for _ in range(3):
            wl.inference()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.no_grad(), wl.context(), torch.cuda.graph(graph):
        out = wl.inference()

    def replay():
        graph.replay()
        return out

    return replay


def one_window(monitor, step, variant: str, cores: list, args) -> dict:
    """One window of ``step`` under a variant (garbage collector frozen, thread pinned)."""
    if variant in ("gc", "both"):
        gc.collect()
        gc.freeze()
        gc.disable()
    if variant in ("pinned", "both"):
        os.sched_setaffinity(0, {cores[-1]})
    steal, load = steal_jiffies(), os.getloadavg()[0]
    cpu0 = time.thread_time()
    w = run_window(monitor, f"{variant}", step, args.window, args.guard)
    cpu = time.thread_time() - cpu0
    os.sched_setaffinity(0, cores)
    gc.enable()
    gc.unfreeze()
    energy = w.readings.get("energy_j", float("nan"))
    return {
        "iterations": w.iterations,
        "elapsed_s": w.elapsed_s,
        "time_per_iter_ms": 1e3 * w.elapsed_s / w.iterations,
        "energy_j_per_iter": energy / w.iterations,
        "power_w": energy / w.elapsed_s,
        "thread_cpu_share": cpu / (time.perf_counter() - w.start_s + 1e-9),
        "steal_jiffies": steal_jiffies() - steal,
        "loadavg": load,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="llama-3.2-1b")
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--passes", nargs="+", default=["forward", "forward_backward"])
    ap.add_argument("--variants", nargs="+", default=["plain", "gc", "pinned", "both", "graph"])
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--window", type=float, default=1.0)
    ap.add_argument("--guard", type=float, default=0.05)
    ap.add_argument("--output", required=True)
    args = ap.parse_args()
    config = LMConfig.of(
        {
            "model": args.model,
            "batch_size": args.batch,
            "seq_len": args.seq,
            "passes": list(args.passes),
        }
    )
    wl = CausalLMWorkload("cuda:0", args.precision, config)
    setup = setup_meters("cuda:0", EnergySettings("auto", 50, args.guard, 0))
    monitor = Monitor("cuda:0", setup.meters)
    cores = sorted(os.sched_getaffinity(0))
    steps = wl.steps()
    with wl.precision_scope(), setup.sampler, open(args.output, "a") as out:
        setup.wait_for_counter()
        if setup.sampler._proc is not None:  # keep the sampler off the measuring thread's core
            os.sched_setaffinity(setup.sampler._proc.pid, cores[:-1])
        if "graph" in args.variants and "forward" in args.passes:
            steps["graph_forward"] = graphed_forward(wl)
        for step in steps.values():
            for _ in range(3):
                step()
        torch.cuda.synchronize()
        for r in range(args.rounds):
            for p in args.passes:
                for v in args.variants:
                    if v == "graph" and p != "forward":
                        continue
                    step = steps["graph_forward" if v == "graph" else p]
                    wl.restore()
                    rec = {"round": r, "pass": p, "variant": v}
                    rec.update(one_window(monitor, step, v, cores, args))
                    rec.update(gpu_uuid=setup.gpu.uuid(), precision=args.precision, seq=args.seq)
                    out.write(json.dumps(rec) + "\n")
                    out.flush()
                    print(
                        f"[{r} {p} {v}] {rec['time_per_iter_ms']:.2f} ms/it "
                        f"{rec['energy_j_per_iter']:.3f} J/it "
                        f"cpu {rec['thread_cpu_share']:.2f} steal {rec['steal_jiffies']}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
