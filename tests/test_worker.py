"""The measuring worker and its jobs (flopmetrics.jobs.client, flopmetrics.jobs.worker) as real
processes on the CPU: who serves whom, and what is left when either side goes away."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import job_spec

from flopmetrics.jobs import client, unix

MLP = {"n": 2, "d": 16, "m": 4}
SLOW = {"min_window_s": 1.0, "repeats": 3, "min_repeats": 3}


@pytest.fixture
def runtime(tmp_path, monkeypatch) -> Path:
    """A private folder for the workers' sockets, locks and logs, deep enough that a socket's
    path exceeds a socket address (as on a cluster's scratch); the workers started there are
    killed at the end whatever happened."""
    folder = tmp_path / "a-folder-as-deep-as-a-cluster-scratch-path" / "run"
    monkeypatch.setenv("FLOPMETRICS_WORKER_DIR", str(folder))
    monkeypatch.setenv("FLOPMETRICS_WORKER_IDLE_S", "20")
    yield folder
    for log in tmp_path.glob("*.log"):
        for pid in re.findall(r"measured by worker (\d+)", log.read_text()):
            if client._alive(int(pid)):
                os.kill(int(pid), signal.SIGKILL)


def test_a_socket_path_longer_than_a_socket_address_is_served(tmp_path):
    path = tmp_path / ("deep-" * 30) / "worker.sock"
    path.parent.mkdir(parents=True)
    assert len(str(path)) > unix.SUN_PATH_BYTES
    with unix.listen(path) as server:
        assert path.is_socket()  # bound where it was asked, not at the short name
        with unix.connect(path) as conn:
            conn.sendall(b"x")
            accepted, _ = server.accept()
            assert accepted.recv(1) == b"x"
            accepted.close()
    assert unix.connect(tmp_path / "none.sock") is None


def outputs(tmp_path: Path, name: str) -> dict[str, str]:
    return {k: str(tmp_path / f"{name}.{k}.parquet") for k in ("table", "trace")}


def job(params: dict, out: dict, log: Path) -> subprocess.Popen:
    """A profiling job's command, as the workflow runs it."""
    argv = [sys.executable, "-m", "flopmetrics.jobs.client", json.dumps(params), str(log)]
    argv += [f"{k}={v}" for k, v in out.items()]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(log: Path, pattern: str, proc: subprocess.Popen, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = log.read_text() if log.exists() else ""
        if (found := re.search(pattern, text)) is not None:
            return found.group(1) if found.groups() else found.group(0)
        assert proc.poll() is None, f"the job ended first:\n{proc.communicate()}"
        assert time.monotonic() < deadline, f"{pattern!r} never appeared in {log}"
        time.sleep(0.05)


def gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while client._alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_configurations_of_one_target_share_one_worker(runtime, tmp_path, monkeypatch):
    """Two sizes and a second precision of the MLP, a matmul, an MLP of other repeats: one worker
    measures them all (one process start and idle baseline), each into its own files; other
    energy settings get a worker of their own. A CPU worker computes on one thread (workers
    measure side by side, one per core), unless the environment sets the threads."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    specs = [job_spec("mlp", {**MLP, "m": m}) for m in (4, 8)]
    specs.append(job_spec("mlp", MLP, precision="bf16"))
    specs.append(job_spec("matmul", {"size": 16}))
    specs.append(job_spec("mlp", MLP, measure={"repeats": 3, "min_repeats": 3}))
    specs.append(job_spec("mlp", MLP, energy={"idle_baseline_s": 0.1}))
    pids = []
    for i, spec in enumerate(specs):
        out, log = outputs(tmp_path, f"c{i}"), tmp_path / f"c{i}.log"
        client.measure(spec.params(), out, str(log))
        rows = pd.read_parquet(out["table"])
        assert (rows["experiment"] == spec.experiment).all() and "forward" in set(rows["pass"])
        assert (rows["precision"] == spec.precision).all()
        assert (rows["torch_threads"] == 1).all()
        assert Path(out["trace"]).exists()  # (empty on a CPU: no power trace)
        pids.append(re.search(r"measured by worker (\d+)", log.read_text()).group(1))
    assert len(set(pids[:5])) == 1 and pids[5] != pids[0]
    assert not list(tmp_path.glob(".*partial"))


def test_a_job_killed_mid_measurement_leaves_no_file_and_ends_its_worker(runtime, tmp_path):
    params = job_spec("mlp", MLP, measure=SLOW).params()
    out, log = outputs(tmp_path, "killed"), tmp_path / "killed.log"
    proc = job(params, out, log)
    pid = int(wait_for(log, r"measured by worker (\d+)", proc))
    wait_for(log, r"repeat 1/3", proc)
    proc.kill()  # SIGKILL: the job does nothing on its way out
    proc.wait()
    assert gone_within(pid, 30), "the worker went on measuring for a job that is gone"
    assert not any(Path(p).exists() for p in out.values())
    assert not list(tmp_path.glob(".*partial"))


def test_a_worker_killed_mid_measurement_fails_its_job_naming_the_logs(runtime, tmp_path):
    params = job_spec("mlp", MLP, measure=SLOW).params()
    out, log = outputs(tmp_path, "orphan"), tmp_path / "orphan.log"
    proc = job(params, out, log)
    pid = int(wait_for(log, r"measured by worker (\d+)", proc))
    os.kill(pid, signal.SIGKILL)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "ended without an answer" in stderr and str(log) in stderr
    assert not any(Path(p).exists() for p in out.values())
    # the next job starts a new worker and measures
    client.measure(params, out, str(log))
    assert not pd.read_parquet(out["table"]).empty


def test_a_failing_configuration_fails_its_job_with_the_reason(runtime, tmp_path):
    params = job_spec("mlp", MLP, precision="fp7").params()
    out, log = outputs(tmp_path, "bad"), tmp_path / "bad.log"
    proc = job(params, out, log)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert "fp7" in stderr and str(log) in stderr
    assert "Traceback" in log.read_text()
    assert not any(Path(p).exists() for p in out.values())


def test_a_worker_leaves_when_idle_and_when_its_snakemake_ends(runtime, tmp_path):
    runtime.mkdir(parents=True, exist_ok=True)
    watched = subprocess.Popen(["sleep", "600"])
    command = [sys.executable, "-m", "flopmetrics.jobs.worker"]
    idle = subprocess.Popen([*command, str(runtime / "idle.sock"), "--idle-s", "1"])
    served = subprocess.Popen([*command, str(runtime / "served.sock"), "--watch", str(watched.pid)])
    try:
        assert idle.wait(timeout=30) == 0
        time.sleep(2)
        assert served.poll() is None  # still serving while its Snakemake runs
        watched.kill()
        watched.wait()
        assert served.wait(timeout=30) == 0
        assert not list(runtime.glob("*.sock"))  # sockets removed on the way out
    finally:
        for proc in (idle, served, watched):
            proc.kill()
