"""The measuring worker: a long-lived process that measures configurations for profiling jobs
(:mod:`flopmetrics.jobs.client`), one at a time, on one device with one set of settings.

It pays once what every configuration would otherwise pay: the process start, the imports
(torch, transformers), CUDA's start, the meters' set-up and the idle baseline; a causal LM is
resized, not built again, from one configuration to the next of the same model. For each
request it writes the job's log, measures the configuration as a job would
(:func:`flopmetrics.jobs.run.measure_spec`) and writes the rows and the trace beside the job's
files, which the job renames into place. A job that goes away mid-measurement (cancelled,
killed) ends the worker, which writes nothing for it. It leaves when idle for ``--idle-s``, when
the Snakemake process it serves ends, when asked to (another worker needs its GPU), or after an
error (its state is then unknown).

    python -m flopmetrics.jobs.worker SOCKET [--watch PID] [--idle-s S] [--device-file F]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

from . import unix
from .log import logged
from .run import Held, measure_spec
from .session import Session
from .spec import JobSpec

IDLE_S = float(os.environ.get("FLOPMETRICS_WORKER_IDLE_S", 30))
ACK_TIMEOUT_S = 120.0  # a job renames its files at once; one that never does has gone away


class JobGone(Exception):  # noqa: N818 - an event, not an error of the code
    """The job of the configuration being measured closed its connection."""


class Worker:
    """The device, its meters and what the last configuration built, kept between requests."""

    def __init__(self, address: str, device_file: Path | None):
        self.address, self.device_file = address, device_file
        self.session: Session | None = None
        self.held = Held()
        self.stack = contextlib.ExitStack()
        self.started = time.strftime("%H:%M:%S")

    def serve(self, conn: socket.socket) -> bool:
        """One request; whether to go on serving."""
        request = _receive(conn)
        if request is None or request.get("exit"):
            return False
        gone = threading.Event()
        threading.Thread(target=_watch, args=(conn, gone), daemon=True).start()
        try:
            with logged(request["log"]):
                files = self.measure(JobSpec.from_params(request["params"]), request, gone)
        except JobGone:
            return False  # cancelled: nothing written, and the workload's state is unknown
        except Exception as err:  # noqa: BLE001 - any failure goes back to the job, named
            _send(conn, {"error": f"{type(err).__name__}: {err}"})
            return False
        _send(conn, {"files": files})
        renamed = _receive(conn, timeout=ACK_TIMEOUT_S)
        if renamed is None:  # the job went away before taking its files
            for path in files.values():
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
        return True

    def measure(self, spec: JobSpec, request: dict, gone: threading.Event) -> dict:
        """The configuration's rows and trace, written to temporary files beside the job's."""

        def say(message: str) -> None:
            if gone.is_set():
                raise JobGone("the job closed its connection")
            print(f"[{spec.name}] {message}", file=sys.stderr, flush=True)

        if self.session is None:
            self.open(spec, say)
        self.session.progress = say
        say(f"measured by worker {os.getpid()} (started {self.started})")
        rows, trace = measure_spec(self.session, spec, self.held)
        outputs = request["outputs"]
        files = {"trace": _temporary(trace, outputs["trace"])}
        files["table"] = _temporary(rows, outputs["table"])
        say("done")
        return files

    def open(self, spec: JobSpec, say) -> None:
        """The device and its meters, and the idle baseline, for every later configuration."""
        session = Session.open(spec, progress=say)
        self.stack.enter_context(session.sampling())
        session.measure_idle(spec)
        self.session = session
        if self.device_file:
            self.device_file.write_text(json.dumps({"pid": os.getpid(), "socket": self.address}))

    def close(self) -> None:
        self.stack.close()
        if self.device_file:
            with contextlib.suppress(FileNotFoundError, ValueError):
                if json.loads(self.device_file.read_text()).get("pid") == os.getpid():
                    self.device_file.unlink()


def _temporary(table, path: str) -> str:
    """``table`` written to a new hidden file beside ``path``; its name."""
    folder = Path(path).parent
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{Path(path).name}.", suffix=".partial", dir=folder)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())
    table.to_parquet(tmp, index=False)
    return tmp


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _watch(conn: socket.socket, gone: threading.Event) -> None:
    """Set ``gone`` once the job closes its end (or sends anything before it is answered)."""
    with contextlib.suppress(OSError):
        conn.recv(1, socket.MSG_PEEK)
    gone.set()


def _send(conn: socket.socket, message: dict) -> None:
    with contextlib.suppress(OSError):
        conn.sendall(json.dumps(message).encode() + b"\n")


def _receive(conn: socket.socket, timeout: float | None = None) -> dict | None:
    conn.settimeout(timeout)
    data = b""
    try:
        while not data.endswith(b"\n"):
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
    except OSError:
        return None
    return json.loads(data)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return True  # nothing to watch
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m flopmetrics.jobs.worker", description=__doc__)
    ap.add_argument("socket")
    ap.add_argument("--watch", type=int, default=0, help="leave when this process ends")
    ap.add_argument("--idle-s", type=float, default=IDLE_S, help="leave after this long idle")
    ap.add_argument("--device-file", type=Path, help="where this worker names itself the GPU's")
    args = ap.parse_args(argv)
    # the imports' objects (torch, pandas) live as long as the worker: a full collection inside
    # a configuration would scan them all again (about 0.1 s), so they leave the collector
    gc.freeze()
    server = unix.listen(Path(args.socket))
    server.settimeout(1.0)
    worker = Worker(args.socket, args.device_file)
    last = time.monotonic()
    print(f"worker {os.getpid()} serving {args.socket}, watching {args.watch}", flush=True)
    try:
        while True:
            if not _alive(args.watch):
                print(f"leaving: the watched process {args.watch} ended", flush=True)
                break
            if time.monotonic() - last >= args.idle_s:
                print(f"leaving: idle for {args.idle_s:g} s", flush=True)
                break
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                if not worker.serve(conn):
                    print("leaving: asked to, or the state after a request is unknown", flush=True)
                    break
            last = time.monotonic()
    finally:
        server.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(args.socket)
        worker.close()
    # a clean exit: its log (kept where a worker died, for its jobs' errors to name) goes too
    with contextlib.suppress(FileNotFoundError):
        os.unlink(Path(args.socket).with_suffix(".log"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
