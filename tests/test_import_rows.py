"""benchmarks/import_rows.sh: a GPU campaign's archive becomes committed reference rows with
no machine's paths in them, and nothing already committed is overwritten."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

import pytest
from conftest import REPO

SCRIPT = REPO / "benchmarks" / "import_rows.sh"
HOST = "/gpu-host/repository"  # the GPU host's repository, as its Snakemake log names it
SITE = "/gpu-host/site"  # where its wheels were installed


def _archive(tmp: Path, command: str = f"{SITE}/snakemake/__main__.py") -> Path:
    """A campaign's OUT: results.tgz (rows, a trace, logs) and campaign.log beside it, Snakemake
    run as ``command``."""
    staged = tmp / "staged"
    files = {
        "results/raw/memory/h200/bf16/cat_mib256.parquet": "rows",
        "results/traces/memory/h200/bf16/cat_mib256.parquet": "trace",
        "results/raw/memory/h100/bf16/cat_mib256.parquet": "another card's rows",
        "logs/memory/h200/bf16/cat_mib256.log": f"worker in {HOST}/src/flopmetrics\n",
    }
    for name, text in files.items():
        (staged / name).parent.mkdir(parents=True, exist_ok=True)
        (staged / name).write_text(text)
    out = tmp / "out"
    out.mkdir()
    (out / "campaign.log").write_text(
        f"  Base directory: {HOST}\n  Command: {command} -c all\n"
        f"  Python: /gpu-host/venv/bin/python3 -m snakemake\n"
        f"  resources: tmpdir=/tmp\n"
        f"  /gpu-host/venv/lib/python3.12/site-packages/torch/profiler.py:224: UserWarning\n"
    )
    with tarfile.open(out / "results.tgz", "w:gz") as tar:
        for top in ("results", "logs"):
            tar.add(staged / top, arcname=top)
    return out / "results.tgz"


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True, check=False
    )


def test_rows_traces_and_logs_arrive_with_placeholders_for_the_host_paths(tmp_path):
    archive = _archive(tmp_path)
    done = _run(tmp_path, str(archive), "h200_calibration_memory", "memory/h200")
    assert done.returncode == 0, done.stderr
    dest = tmp_path / "resources/reference/h200_calibration_memory"
    got = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert got == [
        "logs/campaign.log",
        "logs/memory/h200/bf16/cat_mib256.log",
        "raw/memory/h200/bf16/cat_mib256.parquet",
        "traces/memory/h200/bf16/cat_mib256.parquet",
    ]  # the H100's rows, not asked for, stay out
    logs = "".join(p.read_text() for p in (dest / "logs").rglob("*.log"))
    assert "/gpu-host/" not in logs
    assert "<repository>/src/flopmetrics" in logs and "<site>/snakemake" in logs
    assert "Python: <python> -m snakemake" in logs
    assert "<site-packages>/torch/profiler.py:224" in logs


def test_snakemake_run_as_the_script_a_target_install_puts_in_bin_is_found_too(tmp_path):
    archive = _archive(tmp_path, command=f"{SITE}/bin/snakemake")
    assert _run(tmp_path, str(archive), "rows", "memory/h200").returncode == 0
    log = tmp_path / "resources/reference/rows/logs/campaign.log"
    assert "Command: <site>/bin/snakemake -c all" in log.read_text()


def test_a_second_import_overwrites_nothing(tmp_path):
    archive = _archive(tmp_path)
    assert _run(tmp_path, str(archive), "rows", "memory/h200").returncode == 0
    row = tmp_path / "resources/reference/rows/raw/memory/h200/bf16/cat_mib256.parquet"
    row.write_text("committed")
    again = _run(tmp_path, str(archive), "rows", "memory/h200", "memory/h100")
    assert again.returncode == 1 and "not overwritten" in again.stderr
    assert row.read_text() == "committed"
    assert not (tmp_path / "resources/reference/rows/raw/memory/h100").exists()  # all or nothing


@pytest.mark.parametrize("sub", ["memory/a100", "llm/h200/no-such-model"])
def test_a_subpath_the_archive_lacks_stops_the_import(tmp_path, sub):
    done = _run(tmp_path, str(_archive(tmp_path)), "rows", "memory/h200", sub)
    assert done.returncode == 1 and f"nothing below {sub}" in done.stderr
    assert not (tmp_path / "resources").exists()


def test_a_log_still_naming_a_machine_path_stops_the_import_before_anything_is_copied(tmp_path):
    archive = _archive(tmp_path)
    home = "/" + "home/someone/data"  # neither the host's repository nor its wheels
    (archive.parent / "campaign.log").write_text(f"  read {home}/x.parquet\n")
    done = _run(tmp_path, str(archive), "rows", "memory/h200")
    assert done.returncode == 1 and "absolute path remains in" in done.stderr
    assert not (tmp_path / "resources").exists()
    again = _run(tmp_path, str(archive), "rows", "memory/h200")  # a failed import blocks none
    assert again.returncode == 1 and "not overwritten" not in again.stderr
