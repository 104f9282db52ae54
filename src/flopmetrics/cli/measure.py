"""``flopmetrics measure -- CMD ARGS``: time, energy and power of any command, per device.

The same meters and guards as the pipeline (:meth:`Monitor.for_device`): per GPU the NVML
energy counter interpolated at the edges and a power sampler; on a CPU RAPL where readable, else
"no meter" (energy NaN, and the reason). An idle baseline before the command gives its dynamic
energy (energy above idle power). ``--output`` writes Parquet, CSV or JSON by its extension;
measure's own lines go to stderr (stdout is the command's). Exit status: the command's; 127 where
it is not found, 126 where it is not executable (as a shell says); 2 a bad invocation.
"""

from __future__ import annotations

import argparse
import math
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from ..contracts.schema import defaults
from ..energy.windows import Monitor
from ..jobs.output import write_csv, write_json, write_parquet
from ..jobs.provenance import collect
from .options import from_schema


def add(sub) -> None:
    p = sub.add_parser(
        "measure",
        help="time and energy of any command",
        description=__doc__.split("\n\n")[1],
        usage="flopmetrics measure [--device DEV ...] [--output FILE.{parquet,csv,json}] "
        "-- CMD [ARGS ...]",
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
    p.add_argument(
        "--output",
        help="write one row per device, with provenance: Parquet, CSV or JSON by the file's "
        "extension (.parquet, .csv, .json)",
    )
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


# a shell's exit statuses for a command that cannot start: not found, not executable
NOT_FOUND, NOT_EXECUTABLE = 127, 126
WRITERS = {".parquet": write_parquet, ".csv": write_csv, ".json": write_json}


def _writer(output: str | None):
    """The writer of ``--output`` by its extension, checked before anything runs."""
    if output is None:
        return None
    suffix = Path(output).suffix.lower()
    if suffix not in WRITERS:
        raise ValueError(
            f"--output {output}: unknown extension {suffix or '(none)'!r}; "
            f"use one of {', '.join(WRITERS)}"
        )
    return WRITERS[suffix]


def _start(command: list[str]) -> int:
    """Run the command; a command that cannot start exits as a shell says so (127, 126)."""
    try:
        return subprocess.run(command, check=False).returncode
    except FileNotFoundError:
        print(f"flopmetrics measure: {command[0]}: command not found", file=sys.stderr)
        return NOT_FOUND
    except PermissionError:
        print(f"flopmetrics measure: {command[0]}: not executable", file=sys.stderr)
        return NOT_EXECUTABLE


def run(args) -> int:

    command = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not command:
        raise ValueError("no command to measure: flopmetrics measure -- CMD [ARGS ...]")
    writer = _writer(args.output)
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
        code = _start(command)
        windows = {d: m.end_window("command") for d, m in monitors.items()}
    finally:
        for m in monitors.values():
            m.close()
    rows = [row(d, monitors[d], idle.get(d), windows[d], command, code) for d in monitors]
    for r in rows:  # stderr: stdout is the command's
        print(
            f"[measure] {r['device']}: {r['time_s']:.3f} s, "
            + (
                f"{r['energy_j']:.2f} J ({r['energy_dynamic_j']:.2f} J above idle "
                f"{r['idle_power_w']:.1f} W), "
                f"mean {r['power_mean_w']:.1f} W, max {r['power_max_w']:.1f} W, meter {r['meter']}"
                if math.isfinite(r["energy_j"])
                else f"energy not measured: {r['status']}"
            ),
            file=sys.stderr,
        )
    if writer is not None:
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
        writer(table, args.output)
        print(f"[measure] wrote {args.output}", file=sys.stderr)
    return code
