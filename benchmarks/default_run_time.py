"""Wall time of the embedded default pipeline from a clean tree (target: <= 60 s on 2 cores).

Clones the repository's HEAD into a scratch folder and runs ``snakemake -c CORES`` there RUNS
times, removing every output (results/, logs/, .snakemake/) before each run; prints each run's
wall time, the median, and the time Snakemake needs to start and build the DAG alone
(``snakemake -n``), which includes loading the installed executor plugins.

    python benchmarks/default_run_time.py --cores 2 --runs 3
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rev", default="HEAD", help="the revision to time (default HEAD)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        tree = Path(scratch) / "flopmetrics"
        subprocess.run(["git", "clone", "-q", str(REPO), str(tree)], check=True)
        subprocess.run(["git", "-C", str(tree), "checkout", "-q", args.rev], check=True)
        startup = timed(["snakemake", "-n", "-q", "-c", str(args.cores)], tree)
        walls = []
        for i in range(args.runs):
            for out in ("results", "logs", ".snakemake"):
                shutil.rmtree(tree / out, ignore_errors=True)
            walls.append(timed(["snakemake", "-c", str(args.cores)], tree))
            print(f"run {i + 1}: {walls[-1]:.1f} s", flush=True)
    print(
        f"median of {args.runs}: {statistics.median(walls):.1f} s on {args.cores} cores; "
        f"snakemake start and DAG alone (-n): {startup:.1f} s"
    )


if __name__ == "__main__":
    main()
