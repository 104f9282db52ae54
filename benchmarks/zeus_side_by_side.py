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
    python benchmarks/zeus_side_by_side.py --sized --window 1.0 --guard 0.05 --repeats 10 --precisions bf16
    python benchmarks/zeus_side_by_side.py --sized --random-phase --window 1.0 --guard 0.05 --repeats 20
    python benchmarks/zeus_side_by_side.py --sized --replayed --window 1.0 --guard 0.05 --seq 256 --precisions bf16

``--replayed`` replays every pass from a CUDA graph (captured after three eager iterations), as
``launch: auto`` does on a launch-bound configuration.
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
from flopmetrics.energy.windows import Monitor, run_for
from flopmetrics.flops.models import resolve
from flopmetrics.workloads.causal_lm import CausalLMWorkload


def summary(values: list[float]) -> dict:
    mean = statistics.fmean(values)
    return {
        "mean": mean,
        "cv": statistics.stdev(values) / mean if len(values) > 1 else float("nan"),
        "values": values,
    }


def measure(precision: str, args, zeus_monitor) -> dict:
    name, fields = resolve(args.model)
    wl = CausalLMWorkload(
        "cuda:0", precision, name, fields, args.batch, args.seq, passes=list(args.passes)
    )
    setup = setup_meters(
        "cuda:0", EnergySettings(meter="auto", sampler_hz=50, guard_s=args.guard, idle_baseline_s=0)
    )
    mon = Monitor("cuda:0", setup.meters)
    steps = wl.steps()
    counter = (
        setup.meters[0] if args.sized else None
    )  # the NVML counter meter: knows when an edge is covered
    out = {}
    rng = random.Random(args.seed)
    with wl.precision_scope(), setup.sampler, contextlib.ExitStack() as graphs:
        for p in args.passes:
            for _ in range(3):
                steps[p]()
        if (
            args.replayed
        ):  # every pass from its CUDA graph, as launch auto replays a launch-bound one
            steps = {p: graphs.enter_context(wl.replayed(p, steps[p])) for p in args.passes}
            for p in args.passes:
                for _ in range(3):
                    steps[p]()
        ours = {p: [] for p in args.passes}
        zeus = {p: [] for p in args.passes}
        numerics = {p: [] for p in args.passes}
        phases = {p: [] for p in args.passes}
        raws = {
            p: [] for p in args.passes
        }  # our counter's values at the edges, uninterpolated (as Zeus reads)
        for r in range(args.repeats):
            for p in args.passes:
                wl.restore()
                t, rate = time.perf_counter(), None
                n = run_for(
                    mon,
                    steps[p],
                    args.guard,
                    until=(lambda t=t: counter.covers(t)) if counter else None,
                )
                if counter:
                    rate = (time.perf_counter() - t) / n
                if args.random_phase:  # 0 to one counter period more of whole iterations
                    for _ in range(rng.randint(0, math.ceil(0.1 / rate))):
                        steps[p]()
                zeus_monitor.begin_window(f"{precision}-{p}-{r}", sync_execution=True)
                mon.begin_window(p)
                kept = {}
                done = run_for(mon, steps[p], args.window, keep=kept, per_iteration_s=rate)
                z = zeus_monitor.end_window(f"{precision}-{p}-{r}", sync_execution=True)
                check = wl.health(p, kept.pop("last"))
                w = mon.end_window(
                    p,
                    settle=lambda: run_for(
                        mon,
                        steps[p],
                        args.guard,
                        per_iteration_s=rate,
                        until=(lambda: counter.covers(mon.last_close_s)) if counter else None,
                    ),
                )
                finite, first = check()
                numerics[p].append("finite" if finite else f"non_finite: {first}")
                ours[p].append(w.readings["energy_j"] / done)
                raws[p].append(w.readings["energy_counter_raw_j"] / done)
                ticks = setup.sampler.ticks()[:, 0]
                phases[p].append(float(w.start_s - ticks[ticks <= w.start_s].max()))
                zeus[p].append(sum(z.gpu_energy.values()) / done)
                print(
                    f"[{precision} {p} {r}] ours {ours[p][-1]:.3f} J/it, zeus {zeus[p][-1]:.3f} J/it, "
                    f"{numerics[p][-1]}",
                    file=sys.stderr,
                    flush=True,
                )
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
        "model": args.model,
        "batch": args.batch,
        "seq": args.seq,
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
