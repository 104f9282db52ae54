"""``flopmetrics measure -- CMD ARGS``: time, energy and power of any command, per device.

The same meters and guards as the pipeline (:meth:`Monitor.for_device`): per GPU the NVML
energy counter interpolated at the edges and a power sampler; on a CPU RAPL where readable, else
"no meter" (energy NaN, and the reason). An idle baseline before the command gives its dynamic
energy (energy above idle power). Exit status: the command's.
"""

from __future__ import annotations

import argparse
import math
import shlex
import subprocess
import sys
import time

import pandas as pd
import torch

from ..contracts.schema import defaults
from ..energy.windows import Monitor
from ..jobs.output import write_parquet
from ..jobs.provenance import collect
from .options import from_schema


def add(sub) -> None:
    p = sub.add_parser(
        "measure",
        help="time and energy of any command",
        description=__doc__.split("\n\n")[1],
        usage="flopmetrics measure [--device DEV ...] [--output FILE.parquet] -- CMD [ARGS ...]",
    )
    p.add_argument(
        "--device", action="append", help="cpu, cuda:<i> (repeatable; default: every GPU, else cpu)"
    )
    p.add_argument(
        "--meter",
        choices=["auto", "nvml", "nvml_trace", "rapl", "none"],
        help="default: the config schema's energy.meter",
    )
    p.add_argument(
        "--idle-s",
        type=from_schema("energy.idle_baseline_s"),
        help="idle baseline before the command (default: energy.idle_baseline_s)",
    )
    p.add_argument("--output", help="write one parquet row per device, with provenance")
    p.add_argument("cmd", nargs=argparse.REMAINDER, help="the command, after --")
    p.set_defaults(run=run)


def devices(asked: list[str] | None) -> list[str]:
    """The devices to measure: those asked for, each checked to exist here; else every GPU,
    else the CPU."""
    gpus = [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    for device in asked or []:
        if device != "cpu" and device not in gpus:
            here = ", ".join(["cpu", *gpus])
            raise ValueError(f"--device {device}: no such device here (this machine has: {here})")
    return asked or gpus or ["cpu"]


def row(device: str, monitor, idle, window, command: list[str], code: int) -> dict:
    energy = window.readings.get("energy_j", math.nan)
    idle_w = (
        idle.readings.get("energy_j", math.nan) / idle.elapsed_s if idle is not None else math.nan
    )
    setup = monitor.setup
    return {
        "device": device,
        "command": shlex.join(command),
        "exit_code": code,
        "time_s": window.elapsed_s,
        "energy_j": energy,
        "idle_power_w": idle_w,
        "energy_dynamic_j": energy - idle_w * window.elapsed_s,
        "power_mean_w": window.readings.get("power_mean_w", energy / window.elapsed_s),
        "power_max_w": window.readings.get("power_max_w", math.nan),
        "energy_trace_j": window.readings.get("energy_trace_j", math.nan),
        "meter": setup.method,
        "status": monitor.status,
        **setup.gpu_info(),
    }


def run(args) -> int:

    command = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not command:
        raise ValueError("no command to measure: flopmetrics measure -- CMD [ARGS ...]")
    idle_s = defaults("energy")["idle_baseline_s"] if args.idle_s is None else args.idle_s
    monitors = {d: Monitor.for_device(d, args.meter) for d in devices(args.device)}
    try:
        idle = {}
        if idle_s > 0:
            print(f"[measure] idle baseline {idle_s:g} s ...", file=sys.stderr, flush=True)
            for m in monitors.values():
                m.begin_window("idle")
            time.sleep(idle_s)
            idle = {d: m.end_window("idle") for d, m in monitors.items()}
        print(f"[measure] running: {shlex.join(command)}", file=sys.stderr, flush=True)
        for m in monitors.values():
            m.begin_window("command")
        code = subprocess.run(command, check=False).returncode
        windows = {d: m.end_window("command") for d, m in monitors.items()}
    finally:
        for m in monitors.values():
            m.close()
    rows = [row(d, monitors[d], idle.get(d), windows[d], command, code) for d in monitors]
    for r in rows:
        print(
            f"{r['device']}: {r['time_s']:.3f} s, "
            + (
                f"{r['energy_j']:.2f} J ({r['energy_dynamic_j']:.2f} J above idle "
                f"{r['idle_power_w']:.1f} W), "
                f"mean {r['power_mean_w']:.1f} W, max {r['power_max_w']:.1f} W, meter {r['meter']}"
                if math.isfinite(r["energy_j"])
                else f"energy not measured: {r['status']}"
            )
        )
    if args.output:
        table = pd.DataFrame(
            [
                {
                    **r,
                    **collect(
                        r["device"], {"command": command, "idle_s": idle_s, "meter": r["meter"]}
                    ),
                }
                for r in rows
            ]
        )
        write_parquet(table, args.output)
        print(f"[measure] wrote {args.output}", file=sys.stderr)
    return code
