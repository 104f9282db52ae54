"""Where a number came from: machine, software, code revision and job parameters."""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib.metadata
import json
import os
import platform
import socket
import subprocess
from pathlib import Path

import torch

from ..contracts.identity import config_hash


def git_revision(start: str | os.PathLike | None = None) -> tuple[str, bool]:
    """The code's revision and whether it was verified: ``<sha>`` or ``<sha>-dirty`` (a source
    file changed or added since that commit) from the repository that holds this package (or
    ``start``); outside a repository, ``FLOPMETRICS_GIT_REVISION`` as given, unverified (a
    copy without ``.git``); else ``unknown``."""
    where = Path(start) if start else Path(__file__).resolve().parent
    try:
        top = _git(where, "rev-parse", "--show-toplevel")  # CODE_PATHS are relative to it
        sha = _git(top, "rev-parse", "HEAD")
        dirty = _git(top, "status", "--porcelain", "--", *CODE_PATHS)
        return (f"{sha}-dirty" if dirty else sha), True
    except (OSError, subprocess.SubprocessError):
        pass
    given = os.environ.get("FLOPMETRICS_GIT_REVISION", "").strip()
    return (given or "unknown"), False


# what makes the measuring code: a change here marks a row's revision dirty
CODE_PATHS = ("src", "workflow", "Snakefile", "pyproject.toml")


def _git(where: str | os.PathLike, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(where), *args], capture_output=True, text=True, timeout=10, check=True
    ).stdout.strip()


def host_id() -> str:
    """The host's machine id (``/etc/machine-id``, first 12 characters; where a container has
    none, ``boot-`` and the kernel's boot id): tells hosts apart where every one is named alike
    (``vm``, a container's name)."""
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        with contextlib.suppress(OSError):
            if text := Path(path).read_text().strip():
                return text[:12]
    with contextlib.suppress(OSError):  # a container without one: this boot of the host
        return "boot-" + Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:12]
    return ""


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
    revision, verified = git_revision()
    info = {
        "device_type": dev.type,
        "device_name": device_name(device),
        "cpu_model": cpu_model(),
        # the host's logical CPUs, those this process may run on, and torch's threads
        "host_cpus": os.cpu_count() or 0,
        "cpus_available": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count() or 0,
        "torch_threads": torch.get_num_threads(),
        "hostname": socket.gethostname(),
        "host_id": host_id(),
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda or "",
        # the causal LM's code (its attention and mask paths) comes from this version
        "transformers_version": _version("transformers"),
        "python_version": platform.python_version(),
        "git_revision": revision,
        # False: taken from FLOPMETRICS_GIT_REVISION as given, in a copy without .git
        "git_revision_verified": verified,
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
