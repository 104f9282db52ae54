"""Faults that once stopped or misled a run, driven end to end through Snakemake: a
configuration that does not fit, and a per-configuration file made by another configuration."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from flopmetrics.contracts.identity import config_hash

pytestmark = pytest.mark.e2e

TOO_BIG = 2_000_000  # an MLP width or matmul size whose weights need 16 TB: out of memory at once


@pytest.fixture(scope="module")
def oom_run(tmp_path_factory, request):
    """One run of an MLP and a matmul sweep, each with one configuration that does not fit."""
    from conftest import SMALL_CONFIG, Workflow

    config = json.loads(json.dumps(SMALL_CONFIG))
    config["mlp"].update(n=[1], d=[16, TOO_BIG], m=[4])
    config["figures"]["mlp_flops_vs_d"].update(n=1, m=4)
    config["matmul"] = {
        "targets": ["cpu"],
        "precisions": ["fp32"],
        "sizes": [64, TOO_BIG],
        "repeats": 2,
        "min_window_s": 0.01,
    }
    wf = Workflow(tmp_path_factory.mktemp("oom"), config)
    proc = wf.run("--cores", "1")  # one worker: the fitting configuration may follow the OOM
    return wf, proc


def test_a_configuration_that_does_not_fit_is_a_row_and_the_sweep_goes_on(oom_run):
    wf, _ = oom_run
    mlp = pd.read_parquet(wf.workdir / "results/merged/mlp.parquet")
    energy = pd.read_parquet(wf.workdir / "results/merged/energy.parquet")
    for table, axis, passes in (
        (mlp, "d", {"forward", "forward_train", "forward_backward"}),
        (energy, "size", {"forward"}),
    ):
        oom = table[table["status"] == "oom"]
        assert set(oom[axis]) == {TOO_BIG} and set(oom["pass"]) == passes
        identity = ["experiment", "target", "precision", axis, "config_hash"]
        assert oom[identity].notna().all().all() and not oom["gates_passed"].any()
        assert oom["error"].str.contains("can't allocate memory").all()
        fitted = table[table[axis] != TOO_BIG]
        assert (fitted["status"] == "ok").all() and fitted["flops_counted"].gt(0).all()
    # the figures leave the rows out and say so; the report's coverage table counts them
    log = (wf.workdir / "logs/figures/mlp/flops_vs_d.log").read_text()
    assert "not drawn: 3 rows of 1 configurations that did not fit" in log
    covered = pd.read_csv(wf.workdir / "results/merged/coverage.csv").set_index("table")
    for table in ("mlp", "energy"):
        row = covered.loc[table]
        assert (row["configurations"], row["out_of_memory"], row["passed"]) == (2, 1, 1)


def test_a_file_from_another_configuration_is_refused_by_the_merge(oom_run, tmp_path):
    wf, _ = oom_run
    from conftest import Workflow

    shutil.copytree(wf.workdir, tmp_path / "copy")
    copy = Workflow(tmp_path / "copy", wf.config)
    # a file measured with another window length, copied over this run's (as an rsync would)
    path = copy.workdir / "results/raw/mlp/cpu/fp32/n1_d16_m4.parquet"
    rows = pd.read_parquet(path)
    other = json.loads(rows["config_json"].iloc[0])
    other["measure"]["min_window_s"] = 1.5
    rows["config_json"] = json.dumps(other, sort_keys=True)
    rows["config_hash"] = config_hash(other)
    rows.to_parquet(path)
    proc = copy.run("--cores", "1", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "results/raw/mlp/cpu/fp32/n1_d16_m4.parquet: measured by another configuration" in out
    assert "measure.min_window_s: 1.5 in the file, 0.01 configured" in out


def test_a_reference_file_is_judged_by_the_configuration_its_rows_record(tmp_path):
    from flopmetrics.analysis.merge import check_configuration
    from flopmetrics.contracts.errors import MergeError

    recorded = {"experiment": "mlp", "measure": {"min_window_s": 1.5}}
    rows = pd.DataFrame(
        {"config_json": [json.dumps(recorded)] * 2, "config_hash": [config_hash(recorded)] * 2}
    )
    path = tmp_path / "ref/raw/mlp/h100/fp32/n4_d64_m8.parquet"
    check_configuration(rows, path)  # its own configuration, whatever this run's is
    rows["config_hash"] = "0" * 16
    with pytest.raises(MergeError, match="edited after they were measured"):
        check_configuration(rows, path)


def _git(root, *args):
    import subprocess

    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def test_a_rows_revision_is_the_codes_and_says_whether_it_was_verified(tmp_path, monkeypatch):
    from flopmetrics.jobs.provenance import git_revision

    (tmp_path / "src").mkdir()
    (tmp_path / "src/a.py").write_text("x = 1\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "a")
    monkeypatch.setenv("FLOPMETRICS_GIT_REVISION", "not-a-commit")
    sha, verified = git_revision(tmp_path / "src")
    assert verified and len(sha) == 40 and not sha.endswith("-dirty")  # the variable is ignored
    (tmp_path / "notes.txt").write_text("not code\n")
    assert git_revision(tmp_path / "src") == (sha, True)
    (tmp_path / "src/b.py").write_text("y = 2\n")  # a new, uncommitted module
    assert git_revision(tmp_path / "src") == (f"{sha}-dirty", True)
    # a copy without .git: the revision as given, marked unverified
    copy = tmp_path.parent / f"{tmp_path.name}-copy"
    shutil.copytree(tmp_path / "src", copy)
    assert git_revision(copy) == ("not-a-commit", False)
    monkeypatch.delenv("FLOPMETRICS_GIT_REVISION")
    assert git_revision(copy) == ("unknown", False)


def test_a_rows_host_columns_are_the_hosts():
    import os

    import torch

    from flopmetrics.jobs.provenance import collect

    row = collect("cpu", {"experiment": "mlp"})
    assert row["host_cpus"] == os.cpu_count() and row["torch_threads"] == torch.get_num_threads()
    assert 1 <= row["cpus_available"] <= row["host_cpus"]
    assert row["git_revision_verified"] in (True, False) and "cpu_threads" not in row


def test_an_energy_counter_that_fails_mid_job_fails_it_naming_the_sampler(monkeypatch):
    """The hardware edge faked (CPU CI): NVML's energy counter raises once measuring began. The
    job fails at once naming it, instead of running guard iterations until the counter steps
    again (for ever). tests/test_gpu_real.py does the same on a real GPU."""
    import time

    from conftest import job_spec
    from fake_nvml import FakeNvml

    from flopmetrics.contracts.errors import MeterError
    from flopmetrics.energy.counter import NvmlCounterMeter
    from flopmetrics.energy.nvml import NvmlGpu
    from flopmetrics.energy.sampler import PowerSampler
    from flopmetrics.energy.setup import MeterSetup
    from flopmetrics.jobs import run as job
    from flopmetrics.jobs import session

    fake = FakeNvml(idle_w=60.0, period_s=0.1)
    read, armed = fake.nvmlDeviceGetTotalEnergyConsumption, []

    def counter(handle):
        if armed:
            raise RuntimeError("NVML_ERROR_GPU_IS_LOST")
        return read(handle)

    fake.nvmlDeviceGetTotalEnergyConsumption = counter
    gpu = NvmlGpu(fake, None)
    sampler = PowerSampler(gpu, hz=100)
    setup = MeterSetup([NvmlCounterMeter(sampler), sampler], sampler, gpu, "nvml_counter", "ok")
    monkeypatch.setattr(session, "setup_meters", lambda device, settings, nvml=None: setup)
    real_idle = session.idle_baseline

    def idle(*args, **kwargs):
        out = real_idle(*args, **kwargs)
        armed.append(True)  # the counter is lost as the first pass is measured
        return out

    monkeypatch.setattr(session, "idle_baseline", idle)
    spec = job_spec(
        "mlp",
        {"n": 1, "d": 32, "m": 8},
        energy={"sampler_hz": 100, "guard_s": 0.15, "idle_baseline_s": 0.3},
    )
    t0 = time.perf_counter()
    with pytest.raises(
        MeterError, match="power sampler failed: RuntimeError: NVML_ERROR_GPU_IS_LOST"
    ):
        job.run(spec, progress=lambda m: None)
    assert time.perf_counter() - t0 < 30
