"""Which measured rows were made with measuring code that has changed since.

Profiling jobs are expensive, so editing the library does not rerun them (the cheap stages do
rerun: :mod:`flopmetrics.pipeline.code`). Each row records the ``git_revision`` it was measured
with; this lists every per-job file whose revision differs from the working tree in any file the
measurement runs (``flopmetrics.jobs.run`` and everything it imports), and names those files::

    python -m flopmetrics.pipeline.revisions [PATH ...]      # default: results/raw

Rerun a listed job by deleting its parquet (or ``snakemake -c all --forcerun profile_mlp``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

from .code import ROOT, sources

MEASURING_MODULE = "flopmetrics.jobs.run"


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=60
    )


def repository() -> Path:
    """The git checkout that holds this package's source."""
    proc = _git(ROOT, "rev-parse", "--show-toplevel")
    if proc.returncode != 0:
        raise RuntimeError(
            f"flopmetrics at {ROOT} is not in a git checkout: cannot compare revisions"
        )
    return Path(proc.stdout.strip())


def changed_since(revision: str, repo: Path) -> list[str] | None:
    """Measuring files that differ between ``revision`` and the working tree (None: revision
    unknown to this repository)."""
    rev = revision.removesuffix("-dirty")
    if not rev or _git(repo, "cat-file", "-e", f"{rev}^{{commit}}").returncode != 0:
        return None
    files = [str(Path(f).relative_to(repo)) for f in sources(MEASURING_MODULE)]
    proc = _git(repo, "diff", "--name-only", rev, "--", *files)
    changed = set(proc.stdout.split())
    # a file the revision did not have at all (untracked now, say) is new measuring code too
    had = set(_git(repo, "ls-tree", "-r", "--name-only", rev, "--", *files).stdout.split())
    return sorted(changed | (set(files) - had))


def older_rows(paths: list[str | Path]) -> pd.DataFrame:
    """One line per (per-job file, revision) measured with code that changed since."""
    repo = repository()
    files = []
    for p in map(Path, paths):
        files += sorted(p.rglob("*.parquet")) if p.is_dir() else [p]
    cache: dict[str, list[str] | None] = {}
    out = []
    for f in files:
        df = pd.read_parquet(f)
        if "git_revision" not in df:
            out.append(
                {
                    "file": str(f),
                    "rows": len(df),
                    "git_revision": "",
                    "changed": "no git_revision column",
                }
            )
            continue
        for rev, g in df.groupby(df["git_revision"].astype(str)):
            if rev not in cache:
                cache[rev] = changed_since(rev, repo)
            changed = cache[rev]
            if changed == []:
                continue
            out.append(
                {
                    "file": str(f),
                    "rows": len(g),
                    "git_revision": rev,
                    "changed": "revision unknown to this repository"
                    if changed is None
                    else " ".join(changed),
                }
            )
    return pd.DataFrame(out, columns=["file", "rows", "git_revision", "changed"])


def main(argv: list[str] | None = None) -> int:
    args = (sys.argv[1:] if argv is None else argv) or ["results/raw"]
    table = older_rows(args)
    if table.empty:
        print("every row was measured with the measuring code as it is now")
        return 0
    print(
        f"{int(table['rows'].sum())} rows in {table['file'].nunique()} files were measured with "
        "measuring code "
        "that has changed since:"
    )
    for r in table.itertuples():
        print(f"{r.file}\t{r.rows} rows\t{r.git_revision}\t{r.changed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
