"""Library edits make the right things stale: in a copy of the tree (its own git repository, its
package first on the path), a plot-function edit reruns only figures, a measuring-module edit
reruns no profiling job, and the revisions listing names the rows measured before it."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, SMALL_CONFIG, snakemake_command

pytestmark = pytest.mark.e2e


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """A copy of the tracked tree as a fresh git repository, with the small MLP config run."""
    root = tmp_path_factory.mktemp("tree")
    for rel in git(REPO, "ls-files", "--cached", "--others", "--exclude-standard").splitlines():
        if not (REPO / rel).is_file():
            continue
        if rel.startswith("resources/reference/") or rel == "config/config.yaml":
            continue  # the test's own config alone, as in conftest's Workflow; keeps the copy small
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, root / rel)
    git(root, "init", "-q")
    git(root, "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A")
    git(root, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "copy")
    cfg = copy.deepcopy(SMALL_CONFIG)
    (root / "test_config.yaml").write_text(yaml.safe_dump(cfg))
    run(root)
    return root


def env(root: Path) -> dict:
    e = {k: v for k, v in os.environ.items() if k != "FLOPMETRICS_GIT_REVISION"}
    e["PYTHONPATH"] = str(root / "src")  # the copy's package, not the installed one
    return e


def run(root: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = snakemake_command(root, root, root / "test_config.yaml", *args)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env(root), cwd=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def scheduled(root: Path) -> dict[str, int]:
    out = run(root, "--dry-run").stdout
    if "Nothing to be done" in out:
        return {}
    counts = {}
    for line in out.split("Job stats:", 1)[1].splitlines()[3:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        counts[parts[0]] = int(parts[1])
    return counts


def append_comment(path: Path) -> None:
    path.write_text(path.read_text() + "\n# edited by a test\n")


def test_plot_function_edit_makes_only_figures_stale(tree):
    assert scheduled(tree) == {}
    append_comment(tree / "src/flopmetrics/figures/mlp.py")
    assert scheduled(tree) == {
        "fig_mlp_flops_vs_d": 1,
        "fig_mlp_pct_diff_heatmap": 2,
        "fig_mlp_throughput_vs_intensity": 1,
        "all": 1,
        "total": 5,
    }
    run(tree)
    append_comment(tree / "src/flopmetrics/analysis/calibration.py")
    assert scheduled(tree) == {
        "calibrate": 1,
        "co2e": 1,
        "fig_calibration_parity": 1,
        "fig_co2e": 1,
        "all": 1,
        "total": 5,
    }
    run(tree)


def test_measuring_code_edit_reruns_no_job_and_the_listing_names_the_rows(tree):
    listing = [sys.executable, "-m", "flopmetrics.pipeline.revisions", "results/raw"]
    before = subprocess.run(
        listing, capture_output=True, text=True, env=env(tree), cwd=tree, check=True
    ).stdout
    assert "measured with the measuring code as it is now" in before
    measured_at = git(tree, "rev-parse", "HEAD").strip()
    append_comment(tree / "src/flopmetrics/energy/windows.py")
    git(
        tree,
        "-c",
        "user.email=t@t",
        "-c",
        "user.name=t",
        "commit",
        "-qam",
        "edit a measuring module",
    )
    assert scheduled(tree) == {}  # expensive measurements are not redone for a code edit
    out = subprocess.run(
        listing, capture_output=True, text=True, env=env(tree), cwd=tree, check=True
    ).stdout
    lines = [line for line in out.splitlines() if line.startswith("results/raw/")]
    assert len(lines) == 4 and all(measured_at in line for line in lines), out
    assert all("src/flopmetrics/energy/windows.py" in line for line in lines)
    assert out.startswith("16 rows in 4 files")
