"""Distributed jobs on CPU: 2 ranks of the tiny Llama under DDP with the gloo backend, launched
by torchrun as on a GPU node (there: NCCL, one GPU per rank)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from flopmetrics.distributed import launch
from flopmetrics.distributed.env import NO_MULTICAST


def params(strategy="ddp", scaling="weak", batch_size=2, **measure) -> dict:
    return {
        "world_size": 2,
        "strategy": strategy,
        "scaling": scaling,
        "collective_timeout_s": 30,
        "job": {
            "experiment": "llm",
            "target": "cpu",
            "precision": "fp32",
            "workload": {
                "model": "tiny-llama",
                "batch_size": batch_size,
                "seq_len": 32,
                "passes": ["forward", "forward_train", "forward_backward"],
                "attn_implementation": "sdpa",
                "attention_flops": "full",
            },
            "measure": {
                "repeats": 3,
                "min_repeats": 3,
                "target_rse": 0.0,
                "min_window_s": 0.1,
                "warmup_iterations": 2,
                "seed": 0,
                "profiler_flops": False,
                "launch": "eager",
                **measure,
            },
            "energy": {"meter": "none", "sampler_hz": None, "guard_s": None, "idle_baseline_s": 0},
        },
    }


def test_two_ranks_measure_the_same_windows_and_add_up_to_the_node(tmp_path, monkeypatch):
    monkeypatch.setenv(
        "NCCL_NVLS_ENABLE", "1"
    )  # what a careless environment says: the launch overrides it
    ranks, node, _ = launch.run(params(), tmp_path, timeout_s=300)
    assert sorted(ranks["rank"].unique()) == [0, 1] and sorted(ranks["local_rank"].unique()) == [
        0,
        1,
    ]
    # every rank ran with multicast off
    for key, value in NO_MULTICAST.items():
        assert (ranks[f"env_{key}"] == value).all(), key
    # windows at barriers, decisions agreed: both ranks ran the same iterations in every pass
    direct = ranks[~ranks["derived"]]
    per_pass = direct.groupby("pass")["iterations_per_window"].nunique()
    assert (per_pass == 1).all(), per_pass
    # DDP: the step without gradient synchronization too, and what synchronizing adds
    assert set(node["pass"]) == {
        "forward",
        "forward_train",
        "forward_backward",
        "forward_backward_local",
        "backward",
        "communication",
    }
    # the node's time is each window's slowest rank (at least any rank's mean), its FLOPs the sum
    windows = pd.concat(
        pd.read_parquet(tmp_path / f"rank{r}_windows.parquet").assign(rank=r) for r in (0, 1)
    )
    for _, row in node[~node["derived"]].iterrows():
        these = ranks[ranks["pass"] == row["pass"]]
        mine = windows[windows["pass"] == row["pass"]]
        slowest = mine.groupby("repeat").apply(
            lambda w: w["elapsed_s"].max() / w["iterations"].iloc[0]
        )
        assert row["time_per_iter_s"] == pytest.approx(slowest.mean(), rel=1e-12)
        assert row["time_per_iter_s"] >= these["time_per_iter_s"].max() - 1e-12
        assert row["flops"] == these["flops"].sum() and row["ranks"] == 2
        assert row["gpu_uuid"] == ",".join(these.sort_values("rank")["gpu_uuid"])
    # FLOPs per rank: DDP does not change what one rank computes
    assert direct.groupby("pass")["flops"].nunique().eq(1).all()
    assert ranks["numerics"].eq("finite").all()

    # FSDP (full sharding), strong scaling: 4 sequences in all, 2 per rank, the same per-rank
    # arithmetic as DDP's weak scaling at 2 per rank (sharding moves parameters, not FLOPs)
    # the train step too: its finiteness check reads each rank's own shard of a sharded parameter
    fsdp_params = params("fsdp", "strong", batch_size=4)
    fsdp_params["job"]["workload"]["passes"].append("train_step")
    fsdp, fsdp_node, _ = launch.run(fsdp_params, tmp_path / "fsdp", timeout_s=300)
    assert (fsdp["batch_size"] == 2).all() and set(fsdp["strategy"]) == {"fsdp"}
    for p in ("forward", "forward_train", "forward_backward"):
        assert set(fsdp.loc[fsdp["pass"] == p, "flops"]) == set(
            direct.loc[direct["pass"] == p, "flops"]
        ), p
    assert "communication" not in set(fsdp_node["pass"]) and fsdp["numerics"].eq("finite").all()


def _rank_pids(rank: int) -> list[int]:
    out = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes()
            env = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"flopmetrics.distributed.rank" in cmd and f"RANK={rank}".encode() in env:
            out.append(int(proc.name))
    return out


def test_a_rank_that_dies_fails_the_job_naming_it(tmp_path):
    result = {}

    def job():
        try:
            launch.run(
                params(min_window_s=2.0, repeats=10, min_repeats=10), tmp_path, timeout_s=120
            )
        except launch.RankFailed as err:
            result["error"] = str(err)

    start = time.monotonic()
    thread = threading.Thread(target=job)
    thread.start()
    deadline = time.monotonic() + 60
    while not (pids := _rank_pids(1)):
        assert time.monotonic() < deadline, "rank 1 never started"
        time.sleep(0.2)
    time.sleep(8)  # into the measuring
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    thread.join(timeout=120)
    assert not thread.is_alive(), "the job hung after a rank died"
    assert "rank 1 failed first" in result.get("error", ""), result
    assert time.monotonic() - start < 120


def test_the_command_line_writes_ranks_and_node(tmp_path):
    launch.main(
        [
            "--target",
            "cpu",
            "--model",
            "tiny-llama",
            "--precision",
            "fp32",
            "--batch-size",
            "2",
            "--seq-len",
            "32",
            "--repeats",
            "3",
            "--min-window-s",
            "0.2",
            "--out",
            str(tmp_path),
        ]
    )
    ranks, node = (
        pd.read_parquet(tmp_path / "ranks.parquet"),
        pd.read_parquet(tmp_path / "node.parquet"),
    )
    # no sampler on a CPU: an empty trace per rank, written all the same (a GPU rank's is labelled)
    assert pd.read_parquet(tmp_path / "trace.parquet").empty
    assert sorted(pd.read_parquet(tmp_path / "windows.parquet")["rank"].unique()) == [0, 1]
    assert sorted(ranks["rank"].unique()) == [0, 1] and (node["rank"] == -1).all()
    assert {"train_step", "optimizer", "communication"} <= set(node["pass"])


REFERENCE = Path(__file__).resolve().parents[1] / "resources/reference/h200_x4"


def test_committed_node_rows_are_their_ranks_summed():
    """The committed 4-GPU reference: each node row is its ranks' energies summed window by
    window (recomputed here from the committed ranks and windows), gated against N GPUs."""
    from flopmetrics.distributed.node import node_rows
    from flopmetrics.energy import gates

    nodes = sorted((REFERENCE / "raw").rglob("*.parquet"))
    assert len(nodes) == 6
    for path in nodes:
        node = pd.read_parquet(path)
        ranks = pd.read_parquet(str(path).replace("/raw/", "/ranks/"))
        windows = pd.read_parquet(str(path).replace("/raw/", "/windows/"))
        world = int(node["world_size"].iloc[0])
        assert (
            sorted(ranks["rank"].unique()) == list(range(world))
            and ranks["gpu_uuid"].nunique() == world
        )
        again = node_rows(ranks, windows.drop(columns="rank").assign(rank=windows["rank"]))
        for col in (
            "energy_j_per_iter",
            "energy_cv",
            "time_per_iter_s",
            "flops",
            "energy_zeus_j_per_iter",
        ):
            assert again[col].to_numpy() == pytest.approx(
                node[col].to_numpy(), rel=1e-9, nan_ok=True
            ), (path, col)
        direct = node[~node["derived"]].set_index("pass")
        summed = ranks[~ranks["derived"]].groupby("pass")["energy_j_per_iter"].sum()
        assert direct["energy_j_per_iter"].to_numpy() == pytest.approx(
            summed[direct.index].to_numpy(), rel=1e-9
        )
        assert node["gates_passed"].all() and ranks["numerics"].eq("finite").all()
        # at N GPUs the node may do N peaks' FLOP/s: its gate is N times the single GPU's
        peak = gates.limits(node.iloc[0].to_dict())[0]
        assert peak == pytest.approx(world * gates.limits({**node.iloc[0].to_dict(), "rank": 0})[0])


def test_kernel_time_is_not_profiled_on_a_cpu(tmp_path):
    ranks, node, _ = launch.run({**params(), "profile_iterations": 2}, tmp_path, timeout_s=300)
    assert ranks["kernel_ms"].isna().all() and (ranks["profile_iterations"] == 0).all()
    assert node["nccl_kernel_ms"].isna().all()


def test_kernel_time_counts_overlapping_kernels_once_as_busy_time():
    from flopmetrics.jobs.kernels import kernel_ms

    events = [
        {"cat": "kernel", "name": "sm90_gemm", "ts": 0, "dur": 1000},
        {
            "cat": "kernel",
            "name": "ncclDevKernel_AllReduce",
            "ts": 500,
            "dur": 1000,
        },  # beside the GEMM
        {"cat": "kernel", "name": "elementwise", "ts": 3000, "dur": 500},
        {"cat": "cpu_op", "name": "aten::mm", "ts": 0, "dur": 9000},
    ]
    assert kernel_ms(events) == {
        "kernel_ms": 2.5,
        "nccl_kernel_ms": 1.0,
        "busy_ms": 2.0,
        "kernels": 3,
    }


def test_the_scaling_figure_draws_rows_without_energy():
    # a CPU run has no energy meter: the node's TFLOPs/J are NaN and the figure must still draw
    from flopmetrics.figures import distributed as figures

    nan = float("nan")
    table = pd.DataFrame(
        {
            "gpu_label": "h100",
            "model": "tiny-llama",
            "precision": "fp32",
            "seq_len": 32,
            "rank_batch_size": 2,
            "strategy": "ddp",
            "world_size": [1, 2],
            "tflops_per_j": nan,
            "train_step_cv": nan,
            "scaling_efficiency": nan,
            "extra_vs_one_rank_pct": nan,
            "communication_share_pct": nan,
        }
    )
    fig = figures.scaling({"scaling": table}, {}, {})
    assert len(fig.axes) == 2
