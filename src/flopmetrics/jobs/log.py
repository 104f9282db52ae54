"""Helpers for workflow scripts: send a job's stdout/stderr to its Snakemake log file."""

from __future__ import annotations

import contextlib
from pathlib import Path


@contextlib.contextmanager
def logged(log_path: str):
    """Redirect stdout and stderr into ``log_path`` (line-buffered, so progress shows live)."""
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", buffering=1) as fh, contextlib.redirect_stdout(fh), contextlib.redirect_stderr(fh):
        try:
            yield
        except BaseException:
            import traceback

            traceback.print_exc(file=fh)
            raise
