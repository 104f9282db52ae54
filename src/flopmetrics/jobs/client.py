"""A profiling job's side of the measuring worker: one configuration per Snakemake job, measured
by a long-lived worker process (:mod:`flopmetrics.jobs.worker`) that pays the process start, the
imports, the meters' set-up and the idle baseline once for every configuration it serves.

A job finds the worker of its settings (experiment, target, measuring and energy settings, this
host's GPUs, the package's code) by a Unix socket, or starts one; sends its parameters and the
paths of its files; and renames the files the worker wrote beside them into place (the table
last: its presence means the configuration was measured). A job that is cancelled closes its
connection, and the worker abandons the configuration, writing nothing. A GPU is held by one
worker at a time: a worker of other settings on the same GPU is asked to leave first.

This module imports neither torch nor pandas: a job costs a process start and a round trip.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import flopmetrics

from . import unix

START_TIMEOUT_S = 900.0  # a worker's start: imports (slow on a cluster's shared file system)
EXIT_TIMEOUT_S = 600.0  # a worker asked to leave a GPU finishes what it is measuring first
PACKAGE = Path(flopmetrics.__file__).resolve().parent
CPU_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


class WorkerError(RuntimeError):
    """The worker failed to start, or failed the configuration; the message says why."""


def measure(params: dict, outputs: dict[str, str], log: str) -> None:
    """Have the worker of ``params``' settings measure its configuration into ``outputs``
    (output name -> path); its progress goes to ``log``."""
    # the worker may have been started by a job of another folder: it writes where we say
    outputs = {name: os.path.abspath(path) for name, path in outputs.items()}
    log = os.path.abspath(log)
    with _slot(params) as key, connect_or_start(params, key) as conn:
        _send(conn, {"params": params, "outputs": outputs, "log": log})
        answer = _receive(conn)
        if answer is None:
            raise WorkerError(
                f"the measuring worker ended without an answer; see {log} and its own log "
                f"{_worker_log(key)}"
            )
        if "error" in answer:
            raise WorkerError(f"{answer['error']} (the traceback is in {log})")
        for name in (*[n for n in answer["files"] if n != "table"], "table"):
            os.replace(answer["files"][name], outputs[name])  # the table last
        _send(conn, {"renamed": True})


@contextlib.contextmanager
def _slot(params: dict):
    """Hold one of the worker slots of ``params``' settings while its worker measures; yields
    the slot's worker key. A GPU has one slot (it measures one configuration at a time); a CPU
    one per core, so that Snakemake's cores measure configurations side by side, as separate
    jobs on a CPU did, each worker on one thread (:func:`worker_environment`)."""
    key = worker_key(params)
    slots = 1 if device_key(params) else (os.cpu_count() or 1)
    while True:
        for i in range(slots):
            fh = open(runtime_dir() / f"{key}-{i}.slot", "a")  # noqa: SIM115 - held below
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.close()
                continue
            try:
                yield f"{key}-{i}"
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
                fh.close()
            return
        time.sleep(0.05)  # every slot busy: more jobs than the host measures at once


def connect_or_start(params: dict, key: str) -> socket.socket:
    """A connection to the worker ``key`` of ``params``' settings, started if none answers."""
    path = runtime_dir() / f"{key}.sock"
    conn = unix.connect(path)
    if conn is not None:
        return conn
    device = device_key(params)
    if device:
        with _locked(runtime_dir() / f"device-{device}.lock"):
            _evict(device, path)
            return _start(key, path, device)
    return _start(key, path, None)


def worker_key(params: dict) -> str:
    """What one worker serves: the settings its session is opened with (the target, where it
    computes, the energy settings, the idle baseline's target RSE:
    :meth:`flopmetrics.jobs.session.Session.open`), on this host's GPUs (a Slurm job's own), with
    this package's code. Every experiment, precision and size of a target is measured by one
    worker, one configuration at a time."""
    shared = {
        "target": params["target"],
        "run_on_cpu": bool(params.get("run_on_cpu")),
        "energy": params["energy"],
        "idle_target_rse": params["measure"]["target_rse"],
    }
    where = [socket.gethostname(), os.getcwd(), sys.executable, *_allocation()]
    return _digest([shared, where, code_version()])


def device_key(params: dict) -> str | None:
    """The GPU a job's configuration computes on (None on a CPU: CPU jobs share nothing). The
    worker checks the target (:func:`flopmetrics.jobs.targets.resolve_target`); a job does not
    import the datasheet to find out."""
    target = params["target"]
    if target == "cpu" or params.get("run_on_cpu"):
        return None
    device = target if target.startswith("cuda:") else "cuda:0"  # cuda or a label: the first
    return _digest([socket.gethostname(), *_allocation(), device])


def code_version() -> str:
    """The package's source as it is now (a code edit starts a new worker)."""
    files = sorted(PACKAGE.rglob("*.py"))
    stats = [[str(f.relative_to(PACKAGE)), f.stat().st_mtime_ns, f.stat().st_size] for f in files]
    return _digest(stats)


def runtime_dir() -> Path:
    """Where workers' sockets, locks and logs live (private to this user, on this host)."""
    base = os.environ.get("FLOPMETRICS_WORKER_DIR") or os.environ.get("XDG_RUNTIME_DIR") or "/tmp"
    path = Path(base) / f"flopmetrics-{os.getuid()}"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def snakemake_pid() -> int | None:
    """The outermost Snakemake process above this one (the worker leaves when it ends): in a
    group of jobs on a cluster node each job may run in a Snakemake of its own, beneath the one
    that runs the group."""
    found, pid = None, os.getppid()
    while pid > 1:
        with contextlib.suppress(OSError):
            if b"snakemake" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found = pid
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return found


def _allocation() -> list[str]:
    return [os.environ.get(k, "") for k in ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID")]


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _worker_log(key: str) -> Path:
    return runtime_dir() / f"{key}.log"


@contextlib.contextmanager
def _locked(path: Path):
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _start(key: str, path: Path, device: str | None) -> socket.socket:
    """Start the worker and wait until it answers (or say why it did not)."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a socket left by a worker that was killed
    log = _worker_log(key)
    command = [sys.executable, "-m", "flopmetrics.jobs.worker", str(path)]
    command += ["--watch", str(snakemake_pid() or 0)]
    if device:
        command += ["--device-file", str(runtime_dir() / f"device-{device}.json")]
    with open(log, "w") as out:
        # a session of its own: it outlives this job, and a Ctrl-C of this job does not reach it
        proc = subprocess.Popen(
            command,
            env=worker_environment(device),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        conn = unix.connect(path)
        if conn is not None:
            return conn
        if proc.poll() is not None:
            tail = log.read_text()[-3000:]
            raise WorkerError(f"the measuring worker exited ({proc.returncode}) at start:\n{tail}")
        time.sleep(0.05)
    proc.kill()
    raise WorkerError(f"the measuring worker did not answer within {START_TIMEOUT_S:g} s ({log})")


def worker_environment(device: str | None) -> dict[str, str]:
    """The environment a worker starts in: a CPU's workers measure one per core, side by side
    (:func:`_slot`), so each computes on one thread unless the user's environment sets the
    threads; threads of their own would contend for the other workers' cores and spin-wait on
    them (rows record ``torch_threads``)."""
    env = dict(os.environ)
    if device is None:
        for variable in CPU_THREAD_VARIABLES:
            env.setdefault(variable, "1")
    return env


def _evict(device: str, own: Path) -> None:
    """Ask the worker that holds ``device`` for other settings to leave, and wait until it has."""
    holder = runtime_dir() / f"device-{device}.json"
    try:
        info = json.loads(holder.read_text())
    except (OSError, ValueError):
        return
    if info.get("socket") == str(own) or not _alive(info.get("pid", 0)):
        return
    conn = unix.connect(Path(info["socket"]))
    if conn is not None:
        with conn:
            _send(conn, {"exit": True})
    deadline = time.monotonic() + EXIT_TIMEOUT_S
    while _alive(info["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(info["pid"]):
        raise WorkerError(f"the worker {info['pid']} holding this GPU did not leave it")


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (exited, not yet reaped by its parent) holds no GPU
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _send(conn: socket.socket, message: dict) -> None:
    conn.sendall(json.dumps(message).encode() + b"\n")


def _receive(conn: socket.socket) -> dict | None:
    """The next message (a JSON line), or None where the other side closed first."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    return json.loads(data)


def main(argv: list[str] | None = None) -> int:
    """``python -m flopmetrics.jobs.client PARAMS_JSON LOG NAME=PATH ...``: one configuration
    (its job parameters as JSON) measured into the named files, progress in LOG."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 3 or any("=" not in a for a in args[2:]):
        print(main.__doc__, file=sys.stderr)
        return 2
    outputs = dict(a.split("=", 1) for a in args[2:])
    try:
        measure(json.loads(args[0]), outputs, args[1])
    except WorkerError as err:
        print(f"flopmetrics: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
