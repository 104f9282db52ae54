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
    """A table for a person, atomically (the report shows its HTML twin: :func:`write_html`)."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")


HTML = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; font-size: 13px; margin: 1em; }}
table {{ border-collapse: collapse; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: right; }}
th {{ background: #f3f3f3; position: sticky; top: 0; }}
td:first-child, th:first-child {{ text-align: left; }}
</style></head>
<body><h3>{title}</h3>
<p>{rows} rows; every column of the CSV beside it ({csv}){dropped}.</p>
{table}
</body></html>
"""


def write_html(
    df: pd.DataFrame, path: str | os.PathLike, title: str, drop: tuple[str, ...] = ()
) -> None:
    """The table as an HTML page, atomically: Snakemake's report shows an HTML result in the
    page, where a CSV would only be a download. ``drop``: columns too long to read there."""
    shown = df.drop(columns=[c for c in drop if c in df.columns])
    table = shown.to_html(
        index=False, border=0, na_rep="", float_format=lambda v: f"{v:.4g}", escape=True
    )
    gone = f"; not shown here: {', '.join(drop)}" if drop else ""
    page = HTML.format(
        title=title,
        rows=len(df),
        csv=Path(path).with_suffix(".csv").name,
        dropped=gone,
        table=table,
    )
    write_text(page, path)


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
