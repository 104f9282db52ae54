"""Where a number came from: machine, software, code revision and job parameters."""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.metadata
import json
import os
import platform
import socket
import subprocess
from pathlib import Path

import torch


def config_hash(params: dict) -> str:
    """Stable short hash of a job's parameters (key order does not matter)."""
    blob = json.dumps(params, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def git_revision(start: str | os.PathLike | None = None) -> str:
    """``<sha>`` or ``<sha>-dirty`` of the repository holding ``start`` (cwd by default)."""
    env = os.environ.get("FLOPMETRICS_GIT_REVISION")
    if env:
        return env
    for where in (Path(start) if start else Path.cwd(), Path(__file__).resolve().parent):
        try:
            sha = subprocess.run(
                ["git", "-C", str(where), "rev-parse", "HEAD"],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout.strip()
            dirty = subprocess.run(
                ["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout.strip()
            return f"{sha}-dirty" if dirty else sha
        except (OSError, subprocess.SubprocessError):
            continue
    return "unknown"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: str) -> str:
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return cpu_model()


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return ""


def collect(device: str, params: dict) -> dict:
    """Provenance columns shared by every row a job writes."""
    dev = torch.device(device)
    info = {
        "device_type": dev.type,
        "device_name": device_name(device),
        "cpu_model": cpu_model(),
        "cpu_threads": torch.get_num_threads(),
        "hostname": socket.gethostname(),
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda or "",
        # the causal LM's code (its attention and mask paths) comes from this version
        "transformers_version": _version("transformers"),
        "python_version": platform.python_version(),
        "git_revision": git_revision(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID", ""),
        # where the scheduler put the job: lets a run prove each architecture's jobs landed right
        "slurm_partition": os.environ.get("SLURM_JOB_PARTITION", ""),
        "slurm_nodename": os.environ.get("SLURMD_NODENAME", ""),
        "slurm_job_gpus": os.environ.get("SLURM_JOB_GPUS", os.environ.get("SLURM_STEP_GPUS", "")),
        "slurm_gpus_on_node": os.environ.get("SLURM_GPUS_ON_NODE", ""),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
        "timestamp_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds"),
        "config_hash": config_hash(params),
        "config_json": json.dumps(params, sort_keys=True, default=str),
    }
    return info
