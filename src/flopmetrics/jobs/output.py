"""Atomic output writing: a reader (or a resumed run) never sees a half-written file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    The rename is atomic on POSIX file systems. On any exception the temporary file is
    removed and ``path`` is left untouched (absent if it was absent); on success the leftovers
    of earlier, killed writes of ``path`` are removed.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; give the final file normal permissions
    began = tmp_path.stat().st_mtime
    try:
        yield tmp_path
        os.replace(tmp_path, target)
        _remove_leftovers(target, began)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def _remove_leftovers(target: Path, began: float) -> None:
    """Remove the temporary files of earlier writes of ``target`` that were killed before
    they could clean up (a ``kill -9``), once this write has succeeded."""
    for leftover in target.parent.glob(f".{target.name}.*.partial"):
        with contextlib.suppress(OSError):
            if leftover.stat().st_mtime < began:
                leftover.unlink()


def write_parquet(df: pd.DataFrame, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)


def write_csv(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """A table for a person (and Snakemake's report, which shows CSV tables), atomically."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")


def write_json(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """The table as a JSON list of records, written atomically."""
    with atomic_path(path) as tmp:
        df.to_json(tmp, orient="records", indent=1, date_format="iso", default_handler=str)


def write_text(text: str, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def save_figure(fig, path: str | os.PathLike, **kwargs) -> None:
    """Save a matplotlib figure atomically; the format follows ``path``'s suffix."""
    target = Path(path)
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format=target.suffix.lstrip(".") or "png", **kwargs)
