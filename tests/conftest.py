"""Shared fixtures: the repository root, the thesis data beside the clone, and a helper
that runs the real Snakemake workflow in a scratch directory."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
THESIS = REPO.parent / "shared" / "thesis"


@pytest.fixture(scope="session")
def thesis_dir() -> Path:
    """``../shared/thesis``; skipped where absent, except in CI, where its absence fails."""
    if not THESIS.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"thesis data missing at {THESIS}: CI must have ../shared beside the clone")
        pytest.skip(f"thesis data not found at {THESIS}")
    return THESIS


@pytest.fixture(scope="session")
def flops_cache(tmp_path_factory) -> Path:
    """A cache of derived facts (operation streams, FLOP counts) apart from the user's, for the
    tests that set it: shared by the session, so that a stream many tests price is recorded
    once, not once per test."""
    return tmp_path_factory.mktemp("flops_cache")


SMALL_CONFIG = {
    "execution": {"check_devices": True},
    "mlp": {
        "targets": ["cpu"],
        "precisions": ["fp32"],
        "n": [2],
        "d": [16, 32],
        "m": [4, 8],
        "repeats": 2,
        "min_window_s": 0.01,
        "warmup_iterations": 1,
        "seed": 0,
        "profiler_flops": False,
    },
    # the other experiments are off and no reference data is merged: these tests drive the
    # MLP part alone (with -d <scratch dir>, config/config.yaml is not read; keys not given
    # here take the schema's defaults)
    "llm": {"targets": []},
    "matmul": {"targets": []},
    "reference": {"dirs": []},
    "calibration": {"card_spread_dirs": []},
    "figures": {
        "power_trace": {"trace": None},
        "mlp_pct_diff_heatmap": {"cmap": "vlag", "annotate": True, "dpi": 60},
        "mlp_flops_vs_d": {"n": 2, "m": 8, "logy": True, "dpi": 60},
        "mlp_throughput_vs_intensity": {"logx": True, "logy": True, "dpi": 60},
    },
}


def snakemake_command(tree: Path, workdir: Path, configfile: Path, *args: str) -> list[str]:
    """The real snakemake CLI on ``tree``'s Snakefile, in ``workdir``, on 2 cores."""
    return [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(tree / "Snakefile"),
        "-d",
        str(workdir),
        "--configfile",
        str(configfile),
        "--cores",
        "2",
        *args,
    ]


class Workflow:
    """A scratch working directory with its own config, driven by the real snakemake CLI."""

    def __init__(self, workdir: Path, config: dict):
        self.workdir = workdir
        self.config_path = workdir / "config.yaml"
        self.write_config(config)

    def write_config(self, config: dict) -> None:
        self.config = config
        self.config_path.write_text(yaml.safe_dump(config))

    def command(self, *args: str) -> list[str]:
        return snakemake_command(REPO, self.workdir, self.config_path, *args)

    def run(
        self, *args: str, check: bool = True, timeout: float = 600
    ) -> subprocess.CompletedProcess:
        proc = subprocess.run(self.command(*args), capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"snakemake {' '.join(args)} failed "
                f"({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def scheduled(self, *args: str) -> dict[str, int]:
        """Rule -> job count that a dry run would execute ({} when nothing is to do)."""
        proc = self.run("--dry-run", *args)
        out = proc.stdout + proc.stderr
        if "Nothing to be done" in out:
            return {}
        table = out.split("Job stats:", 1)[1]
        counts = {}
        for line in table.splitlines()[3:]:
            match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
            if not match:
                break
            counts[match.group(1)] = int(match.group(2))
        return counts


@pytest.fixture
def small_config() -> dict:
    import copy

    return copy.deepcopy(SMALL_CONFIG)


@pytest.fixture
def workflow(tmp_path, small_config) -> Workflow:
    return Workflow(tmp_path, small_config)


def job_spec(
    experiment: str,
    workload: dict,
    target: str = "cpu",
    precision: str = "fp32",
    measure=None,
    energy=None,
):
    """A JobSpec in the one shape the workflow builds (flopmetrics.jobs.spec), for unit tests."""
    from flopmetrics.jobs.spec import JobSpec

    return JobSpec.from_params(
        {
            "experiment": experiment,
            "target": target,
            "precision": precision,
            "workload": workload,
            "measure": {
                "repeats": 2,
                "min_repeats": 2,
                "target_rse": 0.0,
                "min_window_s": 0.02,
                "warmup_iterations": 1,
                "seed": 0,
                "profiler_flops": False,
                "launch": "eager",
                **(measure or {}),
            },
            "energy": {
                "meter": "auto",
                "sampler_hz": 50,
                "guard_s": 0.3,
                "idle_baseline_s": 0.0,
                **(energy or {}),
            },
        }
    )


def pytest_terminal_summary(terminalreporter):
    """Say loudly which groups of tests were skipped and why (the thesis data, the Slurm
    cluster, Chromium, a GPU), so that a green run on an outside machine is not mistaken for
    the whole suite."""
    skipped = terminalreporter.stats.get("skipped", [])
    reasons: dict[str, int] = {}
    for report in skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    if not reasons:
        return
    terminalreporter.section("skipped groups: these tests did not run here", sep="!")
    for reason, n in sorted(reasons.items(), key=lambda item: -item[1]):
        terminalreporter.line(f"{n:4d} skipped: {reason}")


def pytest_collection_modifyitems(items):
    """The files of the longest tests first (real Slurm, then real Snakemake runs), each file's
    tests in their own order: the README runs the suite on two workers a file at a time
    (``-n 2 --dist loadfile``), and a long file started last leaves one worker alone at the end."""
    files: dict = {}
    for item in items:
        files.setdefault(item.path, []).append(item)

    def first(tests):
        marks = {m.name for t in tests for m in t.iter_markers()}
        return ("slurm" not in marks, "e2e" not in marks)

    items[:] = [t for tests in sorted(files.values(), key=first) for t in tests]
