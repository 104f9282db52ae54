"""The Slurm profile on a real Slurm cluster (tests/slurm/cluster.sh, started by .ci/run).

Jobs compute on the CPU (execution.run_on_cpu: CI has no GPU) but are dispatched exactly as on
a GPU cluster: each architecture's jobs must land in its partition with its typed gres, proven
by Slurm itself (scontrol) and by the environment each job recorded in its output.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys

import pandas as pd
import pytest
from conftest import REPO, Workflow

pytestmark = pytest.mark.slurm

SLURM_CONFIG = {
    "execution": {"check_devices": True, "run_on_cpu": True},
    "mlp": {
        "targets": ["h100", "a100"],
        "precisions": ["fp32"],
        "n": [2],
        "d": [16],
        "m": [4],
        "repeats": 2,
        "min_window_s": 0.01,
        "warmup_iterations": 1,
        "profiler_flops": False,
        "launch": "eager",
    },
    "llm": {"targets": []},
    "matmul": {
        "targets": ["h100", "a100"],
        "precisions": ["fp32"],
        "sizes": [64],
        "repeats": 2,
        "min_window_s": 0.01,
        "warmup_iterations": 1,
    },
    "reference": {"dirs": []},
    "slurm": {
        "gpu_request": "gres",
        "targets": {
            "h100": {"partition": "h100", "gpu_type": "h100"},
            "a100": {"partition": "a100", "gpu_type": "a100"},
            "l40s": {"partition": "l40s", "gpu_type": "l40s"},
        },
    },
    "figures": {"power_trace": {"trace": None}, "mlp_flops_vs_d": {"n": None, "m": None}},
}
# this cluster has no accounting daemon: poll with squeue, guess no account
CLUSTER_ARGS = (
    "--profile",
    str(REPO / "profiles/slurm"),
    "--slurm-status-command",
    "squeue",
    "--slurm-no-account",
    "--slurm-init-seconds-before-status-checks",
    "5",
)


@pytest.fixture(scope="module", autouse=True)
def cluster():
    up = (
        shutil.which("sinfo")
        and subprocess.run(["sinfo", "-h"], capture_output=True, timeout=20).returncode == 0
    )
    if not up:
        if os.environ.get("FLOPMETRICS_SLURM_REQUIRED"):
            pytest.fail("no Slurm cluster answers sinfo, but .ci/run started one")
        pytest.skip("no Slurm cluster (start one with: bash tests/slurm/cluster.sh up)")


class SlurmWorkflow(Workflow):
    def command(self, *args):
        # the cluster flags replace --cores; SIGINT (not SIGTERM) stops the Slurm plugin cleanly
        return [
            "timeout",
            "-s",
            "INT",
            "-k",
            "30",
            "240",
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(REPO / "Snakefile"),
            "-d",
            str(self.workdir),
            "--configfile",
            str(self.config_path),
            *CLUSTER_ARGS,
            *args,
        ]


def scontrol(job_id: str) -> dict:
    out = subprocess.run(
        ["scontrol", "show", "job", str(job_id)], capture_output=True, text=True, timeout=20
    ).stdout
    return dict(re.findall(r"(\w+)=(\S+)", out))


def test_each_architecture_lands_on_its_nodes(tmp_path):
    wf = SlurmWorkflow(tmp_path, copy.deepcopy(SLURM_CONFIG))
    dry = wf.run("--dry-run")
    text = dry.stdout + dry.stderr
    for arch in ("h100", "a100"):  # users check their mapping with a dry run
        assert f"slurm_partition={arch}" in text and f"gres=gpu:{arch}:1" in text

    wf.run()
    rows = pd.concat(
        pd.read_parquet(p) for p in sorted((tmp_path / "results/raw").glob("*/*/*/*.parquet"))
    )
    assert sorted(rows.drop_duplicates("slurm_job_id")["target"]) == [
        "a100",
        "a100",
        "h100",
        "h100",
    ]
    for _, r in rows.drop_duplicates("slurm_job_id").iterrows():
        job = scontrol(r["slurm_job_id"])  # Slurm's own record of the job
        assert job["Partition"] == r["target"], job
        assert job["TresPerNode"] == f"gres:gpu:{r['target']}:1", job
        assert job["JobState"] == "COMPLETED"
        # the job's own environment, recorded in its output
        assert r["slurm_partition"] == r["target"] and r["slurm_nodename"] == f"gpu-{r['target']}"
        assert r["cuda_visible_devices"] != ""  # Slurm handed the job one of its node's GPUs
    # merge, calibration and figures ran (locally) after the cluster jobs
    assert len(pd.read_parquet(tmp_path / "results/merged/mlp.parquet")) == 2 * 4
    assert (tmp_path / "results/figures/mlp/flops_vs_d.png").stat().st_size > 10_000
    assert (tmp_path / "results/figures/energy/energy_efficiency.png").exists()

    # nothing changed: nothing to submit
    assert "Nothing to be done" in (lambda p: p.stdout + p.stderr)(wf.run("--dry-run"))
    # one more architecture schedules only its jobs and what reads them
    cfg = copy.deepcopy(SLURM_CONFIG)
    cfg["mlp"]["targets"].append("l40s")
    wf.write_config(cfg)
    dry = wf.run("--dry-run")
    text = dry.stdout + dry.stderr
    assert re.search(r"^profile_mlp\s+1$", text, re.M) and "profile_matmul" not in text
    assert "slurm_partition=l40s" in text and "gres=gpu:l40s:1" in text


def test_wrong_mapping_is_refused_by_slurm(tmp_path):
    cfg = copy.deepcopy(SLURM_CONFIG)
    cfg["mlp"]["targets"] = ["h100"]
    cfg["matmul"]["targets"] = []
    cfg["slurm"]["targets"]["h100"]["partition"] = "a100"  # an h100 job sent to the a100 nodes
    wf = SlurmWorkflow(tmp_path, cfg)
    proc = wf.run(check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Requested node configuration is not available" in out
    assert not list((tmp_path / "results").glob("raw/**/*.parquet"))


def test_unmapped_architecture_fails_before_submitting(tmp_path):
    cfg = copy.deepcopy(SLURM_CONFIG)
    cfg["mlp"]["targets"] = ["v100"]
    wf = SlurmWorkflow(tmp_path, cfg)
    # the README's mapping check, a dry run, refuses it too
    dry = wf.run("--dry-run", check=False)
    assert dry.returncode != 0
    assert (
        "config error at slurm.targets: no entry for GPU target 'v100'" in dry.stdout + dry.stderr
    )
    proc = wf.run(check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "config error at slurm.targets: no entry for GPU target 'v100'" in out
    assert "has been submitted" not in out


def test_gpus_mode_asks_for_gpus_of_the_model(tmp_path):
    """`slurm.gpu_request: gpus` uses the plugin's gpu/gpu_model: sbatch --gpus=<model>:1."""
    cfg = copy.deepcopy(SLURM_CONFIG)
    cfg["mlp"]["targets"] = ["a100"]
    cfg["matmul"]["targets"] = []
    cfg["slurm"]["gpu_request"] = "gpus"
    wf = SlurmWorkflow(tmp_path, cfg)
    dry = wf.run("--dry-run")
    assert "gpu=1" in dry.stdout + dry.stderr and "gpu_model=a100" in dry.stdout + dry.stderr
    wf.run()
    row = pd.read_parquet(tmp_path / "results/raw/mlp/a100/fp32/n2_d16_m4.parquet").iloc[0]
    job = scontrol(row["slurm_job_id"])
    assert job["Partition"] == "a100" and job["TresPerJob"] == "gres:gpu:a100:1", job


def test_a_distributed_job_gets_all_its_gpus_on_one_node(tmp_path):
    """A distributed job asks Slurm for world_size GPUs of its architecture on one node; its two
    ranks run there (on the CPU with gloo: CI has no GPU), each writing its rows, and the node's
    rows add them up."""
    cfg = copy.deepcopy(SLURM_CONFIG)
    cfg["mlp"]["targets"], cfg["matmul"]["targets"] = ["h100"], []  # the figures need an MLP job
    cfg["distributed"] = {
        "targets": ["h100"],
        "models": ["tiny-llama"],
        "precisions": ["fp32"],
        "batch_size": [2],
        "seq_len": [32],
        "world_size": [2],
        "strategy": ["ddp"],
        "repeats": 3,
        "min_window_s": 0.05,
        "warmup_iterations": 1,
        "collective_timeout_s": 60,
    }
    cfg["energy"] = {"meter": "none", "idle_baseline_s": 0}
    wf = SlurmWorkflow(tmp_path, cfg)
    dry = wf.run("--dry-run")
    assert "gres=gpu:h100:2" in dry.stdout + dry.stderr
    wf.run()
    base = "results/{}/distributed/h100/tiny-llama/fp32/ddp_weak_w2/b2_s32.parquet"
    node, ranks = (pd.read_parquet(tmp_path / base.format(k)) for k in ("raw", "ranks"))
    job = scontrol(node["slurm_job_id"].iloc[0])
    assert job["Partition"] == "h100" and job["TresPerNode"] == "gres:gpu:h100:2", job
    assert job["NumNodes"] == "1" and job["JobState"] == "COMPLETED", job
    # both ranks ran in that one job, on the node Slurm chose, and saw both of its GPUs
    assert sorted(ranks["rank"].unique()) == [0, 1] and ranks["slurm_job_id"].nunique() == 1
    assert set(ranks["slurm_nodename"]) == {"gpu-h100"} and set(ranks["slurm_gpus_on_node"]) == {
        "2"
    }
    assert (node["rank"] == -1).all() and set(node["world_size"]) == {2}
    for _, row in node.iterrows():
        summed = ranks.loc[ranks["pass"] == row["pass"], "flops"].sum(
            min_count=2
        )  # communication: NaN
        assert row["flops"] == pytest.approx(summed, nan_ok=True)
    # the node rows are merged with the energy rows, the ranks' with each other
    merged = pd.read_parquet(tmp_path / "results/merged/energy.parquet")
    assert set(merged.loc[merged["strategy"] == "ddp", "world_size"]) == {2}
    assert len(pd.read_parquet(tmp_path / "results/merged/ranks.parquet")) == len(ranks)
    # timeouts are the job's resources, not its parameters: editing them reruns nothing, and
    # the job got them (under Slurm, where its jobstep evaluates the rule again)
    assert wf.scheduled() == {}
    wf.write_config(
        {
            **cfg,
            "distributed": {**cfg["distributed"], "collective_timeout_s": 90, "timeout_s": 1800},
        }
    )
    assert wf.scheduled() == {}
    log = (tmp_path / "logs/distributed/h100/tiny-llama/fp32/ddp_weak_w2/b2_s32.log").read_text()
    assert "timeouts: the job 3600 s, a collective 60 s" in log
