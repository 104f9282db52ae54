"""End-to-end: the real Snakemake CLI on the real workflow, in a scratch directory."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import time

import pandas as pd
import pytest
from conftest import REPO as REPO_ROOT

pytestmark = pytest.mark.e2e


def test_full_run_outputs_and_rerun_semantics(workflow):
    assert workflow.scheduled()["profile_mlp"] == 4  # one job per configuration
    workflow.run()
    wd = workflow.workdir
    merged = pd.read_parquet(wd / "results/merged/mlp.parquet")
    assert len(merged) == 4 * 4  # 4 jobs x 4 passes
    assert set(merged["pass"]) == {"forward", "forward_train", "forward_backward", "backward"}
    assert (merged["flops_counted"] == merged["flops_analytic_gemm"]).all()
    assert (merged["time_per_iter_s"] > 0).all()
    for fig in (
        "pct_diff_heatmap_forward",
        "pct_diff_heatmap_backward",
        "flops_vs_d",
        "throughput_vs_intensity",
    ):
        path = wd / f"results/figures/mlp/{fig}.png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", fig

    # nothing changed -> nothing to do
    assert workflow.scheduled() == {}

    # one figure's style -> only that figure
    cfg = copy.deepcopy(workflow.config)
    cfg["figures"]["mlp_flops_vs_d"]["dpi"] = 70
    workflow.write_config(cfg)
    assert workflow.scheduled() == {"fig_mlp_flops_vs_d": 1, "all": 1, "total": 2}
    workflow.run()

    # one more m -> its two configurations alone, then the merge and the figures that read it;
    # the files measured before are neither rewritten nor touched
    before = (wd / "results/raw/mlp/cpu/fp32/n2_d16_m4.parquet").stat().st_mtime_ns
    cfg["mlp"]["m"] = [4, 8, 12]
    workflow.write_config(cfg)
    assert workflow.scheduled() == {
        "profile_mlp": 2,
        "merge_mlp": 1,
        "coverage": 1,
        "fig_mlp_flops_vs_d": 1,
        "fig_mlp_pct_diff_heatmap": 2,
        "fig_mlp_throughput_vs_intensity": 1,
        "all": 1,
        "total": 9,
    }
    workflow.run()
    assert (wd / "results/raw/mlp/cpu/fp32/n2_d16_m4.parquet").stat().st_mtime_ns == before
    assert len(pd.read_parquet(wd / "results/merged/mlp.parquet")) == 6 * 4
    assert (wd / "logs/mlp/cpu/fp32/n2_d32_m12.log").exists()

    # one more precision -> only its configurations
    cfg["mlp"]["precisions"] = ["fp32", "bf16"]
    workflow.write_config(cfg)
    assert workflow.scheduled()["profile_mlp"] == 6

    # a value removed -> nothing measured, only the merge and its figures
    cfg["mlp"].update(precisions=["fp32"], m=[4, 8])
    workflow.write_config(cfg)
    assert "profile_mlp" not in workflow.scheduled()

    # a measurement setting (repeats) -> every configuration it affects reruns
    cfg["mlp"]["repeats"] = 3
    workflow.write_config(cfg)
    assert workflow.scheduled()["profile_mlp"] == 4

    # the report builds from the finished run
    cfg["mlp"]["repeats"] = 2
    workflow.write_config(cfg)
    workflow.run("--report", str(wd / "report.html"))
    html = (wd / "report.html").read_text(errors="replace")
    assert len(html) > 10_000 and "MLP FLOP validation" in html


@pytest.mark.parametrize(
    "mutate,expected",
    [
        (lambda c: c["mlp"].update(nn=[2]), "unknown config key mlp.nn"),
        (
            lambda c: c["mlp"].update(repeats="three"),
            "mlp.repeats: 'three' is not of type 'integer'",
        ),
        (lambda c: c["mlp"].update(d=[16, 0]), "mlp.d[1]: 0 is less than the minimum of 1"),
        (lambda c: c["mlp"].update(precisions=["fp64"]), "mlp.precisions[0]: 'fp64' is not one of"),
    ],
)
def test_bad_input_fails_before_any_job(workflow, mutate, expected):
    cfg = copy.deepcopy(workflow.config)
    mutate(cfg)
    workflow.write_config(cfg)
    proc = workflow.run(check=False)
    assert proc.returncode != 0
    assert expected in proc.stdout + proc.stderr
    assert not (workflow.workdir / "results").exists()


def test_cuda_requested_without_gpu(workflow):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    cfg = copy.deepcopy(workflow.config)
    cfg["mlp"]["targets"] = ["cuda"]
    workflow.write_config(cfg)
    proc = workflow.run(check=False)
    assert proc.returncode != 0
    assert "mlp.targets: 'cuda' requested but no CUDA GPU" in proc.stdout + proc.stderr
    assert not (workflow.workdir / "results").exists()
    # with the device check off (jobs run elsewhere) the DAG builds
    cfg["execution"]["check_devices"] = False
    workflow.write_config(cfg)
    assert workflow.scheduled()["profile_mlp"] == 4


def test_killed_run_leaves_no_partial_output_and_resumes(workflow):
    cfg = copy.deepcopy(workflow.config)
    cfg["mlp"].update(d=[16], m=[4, 8], min_window_s=1.0, repeats=3)
    cfg["figures"]["mlp_flops_vs_d"].update(n=None, m=None)
    workflow.write_config(cfg)
    wd = workflow.workdir
    log = wd / "logs/mlp/cpu/fp32/n2_d16_m4.log"
    proc = subprocess.Popen(
        workflow.command(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 120
        while "repeat 1/3" not in (log.read_text() if log.exists() else ""):
            assert time.time() < deadline, "profiling job never started measuring"
            assert proc.poll() is None, "snakemake ended before it could be killed"
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGKILL)  # like a power cut: no cleanup of any kind
    finally:
        proc.wait(timeout=60)
    raw = wd / "results/raw/mlp/cpu/fp32"
    # the measuring worker outlives the kill, notices its job gone and writes nothing
    time.sleep(3)
    assert not (raw / "n2_d16_m4.parquet").exists()
    assert not list(raw.glob(".*")) if raw.exists() else True  # no partial file either
    finished = {p.name: p.stat().st_mtime_ns for p in raw.glob("*.parquet")} if raw.exists() else {}
    # as README.md says: unlock, then rerun: only what is missing is measured
    workflow.run("--unlock")
    workflow.run("--rerun-incomplete")
    assert len(pd.read_parquet(wd / "results/raw/mlp/cpu/fp32/n2_d16_m4.parquet")) == 4
    for name, mtime in finished.items():
        assert (raw / name).stat().st_mtime_ns == mtime, name


@pytest.mark.parametrize(
    "mutate,expected",
    [
        (
            lambda c, d: c["llm"].update(targets=["cpu"], models=["llama-9b"]),
            "config error at llm.models[0]: unknown model preset 'llama-9b'",
        ),
        (
            lambda c, d: c["llm"].update(targets=["cpu"], models=[str(d / "config.json")]),
            "does not parse: line 2",
        ),
        (
            lambda c, d: c["llm"].update(targets=["x100"]),
            "config error at llm.targets[0]: no datasheet entry for GPU 'x100'",
        ),
        (
            lambda c, d: c["matmul"].update(targets=["cuda:0"]),
            "config error at matmul.targets: 'cuda:0' requested but no CUDA GPU",
        ),
        (
            lambda c, d: c.setdefault("co2e", {}).update(
                workloads=[
                    {
                        "name": "w",
                        "model": "llama-3.2-1b",
                        "tokens": 1e9,
                        "batch_size": 8,
                        "seq_len": 1024,
                        "target": "b200",
                        "precision": "bf16",
                    }
                ]
            ),
            "config error at co2e.workloads[0].target: no datasheet entry for GPU 'b200'",
        ),
        (
            lambda c, d: c["reference"].update(dirs=[str(d / "nothing")]),
            "config error at reference.dirs[0]: no raw/**/*.parquet",
        ),
    ],
)
def test_bad_energy_input_fails_before_any_job(workflow, mutate, expected):
    (workflow.workdir / "config.json").write_text('{"model_type": "llama",\n  "hidden_size": }\n')
    cfg = copy.deepcopy(workflow.config)
    mutate(cfg, workflow.workdir)
    workflow.write_config(cfg)
    proc = workflow.run(check=False)
    if "CUDA GPU" in expected:
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
    assert proc.returncode != 0
    assert expected in proc.stdout + proc.stderr
    assert not (workflow.workdir / "results").exists()


def test_thesis_import_audit_and_comparison_figure(workflow, thesis_dir):
    tree = thesis_dir / "architecture_tree"
    cfg = copy.deepcopy(workflow.config)
    cfg["thesis"] = {"architecture_dir": str(tree), "compare_gpu": "h100"}
    cfg["reference"] = {"dirs": ["resources/reference/h100"]}  # shipped with the workflow
    workflow.write_config(cfg)
    wd = workflow.workdir
    workflow.run(
        "results/thesis/audit.md",
        "results/thesis/audit.html",
        "results/figures/energy/thesis_vs_ours.png",
    )
    thesis = pd.read_parquet(wd / "results/merged/thesis.parquet")
    assert (thesis["source"] == "thesis").all() and len(
        thesis
    ) == 70 + 16  # optimized + baseline rows
    opt = thesis[(thesis["protocol"] == "optimized") & (thesis["pass"] == "forward")]
    assert (
        opt["impossible_every_variant"].sum() == 31
        and opt["impossible_consistent_variant"].sum() == 32
    )
    # the import log accounts for every file of the tree, one line each, and sums up
    log = (wd / "logs/merge/thesis.log").read_text()
    for path in tree.rglob("*"):
        if path.is_file():
            assert str(path.relative_to(tree.parent)) in log, path
    assert "total: 66 files, 80 records read, 44 imported, 36 duplicates, 0 rejected" in log
    audit = pd.read_parquet(wd / "results/thesis/audit.parquet")
    assert audit["rows"].sum() == len(thesis)
    assert (
        "| **optimized** | all | all | forward | 36 | 31 | 32 | 0 |"
        in (wd / "results/thesis/audit.md").read_text()
    )
    assert "<table" in (wd / "results/thesis/audit.html").read_text()
    assert (wd / "results/figures/energy/thesis_vs_ours.png").stat().st_size > 10_000


def test_local_gpu_jobs_never_overlap(workflow):
    """profiles/default gives GPU-measuring jobs one gpu_slot in all: with 2 cores, two jobs
    for GPU targets still run one after the other (run_on_cpu: this machine has no GPU)."""
    cfg = copy.deepcopy(workflow.config)
    cfg["execution"] = {"check_devices": True, "run_on_cpu": True}
    cfg["mlp"].update(targets=["h100", "a100"], d=[16], m=[4], min_window_s=0.3)
    cfg["figures"]["mlp_flops_vs_d"].update(n=None, m=None)
    workflow.write_config(cfg)
    wd = workflow.workdir
    workflow.run(
        "--workflow-profile", str(REPO_ROOT / "profiles/default"), "results/merged/mlp.parquet"
    )
    spans = []
    for target in ("h100", "a100"):
        row = pd.read_parquet(wd / f"results/raw/mlp/{target}/fp32/n2_d16_m4.parquet").iloc[0]
        spans.append((pd.Timestamp(row["timestamp_utc"]), pd.Timestamp(row["finished_utc"])))
    (s1, e1), (s2, e2) = sorted(spans)
    assert e1 <= s2, f"GPU jobs overlapped: {spans}"


def test_nsight_compute_jobs_one_per_gpu_target_and_precision(workflow):
    """On a machine without a GPU the jobs are only scheduled (a dry run); on the H100 the same
    capture code made resources/reference/h100/ncu."""
    cfg = copy.deepcopy(workflow.config)
    cfg["execution"] = {"check_devices": False}
    cfg["ncu"] = {"targets": ["h100", "cuda:0"], "precisions": ["bf16", "fp32"]}
    workflow.write_config(cfg)
    jobs = workflow.scheduled()
    assert jobs["profile_ncu"] == 4 and jobs["merge_ncu"] == 1
    assert jobs["fig_ncu_parity"] == 1 and jobs["fig_ncu_flops_by_class"] == 1
