"""Parse-time checks of the committed reference folders a config names (``reference.dirs``):
which per-job files they hold, that every one is a flopmetrics table, and the sequence lengths
they hold (a figure may show only a length measured)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from ..analysis.merge import missing_columns
from .checks import fail


def reference_files(
    dirs: list[str],
    locate=lambda d: d,
    results: str = "results",
    kind: str = "raw",
    key: str = "reference.dirs",
    experiments: tuple[str, ...] | None = None,
) -> list[str]:
    """Per-job parquet files under the configured reference folders (``raw/**/*.parquet``; with
    ``kind="ranks"`` the per-rank tables of distributed jobs, ``ranks/**/*.parquet``, which a
    folder need not have); with ``experiments``, only those below ``<kind>/<experiment>/``.
    A folder listed twice, folders that hold one another, and the results folder itself are
    refused: their rows would be merged twice (``locate`` finds a configured path)."""

    out, seen = [], {}
    results_dir = Path(results).resolve()
    for i, d in enumerate(dirs):
        name, where = f"{key}[{i}]", Path(locate(d)).resolve()
        if where == results_dir or results_dir in where.parents or where in results_dir.parents:
            fail(
                name,
                f"{d!r} is (or holds, or lies in) this run's results folder: its rows are merged "
                "as "
                "measured already; merging them as reference too would count each twice",
            )
        for j, other in seen.items():
            if where == other or other in where.parents or where in other.parents:
                fail(
                    name,
                    f"{d!r} overlaps {key}[{j}] ({dirs[j]!r}): rows would be merged twice",
                )
        seen[i] = where
        found = sorted(str(p) for p in where.glob(f"{kind}/**/*.parquet"))
        if not found and kind == "raw":
            fail(name, f"no raw/**/*.parquet under {d!r} (looked in {where})")
        if experiments is not None:
            below = [where / kind / e for e in experiments]
            found = [f for f in found if any(b in Path(f).parents for b in below)]
        out += found
    return out


def reference_lengths(files: list[str]) -> set[int]:
    """Sequence lengths present in the reference files (their seq_len column alone is read).
    A file that is no flopmetrics per-job table is refused here, before anything runs."""

    lengths = set()
    for f in files:
        try:
            names = pq.read_schema(f).names
        except Exception as err:  # pyarrow raises several kinds for a file that is not parquet
            fail(
                "reference.dirs", f"{f}: not a readable parquet file ({type(err).__name__}: {err})"
            )
        missing = missing_columns(names)
        if missing:
            fail(
                "reference.dirs",
                f"{f}: not a flopmetrics per-job table: columns {missing} are missing",
            )
        if "seq_len" in names:
            lengths |= {
                int(v)
                for v in pq.read_table(f, columns=["seq_len"]).column(0).to_pylist()
                if v == v
            }
    return lengths


def check_figure_lengths(config: dict, reference_lengths: set[int]) -> None:
    """A sequence length a figure is asked to show must have been measured (or be in the sweep)."""
    seq = config["figures"]["energy_efficiency"]["seq_len"]
    known = set(config["llm"]["seq_len"] if config["llm"]["targets"] else []) | set(
        reference_lengths
    )
    if seq is not None and seq not in known:
        fail(
            "figures.energy_efficiency.seq_len",
            f"{seq} was never measured: the sweep and the reference data "
            f"have {sorted(known)} (or null for all)",
        )
