"""Helpers for workflow scripts: send a job's stdout/stderr to its Snakemake log file.

Redirected at the file-descriptor level, so what C code and child processes write (CUDA,
``torch.profiler``'s tracing lines, ncu) lands in the log too, never on the console; lines
written from Python carry a timestamp.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import time
import traceback
from pathlib import Path


class _Stamped:
    """A text stream that prefixes every line with the wall-clock time.

    It writes to file descriptor 2 through a stream that never closes: a logging handler that
    captured ``sys.stderr`` during one job (transformers' does) then writes into whichever log
    the descriptor points at later, the next job's included, instead of a closed file.
    """

    def __init__(self):
        self._fh = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115 (lives as long as the process)
        self._at_line_start = True

    def write(self, text: str) -> int:
        for part in text.splitlines(keepends=True):
            if self._at_line_start:
                self._fh.write(time.strftime("[%H:%M:%S] "))
            self._fh.write(part)
            self._at_line_start = part.endswith("\n")
        self._fh.flush()
        return len(text)

    def flush(self) -> None:
        self._fh.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._fh.fileno()


@functools.cache
def _stamped() -> _Stamped:
    """The process's one stamped stream, made on first use."""
    return _Stamped()


@contextlib.contextmanager
def logged(log_path: str):
    """Send everything this process (and its children) writes to stdout and stderr into
    ``log_path`` (line-buffered, so progress shows live; Python's lines timestamped)."""
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", buffering=1) as fh:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        saved = {fd: os.dup(fd) for fd in (1, 2)}
        stamped = _stamped()
        try:
            for fd in (1, 2):
                os.dup2(fh.fileno(), fd)
            with contextlib.redirect_stdout(stamped), contextlib.redirect_stderr(stamped):
                try:
                    yield
                except BaseException:
                    traceback.print_exc(file=stamped)
                    raise
        finally:
            stamped.flush()
            fh.flush()
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
