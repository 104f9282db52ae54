"""``flopmetrics env``: what this machine can measure (GPUs, energy counters, RAPL, ncu, Slurm)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import torch

from ..contracts.errors import MeterError
from ..energy.cpu import RaplMeter
from ..energy.nvml import NvmlGpu, NvmlUnavailable, load_nvml


def add(sub) -> None:
    p = sub.add_parser(
        "env",
        help="what this machine can measure",
        description="GPUs and their NVML energy counter, RAPL, Nsight Compute and its counter "
        "permission, Slurm, torch and CUDA versions.",
    )
    p.add_argument("--json", action="store_true", help="one JSON object instead of lines")
    p.set_defaults(run=run)


def _tool(cmd: list[str]) -> tuple[bool, str]:
    if not shutil.which(cmd[0]):
        return False, f"{cmd[0]} not on PATH"
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as err:
        return False, f"{cmd[0]} failed: {err}"
    text = (out.stdout or out.stderr).strip().splitlines()
    return out.returncode == 0, ("; ".join(text) if text else f"exit {out.returncode}")


def gpus() -> list[dict]:

    if not torch.cuda.is_available():
        return []
    try:
        nvml = load_nvml()
    except NvmlUnavailable as err:
        return [
            {"index": i, "name": torch.cuda.get_device_name(i), "nvml": f"unavailable: {err}"}
            for i in range(torch.cuda.device_count())
        ]
    out = []
    for i in range(torch.cuda.device_count()):
        g = NvmlGpu.for_torch_device(nvml, i)
        out.append(
            {
                "index": i,
                "name": g.name(),
                "uuid": g.uuid(),
                "driver": g.driver_version(),
                "power_limit_w": g.power_limit_w(),
                "energy_counter": g.has_energy_counter(),
            }
        )
    return out


def ncu_permission() -> str:
    """Whether ncu may read the GPU's counters: root, or the driver's admin-only switch off."""
    params = Path("/proc/driver/nvidia/params")
    if os.geteuid() == 0:
        return "yes (root)"
    try:
        admin_only = next(
            (
                line.split(":")[1].strip()
                for line in params.read_text().splitlines()
                if line.startswith("RmProfilingAdminOnly")
            ),
            None,
        )
    except OSError:
        return "unknown (no NVIDIA driver parameters to read)"
    return {
        "0": "yes",
        "1": "no: RmProfilingAdminOnly=1 "
        "(run as root or set NVreg_RestrictProfilingToAdminUsers=0)",
    }.get(admin_only, "unknown")


def facts() -> dict:

    try:
        RaplMeter()
        rapl = "readable"
    except MeterError as err:
        rapl = f"not readable: {err}"
    ncu_ok, ncu = _tool(["ncu", "--version"])
    slurm_ok, slurm = _tool(["sinfo", "-h", "-o", "%P %a %D"])
    return {
        "torch": torch.__version__,
        "cuda": torch.version.cuda or "none (CPU build)",
        "gpus": gpus(),
        "rapl": rapl,
        "ncu": ncu if ncu_ok else f"missing: {ncu}",
        "ncu_counters": ncu_permission() if ncu_ok else "n/a",
        "slurm": f"reachable: {slurm}" if slurm_ok else f"not reachable: {slurm}",
    }


def run(args) -> int:
    f = facts()
    if args.json:
        print(json.dumps(f, indent=1, default=str))
        return 0
    print(f"torch        {f['torch']} (CUDA {f['cuda']})")
    if not f["gpus"]:
        print("GPUs         none visible to torch")
    for g in f["gpus"]:
        counter = {True: "energy counter yes", False: "energy counter NO (trace only)"}.get(
            g.get("energy_counter"), g.get("nvml", "")
        )
        print(
            f"GPU {g['index']}        {g['name']} {g.get('uuid', '')}, {counter}, "
            f"power limit {g.get('power_limit_w', float('nan')):.0f} W, driver "
            f"{g.get('driver', '?')}"
        )
    print(f"RAPL         {f['rapl']}")
    print(f"ncu          {f['ncu']}; counters: {f['ncu_counters']}")
    print(f"Slurm        {f['slurm']}")
    return 0
