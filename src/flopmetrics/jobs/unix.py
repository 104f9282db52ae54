"""Unix sockets at paths of any length.

A socket's address holds at most 107 bytes on Linux (``sun_path``), and a worker's folder may be
deep (a cluster's scratch, pytest's temporary folders, a long ``FLOPMETRICS_WORKER_DIR``). A path
too long is reached through an open descriptor of its folder, ``/proc/self/fd/N/NAME``, which
names the same file and stays short.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

SUN_PATH_BYTES = 107  # sun_path's 108 bytes, less the closing NUL


@contextlib.contextmanager
def address(path: Path):
    """A name of ``path`` that fits a socket address, valid inside the ``with``."""
    if len(os.fsencode(str(path))) <= SUN_PATH_BYTES:
        yield str(path)
        return
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{folder}/{path.name}"
    finally:
        os.close(folder)


def connect(path: Path) -> socket.socket | None:
    """A connection to the socket at ``path``, or None where nothing listens there."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with address(path) as name:
            conn.connect(name)
    except OSError:
        conn.close()
        return None
    return conn


def listen(path: Path, backlog: int = 64) -> socket.socket:
    """A socket bound at ``path`` and listening."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with address(path) as name:
        server.bind(name)
    server.listen(backlog)
    return server
