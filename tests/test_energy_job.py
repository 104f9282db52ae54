"""The whole job path (meters -> windows -> derived passes -> rows -> gates -> trace) with the
NVML edge faked: the same code ran on the H100 for resources/reference/h100."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import job_spec
from fake_nvml import FakeNvml

from flopmetrics.energy.counter import NvmlCounterMeter, windows_from_trace
from flopmetrics.energy.nvml import NvmlGpu
from flopmetrics.energy.sampler import PowerSampler
from flopmetrics.energy.setup import MeterSetup
from flopmetrics.jobs import run as job
from flopmetrics.jobs import session

IDLE_W, BUSY_W = 60.0, 300.0

SPEC = job_spec(
    "llm",
    {
        "model": "tiny-llama",
        "batch_size": 2,
        "seq_len": 16,
        "passes": ["forward", "forward_train", "forward_backward", "train_step"],
        "attn_implementation": "sdpa",
        "attention_flops": "full",
    },
    measure={"repeats": 3, "min_window_s": 0.35},
    energy={"sampler_hz": 100, "guard_s": 0.15, "idle_baseline_s": 0.5},
)


@pytest.fixture(scope="module")
def measured():
    fake = FakeNvml(idle_w=IDLE_W, period_s=0.1)
    gpu = NvmlGpu(fake, None)
    mp = pytest.MonkeyPatch()
    sampler = PowerSampler(gpu, hz=100)
    mp.setattr(
        session,
        "setup_meters",
        lambda device, settings, nvml=None: MeterSetup(
            [NvmlCounterMeter(sampler), sampler], sampler, gpu, "nvml_counter_interpolated", "ok"
        ),
    )
    real_idle = session.idle_baseline

    def idle(monitor, setup, seconds, progress, **rest):
        fake.set_power(IDLE_W)
        out = real_idle(monitor, setup, seconds, progress, **rest)
        fake.set_power(BUSY_W)  # 'the GPU' is busy from here on: every window measures work
        return out

    mp.setattr(session, "idle_baseline", idle)
    try:
        rows, trace = job.run(SPEC, progress=lambda m: None)
    finally:
        mp.undo()
    return rows.set_index("pass"), trace, fake


def test_energy_per_iteration_matches_the_simulated_power(measured):
    rows, _, _ = measured
    for p in ("forward", "forward_train", "forward_backward", "train_step"):
        r = rows.loc[p]
        assert r["energy_j_per_iter"] == pytest.approx(BUSY_W * r["time_per_iter_s"], rel=0.05), p
        assert r["dynamic_energy_j_per_iter"] == pytest.approx(
            (BUSY_W - IDLE_W) * r["time_per_iter_s"], rel=0.08
        ), p
        assert abs(r["counter_vs_trace_pct"]) < 5
        assert r["windows"] == 3 and r["window_s_min"] >= 0.35
    assert rows.loc["forward", "idle_power_w"] == pytest.approx(IDLE_W, rel=0.05)
    assert rows["energy_method"].eq("nvml_counter_interpolated").all()


def test_derived_passes_and_their_errors(measured):
    rows, _, _ = measured
    b, fb, ft = rows.loc["backward"], rows.loc["forward_backward"], rows.loc["forward_train"]
    assert b["derived"] and b["energy_j_per_iter"] == pytest.approx(
        fb["energy_j_per_iter"] - ft["energy_j_per_iter"]
    )
    assert b["energy_j_per_iter_sem"] == pytest.approx(
        math.hypot(fb["energy_j_per_iter_sem"], ft["energy_j_per_iter_sem"])
    )
    o = rows.loc["optimizer"]
    assert o["flops"] == 14 * rows.loc["forward", "parameters"]
    assert rows.loc["train_step", "flops"] == rows.loc["forward_backward", "flops"] + o["flops"]


def test_rows_carry_provenance_and_gates(measured):
    rows, _, fake = measured
    assert (rows["gpu_name"] == fake.name).all() and (rows["power_limit_w"] == 700).all()
    assert (rows["driver_version"] == "999.99-fake").all()
    assert rows["gates_passed"].all()
    assert rows["config_hash"].nunique() == 1


def test_trace_is_labelled_with_every_window(measured):
    _, trace, _ = measured
    assert {"idle", "forward", "forward_train", "forward_backward", "train_step"} <= set(
        trace["window"]
    )
    assert sorted(trace.loc[trace["window"] == "forward", "repeat"].unique()) == [0, 1, 2]
    assert trace["t_rel_s"].iloc[0] == 0 and trace["t_rel_s"].is_monotonic_increasing


def test_every_row_can_be_recomputed_from_its_saved_trace(measured):
    """The saved trace holds the counter's steps and each window's edges: the energy of each
    direct pass is reproduced from the trace alone (what the committed H100 traces allow too)."""
    rows, trace, _ = measured
    windows = windows_from_trace(trace)
    assert set(windows["window"]) == {
        "idle",
        "forward",
        "forward_train",
        "forward_backward",
        "train_step",
    }
    for p in ("forward", "forward_train", "forward_backward", "train_step"):
        w = windows[windows["window"] == p]
        assert len(w) == 3 and (w["iterations"] > 0).all()
        assert (w["energy_j"] / w["iterations"]).mean() == pytest.approx(
            rows.loc[p, "energy_j_per_iter"], rel=1e-9
        )
        assert (w["energy_trace_j"] / w["iterations"]).mean() == pytest.approx(
            rows.loc[p, "energy_trace_j_per_iter"], rel=1e-6
        )


def test_out_of_memory_becomes_a_row_and_the_sweep_goes_on(monkeypatch):
    def boom(*args):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 80 GiB")

    monkeypatch.setattr(job, "build", boom)
    spec = job_spec("mlp", {"n": 2, "d": 8, "m": 4}, energy={"meter": "none"})
    rows, trace = job.run(spec, progress=lambda m: None)
    assert (rows["status"] == "oom").all() and not rows["gates_passed"].any()
    assert rows["error"].str.contains("out of memory").all() and rows["d"].eq(8).all()
    assert trace.empty


def test_a_gpu_job_without_a_gpu_fails_clearly():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(RuntimeError, match="no CUDA GPU is available to this job"):
        job.run(job_spec("mlp", {"n": 2, "d": 8, "m": 4}, target="cuda"))
