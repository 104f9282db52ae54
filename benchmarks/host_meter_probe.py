"""Benchmark: does the power meter slow a step bound by the host's launching?

    python benchmarks/host_meter_probe.py --model pythia-70m --config config/heldout22_h200.yaml \
        --batch 2 --seq 288 [--rounds 6] [--window 1.5] > probe.jsonl

``meter_overhead.py`` checked the sampler on a step that keeps the GPU busy. A step that waits on
the host is timed by the host's pace alone, and the sampler process polls NVML (the energy
counter every ``tick_poll_s``) beside it. Windows of the forward and the train step alternate,
round by round, between: no sampler (``bare``), the sampler as a job runs it (50 Hz, counter
polled every 1 ms), the sampler with the counter polled every 20 ms, and a 20 Hz sampler
polling nothing between samples. Every window is timed with no meter (so the conditions differ
only in what runs beside the step) and records the CPU the step ran on, the sampler's CPU and
whether the two share a core, their clocks, and the host probe (``host_op_us``). One JSON line
per window, then a summary line per condition.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from pathlib import Path

import torch
import yaml

from flopmetrics.energy.nvml import NvmlGpu, load_nvml
from flopmetrics.energy.sampler import PowerSampler
from flopmetrics.energy.windows import Monitor
from flopmetrics.jobs.host_probe import host_op_us
from flopmetrics.jobs.protocol import run_window
from flopmetrics.workloads.causal_lm import CausalLMWorkload, LMConfig

# condition: (sampler rate Hz, counter poll s) or None for no sampler
CONDITIONS = {
    "bare": None,
    "job_sampler": (50.0, 0.001),
    "poll_20ms": (50.0, 0.02),
    "sampler_20hz": (20.0, 1.0),
}


def cpu_of(pid: str = "self") -> int:
    """The CPU a process last ran on (field 39 of /proc/PID/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[36])


def siblings(cpu: int) -> set[int]:
    """The CPUs that share ``cpu``'s core (its ``thread_siblings_list``: ``0,8`` or ``0-1``)."""
    path = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list")
    out = set()
    for part in path.read_text().strip().split(",") if path.exists() else ():
        first, _, last = part.partition("-")
        out.update(range(int(first), int(last or first) + 1))
    return out


def mhz(cpu: int) -> float:
    path = Path(f"/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_cur_freq")
    if path.exists():
        return int(path.read_text()) / 1000
    blocks = Path("/proc/cpuinfo").read_text().split("\n\n")
    for block in blocks:
        fields = dict(
            (k.strip(), v.strip()) for k, _, v in (ln.partition(":") for ln in block.splitlines())
        )
        if fields.get("processor") == str(cpu):
            return float(fields.get("cpu MHz", "nan"))
    return float("nan")


def model_spec(name: str, config: Path | None):
    """A preset name, or the model of that name in a pipeline config's ``llm.models``."""
    if config is None:
        return name
    models = yaml.safe_load(config.read_text())["llm"]["models"]
    return next(m for m in models if isinstance(m, dict) and m.get("name") == name)


def window(step, condition, gpu, seconds: float) -> dict:
    rate = CONDITIONS[condition]
    running = PowerSampler(gpu, rate[0], tick_poll_s=rate[1]) if rate else contextlib.nullcontext()
    with running as sampler:
        if sampler:
            time.sleep(0.3)  # the sampler's start-up outside the window
        probe = host_op_us("cuda")
        w = run_window(Monitor("cuda"), condition, step, seconds)
        me = cpu_of()
        other = cpu_of(str(sampler._proc.pid)) if sampler and sampler._proc else None
    return {
        "condition": condition,
        "step_ms": 1e3 * w.elapsed_s / w.iterations,
        "iterations": w.iterations,
        "host_op_us": probe,
        "cpu": me,
        "cpu_mhz": mhz(me),
        "sampler_cpu": other,
        "same_core": other in siblings(me),
        "loadavg": Path("/proc/loadavg").read_text().split()[0],
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="llama-3.2-1b")
    ap.add_argument("--config", type=Path, help="a pipeline config whose llm.models has it")
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--window", type=float, default=1.5)
    ap.add_argument("--passes", nargs="+", default=["forward", "train_step"])
    args = ap.parse_args()
    workload = {
        "model": model_spec(args.model, args.config),
        "batch_size": args.batch,
        "seq_len": args.seq,
        "passes": args.passes,
    }
    wl = CausalLMWorkload("cuda", args.precision, LMConfig.of(workload))
    steps = wl.steps()
    gpu = NvmlGpu.for_torch_device(load_nvml(), 0)
    head = {"model": args.model, "batch": args.batch, "seq": args.seq, "gpu": gpu.uuid()}
    rows = []
    for name in args.passes:
        for _ in range(5):
            steps[name]()
        torch.cuda.synchronize()
        for r in range(args.rounds):
            order = list(CONDITIONS) if r % 2 == 0 else list(reversed(CONDITIONS))
            for condition in order:
                row = {
                    **head,
                    "pass": name,
                    "round": r,
                    **window(steps[name], condition, gpu, args.window),
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
    for name in args.passes:
        for condition in CONDITIONS:
            ms = [r["step_ms"] for r in rows if r["pass"] == name and r["condition"] == condition]
            summary = {**head, "pass": name, "condition": condition, "summary": True}
            summary |= {"median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms)}
            print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
