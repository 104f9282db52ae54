"""Benchmark: `snakemake -n` on MLP grids of 5,120 to 40,960 profiling jobs, beside a no-op rule.

The thesis's MLP grid (n 2..32, d 128..2048, m 16..256) x 4 precisions is 5,120 configurations;
the larger grids extend m in steps of 16 (10,240, 20,480, 40,960). For each size the pipeline's
dry run (profiling, merge, figures) is timed next to Snakemake's own time for a Snakefile of the
same shape: one no-op rule with the same wildcards and outputs (a table, a trace, a log) and one
rule gathering them. Targets (issue 29): 5,120 <= 8 s, 40,960 <= 30 s, median of the repeats,
on an idle 2-core machine.

Run from the repository root:  python benchmarks/dryrun_thesis_grid.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PRECISIONS = ["fp32", "tf32", "fp16", "bf16"]
N = [2, 4, 8, 16, 32]
D = list(range(128, 2049, 128))
M_STEPS = {5120: 16, 10240: 32, 20480: 64, 40960: 128}

NOOP = """\
rule all:
    input:
        expand("results/merged/{{precision}}.done", precision={precisions})

rule gather:
    input:
        lambda w: expand(
            "results/raw/mlp/cpu/{{precision}}/n{{n}}_d{{d}}_m{{m}}.parquet",
            precision=w.precision, n={n}, d={d}, m={m},
        ),
    output:
        "results/merged/{{precision}}.done",
    shell:
        "touch {{output}}"

rule profile:
    output:
        table="results/raw/mlp/{{target}}/{{precision}}/n{{n}}_d{{d}}_m{{m}}.parquet",
        trace="results/traces/mlp/{{target}}/{{precision}}/n{{n}}_d{{d}}_m{{m}}.parquet",
    log:
        "logs/mlp/{{target}}/{{precision}}/n{{n}}_d{{d}}_m{{m}}.log",
    shell:
        "touch {{output}} {{log}}"
"""


def m_values(size: int) -> list[int]:
    return list(range(16, 16 * M_STEPS[size] + 1, 16))


def pipeline_command(tmp: Path, size: int) -> list[str]:
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config["mlp"].update(targets=["cuda"], precisions=PRECISIONS, n=N, d=D, m=m_values(size))
    config["figures"]["mlp_flops_vs_d"].update(n=None, m=None)
    # tf32 is a GPU mode; a dry run plans GPU jobs on a machine without one.
    config["execution"]["check_devices"] = False
    cfg = tmp / f"grid{size}.yaml"
    cfg.write_text(yaml.safe_dump(config))
    snakefile, configfile = str(REPO / "Snakefile"), ["--configfile", str(cfg)]
    return _snakemake(snakefile, tmp / "pipeline", configfile)


def noop_command(tmp: Path, size: int) -> list[str]:
    snakefile = tmp / f"noop{size}.smk"
    snakefile.write_text(NOOP.format(precisions=PRECISIONS, n=N, d=D, m=m_values(size)))
    return _snakemake(str(snakefile), tmp / "noop", [])


def _snakemake(snakefile: str, workdir: Path, extra: list[str]) -> list[str]:
    workdir.mkdir(exist_ok=True)
    head = [sys.executable, "-m", "snakemake", "-s", snakefile, "-d", str(workdir)]
    return [*head, *extra, "-n", "--quiet", "rules", "--cores", "2"]


def timed(cmd: list[str]) -> tuple[float, int]:
    """A dry run's wall time and the number of profiling jobs it reported."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    jobs = re.search(r"^profile(?:_mlp)?\s+(\d+)$", proc.stdout + proc.stderr, re.M)
    return wall, int(jobs.group(1)) if jobs else -1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sizes", type=int, nargs="+", default=sorted(M_STEPS), choices=M_STEPS)
    args = ap.parse_args()
    print("| configurations | pipeline dry runs (s) | median | no-op rule dry runs (s) | median |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        for size in args.sizes:
            cells = []
            for command in (pipeline_command(tmp, size), noop_command(tmp, size)):
                runs = [timed(command) for _ in range(args.repeats)]
                if any(jobs != size for _, jobs in runs):
                    raise SystemExit(f"expected {size} profiling jobs, Snakemake reported {runs}")
                walls = [wall for wall, _ in runs]
                cells += [", ".join(f"{w:.1f}" for w in walls), f"{statistics.median(walls):.1f}"]
            print(f"| {size:,} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
