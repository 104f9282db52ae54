"""Benchmark: `snakemake -n` on the thesis's full MLP grid x 4 precisions (5,120 profiling jobs).

Run from the repository root:  python benchmarks/dryrun_thesis_grid.py [--repeats 3]
Prints the wall time of each dry run and the job count Snakemake reported. Target: < 15 s.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config["mlp"].update(
        targets=["cpu"],
        precisions=["fp32", "tf32", "fp16", "bf16"],
        n=[2, 4, 8, 16, 32],
        d=list(range(128, 2049, 128)),
        m=list(range(16, 257, 16)),
    )
    config["figures"]["mlp_flops_vs_d"].update(n=None, m=None)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "grid.yaml"
        cfg.write_text(yaml.safe_dump(config))
        cmd = [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(REPO / "Snakefile"),
            "-d",
            tmp,
            "--configfile",
            str(cfg),
            "-n",
            "--quiet",
            "rules",
            "--cores",
            "2",
        ]
        for i in range(args.repeats):
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                print(proc.stdout, proc.stderr, file=sys.stderr)
                return 1
            jobs = re.search(r"^profile_mlp\s+(\d+)$", proc.stdout + proc.stderr, re.M)
            print(
                f"dry run {i + 1}: {wall:.2f} s, profile_mlp jobs: {jobs.group(1) if jobs else '?'}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
