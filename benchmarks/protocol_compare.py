"""The adaptive protocol against the fixed one, back to back on one card (issue 15's validation):
energy per iteration of every pass, repeat CV, and the GPU time of the thesis's architecture
sweep (Llama-3.2-1B, batch 8, precisions x sequence lengths, forward and backward) both ways.

    old: what the H100 reference jobs ran (code of 2026-11-27): one job per configuration,
         5 windows of >= 2 s per pass, 0.3 s guards, windows issued in halving batches
    new: one job per precision measuring every length with one model build; one pass after
         the other, 3 to 10 windows of >= WINDOW s each, stopping at 0.5 % relative standard
         error; a pass's windows back to back, each issued in one batch sized by the rate
         just seen, one guard of >= 0.05 s between two windows that lasts until the energy
         counter has stepped past the edge; ``--launch cuda_graph``: every pass replayed from
         a CUDA graph (named "new 1 s graph"); ``--launch auto`` (the default of ``llm``):
         replayed only where the configuration is launch-bound (named "new 1 s auto")

For each precision the old jobs run first, then the new job(s), so every configuration is
measured both ways within minutes on the same card. Job times are measured inside the process
(model build, FLOP count, idle baseline, warm-up, windows); ``--imports`` adds the measured time
to start a job's process and import what it needs. Run in one process, the second and later
jobs skip first-use costs (CUDA libraries, the profiler) that every pipeline job pays;
``--processes`` runs each precision in a process of its own and records its whole wall time.

    python benchmarks/protocol_compare.py --precisions fp32 --windows 1.0 --output out.json
    # then thesis_sweep.sh
    python benchmarks/protocol_compare.py --old-only --imports --output old.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import torch

from flopmetrics.jobs import run as job
from flopmetrics.jobs.iterations import lead_in, run_for, warm_up
from flopmetrics.jobs.protocol import precise, worst_rse
from flopmetrics.jobs.spec import JobSpec

OLD = {
    "measure": {
        "repeats": 5,
        "min_repeats": 5,
        "target_rse": 0.0,
        "min_window_s": 2.0,
        "launch": "eager",
    },
    "energy": {"guard_s": 0.3, "idle_baseline_s": 2.0},
}


def fixed_protocol(monitor, passes, protocol, progress=None):
    """The protocol of 2026-11-27 (``old``), kept here alone to compare against: every pass
    warmed up first, then rounds of one window per pass interleaved (f, b, f, b, ...), each
    window with fixed guards of its own (not waiting for the counter to step past an edge) and
    issued in halving batches, stopping once every pass is precise. Same signature as
    :func:`flopmetrics.jobs.protocol.measure_passes`, which ``job.run(measure=...)`` takes."""
    if any(spec.replayed for spec in passes):
        raise ValueError("the fixed protocol runs eager only (launch eager)")
    for spec in passes:
        warm_up(monitor, spec.step, protocol.warmup_iterations)
    windows = {spec.name: [] for spec in passes}
    least = min(protocol.min_repeats, protocol.repeats)
    for r in range(protocol.repeats):
        for spec in passes:
            if spec.prepare:
                spec.prepare()
            w = _fixed_window(monitor, spec, protocol)
            windows[spec.name].append(w)
            if progress:
                progress(
                    f"repeat {r + 1}/{protocol.repeats} {spec.name}: {w.iterations} it in "
                    f"{w.elapsed_s:.3f} s, {w.numerics}"
                )
        if r + 1 >= least and protocol.target_rse > 0:
            worst = worst_rse(monitor, list(windows.values()))
            more = progress if r + 1 < protocol.repeats else None
            if precise(worst, protocol.target_rse, r + 1, more, "every pass"):
                break
    return windows


def _fixed_window(monitor, spec, protocol):
    """One window: a fixed leading guard, whole iterations in halving batches, a fixed trailing
    guard (after the numeric check is queued)."""
    lead_in(monitor, spec.step, protocol.guard_s, lambda t: None)
    kept = {}
    monitor.begin_window(spec.name)
    done = run_for(monitor, spec.step, protocol.min_window_s, keep=kept)

    def settle():
        if spec.check:
            kept["result"] = spec.check(kept.pop("last"))
        if protocol.guard_s:
            run_for(monitor, spec.step, protocol.guard_s)

    w = monitor.end_window(spec.name, settle=settle)
    w.iterations = done
    if spec.check:
        finite, first = kept["result"]()
        w.numerics, w.first_nonfinite = ("finite" if finite else "non_finite"), first
    return w


def new(window: float, launch: str = "eager") -> dict:
    return {
        "measure": {
            "repeats": 10,
            "min_repeats": 3,
            "target_rse": 0.005,
            "min_window_s": window,
            "launch": launch,
        },
        "energy": {"guard_s": 0.05, "idle_baseline_s": 2.0},
    }


def spec(precision: str, seq: int, protocol: dict, passes: list[str], model: str) -> JobSpec:
    name = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    target = next(
        (label for label in ("h200", "h100") if label.upper() in name),
        "cuda" if name != "cpu" else "cpu",
    )
    return JobSpec.from_params(
        {
            "experiment": "llm",
            "target": target,
            "precision": precision,
            "workload": {
                "model": model,
                "batch_size": 8,
                "seq_len": seq,
                "passes": passes,
                "attn_implementation": "sdpa",
                "attention_flops": "full",
            },
            "measure": {
                "warmup_iterations": 3,
                "seed": 0,
                "profiler_flops": False,
                **protocol["measure"],
            },
            "energy": {"meter": "auto", "sampler_hz": 50, **protocol["energy"]},
        }
    )


def records(rows, protocol: str, seconds: float, batch_seconds: float) -> list[dict]:
    keep = (
        "pass",
        "derived",
        "launch",
        "windows",
        "energy_j_per_iter",
        "energy_j_per_iter_sem",
        "energy_cv",
        "time_per_iter_s",
        "counter_vs_trace_pct",
        "power_counter_mean_w",
        "idle_power_w",
        "gates_passed",
        "numerics",
        "gpu_uuid",
        "gpu_name",
        "driver_version",
        "power_limit_w",
        "precision",
        "seq_len",
        "git_revision",
        "host_issue_pct",
        "gpu_idle_pct",
        "transformers_version",
        "temperature_max_c",
        "sm_clock_mean_mhz",
    )
    out = []
    for r in rows.to_dict("records"):
        out.append(
            {
                "protocol": protocol,
                "job_s": seconds,
                "batch_s": batch_seconds,
                **{k: r[k] for k in keep},
                "tflops_per_j": r["flops_per_j"] / 1e12,
                "gates_passed": bool(r["gates_passed"]),
            }
        )
    return out


def import_seconds() -> float:
    """Wall time to start a Python process and import what a job imports (median of 3)."""
    code = (
        "import torch, transformers, pandas, flopmetrics.jobs.run; "
        "torch.cuda.is_available() and torch.cuda.init()"
    )
    times = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - start)
    return sorted(times)[1]


def write(out: dict, path: str) -> None:
    """``out`` as JSON at ``path``, atomically."""
    with open(path + ".partial", "w") as fh:
        json.dump(out, fh, indent=1, default=str)
    os.replace(path + ".partial", path)


def in_processes(args) -> None:
    """Run each precision as a child process of this script and merge what they measured."""
    out = {"rows": [], "jobs": []}
    for precision in args.precisions:
        part = f"{args.output}.{precision}"
        child = [
            sys.executable,
            __file__,
            "--precisions",
            precision,
            "--seq",
            *map(str, args.seq),
            "--passes",
            *args.passes,
            "--windows",
            *map(str, args.windows),
            "--launch",
            *args.launch,
            "--model",
            args.model,
            "--output",
            part,
            *(["--no-old"] if args.no_old else []),
            *(["--old-only"] if args.old_only else []),
            *(["--traces", args.traces] if args.traces else []),
        ]
        start = time.perf_counter()
        subprocess.run(child, check=True)
        took = time.perf_counter() - start
        measured = json.load(open(part))
        out["rows"] += measured["rows"]
        out["jobs"] += [{**j, "process_s": took} for j in measured["jobs"]]
        os.remove(part)
        write(out, args.output)


def say(tag: str):
    return lambda m: print(f"[{tag}] {m}", file=sys.stderr, flush=True)


def run_old(args, precision: str, out: dict, save) -> None:
    """The old protocol: one job (one process start's worth) per configuration."""
    for seq in args.seq:
        start = time.perf_counter()
        rows, _ = job.run(
            spec(precision, seq, OLD, args.passes, args.model),
            measure=fixed_protocol,
            progress=say(f"{precision} s{seq} old"),
        )
        took = time.perf_counter() - start
        out["rows"] += records(rows, "old", took, took)
        out["jobs"].append(
            {"protocol": "old", "precision": precision, "seq": [seq], "seconds": took}
        )
        say("old")(f"{precision} s{seq}: {took:.1f} s")
        save()


def run_new(args, precision: str, how: tuple, out: dict, save) -> None:
    """The new protocol: one job measuring every length of ``precision``."""
    window, launch = how
    name = f"new {window:g} s" + {"cuda_graph": " graph", "auto": " auto"}.get(launch, "")
    specs = [spec(precision, seq, new(window, launch), args.passes, args.model) for seq in args.seq]
    start, ends = time.perf_counter(), []
    results = job.run_batch(
        specs,
        progress=say(f"{precision} {name}"),
        done=lambda i, rows, trace: ends.append(time.perf_counter()),
    )
    took = time.perf_counter() - start
    for (rows, trace), began, end in zip(results, [start, *ends[:-1]], ends, strict=False):
        out["rows"] += records(rows, name, end - began, took)
        if args.traces:
            os.makedirs(args.traces, exist_ok=True)
            seq = int(rows["seq_len"].iloc[0])
            file = f"{name.replace(' ', '_')}_{precision}_s{seq}.parquet"
            trace.to_parquet(os.path.join(args.traces, file))
    out["jobs"].append({"protocol": name, "precision": precision, "seq": args.seq, "seconds": took})
    say(name)(f"{precision}: {took:.1f} s for {len(specs)} configurations")
    save()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--precisions", nargs="+", default=["fp32", "fp16", "bf16"])
    ap.add_argument("--seq", nargs="+", type=int, default=[256, 512, 1024])
    ap.add_argument("--passes", nargs="+", default=["forward", "forward_train", "forward_backward"])
    ap.add_argument(
        "--windows", nargs="+", type=float, default=[1.0], help="the new protocol's window lengths"
    )
    ap.add_argument(
        "--launch",
        nargs="+",
        default=["eager"],
        choices=["eager", "cuda_graph", "auto"],
        help="the new protocol's launch modes",
    )
    ap.add_argument("--model", default="llama-3.2-1b")
    ap.add_argument("--no-old", action="store_true", help="the new protocol only")
    ap.add_argument(
        "--old-only",
        action="store_true",
        help="the old protocol only (its side of a sweep whose new side ran through the pipeline)",
    )
    ap.add_argument(
        "--imports", action="store_true", help="also time a job process's start and imports"
    )
    ap.add_argument("--output", help="write here after every job (default: stdout at the end)")
    ap.add_argument(
        "--traces",
        help="also write each configuration's power trace (labelled with its windows) here",
    )
    ap.add_argument(
        "--processes",
        action="store_true",
        help="each precision in a process of its own, as pipeline jobs run (first-use costs paid "
        "by each; jobs[].process_s is the process's whole wall time); needs --output",
    )
    args = ap.parse_args()
    if args.processes:
        return in_processes(args)
    out = {"rows": [], "jobs": []}

    def save():  # after every job: a run cut short keeps what it measured
        if args.output:
            write(out, args.output)

    for precision in args.precisions:
        if not args.no_old:
            run_old(args, precision, out, save)
        for window, launch in (
            (w, mode) for w in args.windows for mode in args.launch if not args.old_only
        ):
            run_new(args, precision, (window, launch), out, save)
    if args.imports:
        out["import_s"] = import_seconds()
        save()
    if not args.output:
        json.dump(out, sys.stdout, indent=1, default=str)


if __name__ == "__main__":
    main()
