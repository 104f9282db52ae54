"""Our energy path against an independent tool, Zeus's ``ZeusMonitor``, on the same card and the
same windows: Llama-3.2-1B (random weights) per precision, forward and train step.

Both meters open and close at the same synchronized edges of each window (Zeus just before ours
at both ends); ours adds its guard iterations outside the window and interpolates the NVML
counter between its steps, Zeus reads the counter at the edges. Every window starts from the
same starting weights (the workload's restore) and is checked finite, as in a pipeline job.
``--sized`` frames the windows as the pipeline's jobs do now (guards until the counter has
stepped past each edge, the window issued in one batch sized by the guard's rate); without it,
as the jobs of 2026-11-27 did (fixed guards). ``--random-phase`` (with ``--sized``) lengthens each
first guard by a random number of the same iterations (0 to one counter period's worth) after
the counter has stepped, so the windows open at random phase to the counter's 100 ms steps (as
a user's windows would), not a few tens of milliseconds after one; each window's phase (time
since the counter's last step at its start) is recorded.

    python benchmarks/zeus_side_by_side.py --precisions fp16 bf16 > zeus_side_by_side.json
    python benchmarks/zeus_side_by_side.py --sized --window 1.0 --guard 0.05 --repeats 10 \
        --precisions bf16
    python benchmarks/zeus_side_by_side.py --sized --random-phase --window 1.0 --guard 0.05 \
        --repeats 20
    python benchmarks/zeus_side_by_side.py --sized --replayed --window 1.0 --guard 0.05 \
        --seq 256 --precisions bf16

``--replayed`` replays every pass from a CUDA graph (captured after three eager iterations), as
``launch: auto`` does on a launch-bound configuration. ``--experiment inference`` measures the
serving passes instead (``--passes prefill decode``, ``--prompt``, ``--output``; the batch is
``--batch``):

    python benchmarks/zeus_side_by_side.py --experiment inference --passes decode --sized \
        --replayed --window 1.0 --guard 0.05 --repeats 10 --precisions bf16 \
        --model llama-3.1-8b --batch 64

``--experiment classes`` measures the passes of the kernel-class experiment (the train step, its
tape and the tape's class subsets, ``tape:gemm`` ...; ``flopmetrics.workloads.classes``), each
replayed from a CUDA graph of its own as the pipeline's ``launch: cuda_graph`` does:

    python benchmarks/zeus_side_by_side.py --experiment classes --sized --replayed --window 1.0 \
        --guard 0.05 --repeats 5 --precisions bf16 --batch 8 --seq 512 \
        --passes train_step tape tape:gemm tape:elementwise tape:optimizer
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import random
import statistics
import sys
import time

import torch

from flopmetrics.energy.setup import EnergySettings, setup_meters
from flopmetrics.energy.windows import Monitor
from flopmetrics.jobs.iterations import run_for
from flopmetrics.workloads import classes
from flopmetrics.workloads.causal_lm import CausalLMWorkload, LMConfig
from flopmetrics.workloads.inference import InferenceConfig, InferenceWorkload


def summary(values: list[float]) -> dict:
    mean = statistics.fmean(values)
    return {
        "mean": mean,
        "cv": statistics.stdev(values) / mean if len(values) > 1 else float("nan"),
        "values": values,
    }


class SideBySide:
    """Windows of one pass read by our meters and by Zeus over the same iterations."""

    def __init__(self, args, setup, zeus_monitor):
        self.args, self.setup, self.zeus = args, setup, zeus_monitor
        self.mon = Monitor("cuda:0", setup.meters)
        # the NVML counter meter: knows when an edge is covered
        self.counter = setup.meters[0] if args.sized else None
        self.rng = random.Random(args.seed)

    def lead_in(self, step) -> float | None:
        """The leading guard (until the counter has stepped past its start where sized), and
        with random phase up to one counter period more; returns its rate."""
        t = time.perf_counter()
        until = (lambda: self.counter.covers(t)) if self.counter else None
        n = run_for(self.mon, step, self.args.guard, until=until)
        rate = (time.perf_counter() - t) / n if self.counter else None
        if self.args.random_phase:  # 0 to one counter period more of whole iterations
            for _ in range(self.rng.randint(0, math.ceil(0.1 / rate))):
                step()
        return rate

    def window(self, name: str, label: str, step, wl) -> dict:
        rate = self.lead_in(step)
        self.zeus.begin_window(label, sync_execution=True)
        self.mon.begin_window(name)
        kept = {}
        done = run_for(self.mon, step, self.args.window, keep=kept, per_iteration_s=rate)
        z = self.zeus.end_window(label, sync_execution=True)
        check = wl.health(name, kept.pop("last"))

        def settle():
            covered = self.mon.last_close_s
            until = (lambda: self.counter.covers(covered)) if self.counter else None
            run_for(self.mon, step, self.args.guard, per_iteration_s=rate, until=until)

        w = self.mon.end_window(name, settle=settle)
        finite, first = check()
        ticks = self.setup.sampler.ticks()[:, 0]
        return {
            "numerics": "finite" if finite else f"non_finite: {first}",
            "ours": w.readings["energy_j"] / done,
            "raw": w.readings["energy_counter_raw_j"] / done,
            "phase": float(w.start_s - ticks[ticks <= w.start_s].max()),
            "zeus": sum(z.gpu_energy.values()) / done,
        }


def warmed_steps(wl, args, graphs) -> dict:
    """Each pass run three times; with ``--replayed`` then captured in a CUDA graph (as launch
    auto replays a launch-bound one) and its replay run three times."""
    steps = {p: wl.steps()[p] for p in args.passes}
    for p in args.passes:
        for _ in range(3):
            steps[p]()
    if args.replayed:
        steps = {p: graphs.enter_context(wl.replayed(p, steps[p])) for p in args.passes}
        for p in args.passes:
            for _ in range(3):
                steps[p]()
    return steps


def workload(precision: str, args):
    """The workload of ``--experiment``: a training step's passes, its operation classes', or
    serving's."""
    if args.experiment == "inference":
        config = InferenceConfig.of(
            {
                "model": args.model,
                "batch_size": args.batch,
                "prompt_len": args.prompt,
                "output_len": args.output,
                "passes": list(args.passes),
            }
        )
        return InferenceWorkload("cuda:0", precision, config)
    if args.experiment == "classes":
        shape = {"model": args.model, "batch_size": args.batch, "seq_len": args.seq}
        return classes.build("cuda:0", precision, shape, seed=0)
    config = LMConfig.of(
        {
            "model": args.model,
            "batch_size": args.batch,
            "seq_len": args.seq,
            "passes": list(args.passes),
        }
    )
    return CausalLMWorkload("cuda:0", precision, config)


def measure(precision: str, args, zeus_monitor) -> dict:
    wl = workload(precision, args)
    setup = setup_meters(
        "cuda:0", EnergySettings(meter="auto", sampler_hz=50, guard_s=args.guard, idle_baseline_s=0)
    )
    both = SideBySide(args, setup, zeus_monitor)
    out = {}
    readings = {p: [] for p in args.passes}
    with wl.precision_scope(), setup.sampler, contextlib.ExitStack() as graphs:
        steps = warmed_steps(wl, args, graphs)
        for r in range(args.repeats):
            for p in args.passes:
                wl.restore()
                got = both.window(p, f"{precision}-{p}-{r}", steps[p], wl)
                readings[p].append(got)
                print(
                    f"[{precision} {p} {r}] ours {got['ours']:.3f} J/it, zeus {got['zeus']:.3f} "
                    f"J/it, {got['numerics']}",
                    file=sys.stderr,
                    flush=True,
                )
        ours = {p: [g["ours"] for g in readings[p]] for p in args.passes}
        zeus = {p: [g["zeus"] for g in readings[p]] for p in args.passes}
        raws = {p: [g["raw"] for g in readings[p]] for p in args.passes}
        numerics = {p: [g["numerics"] for g in readings[p]] for p in args.passes}
        phases = {p: [g["phase"] for g in readings[p]] for p in args.passes}
        for p in args.passes:
            o, z = summary(ours[p]), summary(zeus[p])
            out[p] = {
                "ours_j_per_iter": o,
                "zeus_j_per_iter": z,
                "zeus_minus_ours_pct": 100 * (z["mean"] - o["mean"]) / o["mean"],
                "numerics": numerics[p],
                "ours_raw_edges_j_per_iter": summary(raws[p]),
                "start_phase_s": phases[p],
            }
    out["gpu_uuid"] = setup.gpu.uuid()
    out["gpu_name"] = setup.gpu.name()
    del wl
    torch.cuda.empty_cache()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--precisions", nargs="+", default=["fp16", "bf16"])
    ap.add_argument("--passes", nargs="+", default=["forward", "train_step"])
    ap.add_argument("--experiment", choices=["llm", "classes", "inference"], default="llm")
    ap.add_argument("--prompt", type=int, default=512, help="inference: prompt length")
    ap.add_argument("--output", type=int, default=256, help="inference: output length")
    ap.add_argument("--model", default="llama-3.2-1b")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--window", type=float, default=2.0)
    ap.add_argument("--guard", type=float, default=0.3)
    ap.add_argument(
        "--sized", action="store_true", help="frame windows as the pipeline does now (see above)"
    )
    ap.add_argument(
        "--random-phase", action="store_true", help="open windows at random phase (see above)"
    )
    ap.add_argument("--seed", type=int, default=0, help="of the random phases")
    ap.add_argument(
        "--replayed",
        action="store_true",
        help="replay every pass from a CUDA graph (launch auto's launch-bound configurations)",
    )
    args = ap.parse_args()
    from zeus.monitor import ZeusMonitor

    zeus_monitor = ZeusMonitor(gpu_indices=[torch.cuda.current_device()], cpu_indices=[])
    import zeus

    result = {
        "zeus_version": getattr(zeus, "__version__", "?"),
        "torch": torch.__version__,
        "experiment": args.experiment,
        "model": args.model,
        "batch": args.batch,
        "seq": args.seq,
        "prompt": args.prompt,
        "output": args.output,
        "window_s": args.window,
        "repeats": args.repeats,
        "guard_s": args.guard,
        "sized": args.sized,
        "random_phase": args.random_phase,
        "replayed": args.replayed,
        "precisions": {p: measure(p, args, zeus_monitor) for p in args.precisions},
    }
    json.dump(result, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
