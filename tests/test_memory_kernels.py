"""The memory experiment (issue 32): the memory-bound kernels a step runs outside its matrix
products, measured so that the step-time model prices each kind's bytes at its own speed."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from test_steptime import SIZES, TRUE, ops, synthetic_rows

from flopmetrics.analysis import steptime, steptime_fit, steptime_measured, steptime_rows
from flopmetrics.flops import opstream
from flopmetrics.workloads import memory

RAW = "results/raw/memory/cpu/bf16/{}_mib{}.parquet"


@pytest.fixture(autouse=True)
def _own_cache(flops_cache, monkeypatch):
    monkeypatch.setenv("FLOPMETRICS_CACHE_DIR", str(flops_cache))


@pytest.mark.parametrize("pattern", memory.PATTERNS)
def test_each_pattern_moves_the_bytes_and_has_the_flags_the_operation_stream_books(pattern):
    w = memory.build("cpu", "bf16", {"pattern": pattern, "mib": 1}, seed=0)
    recorder = opstream._recorder()
    with recorder:
        out = w.steps()["forward"]()
    assert out.numel() * out.element_size() == 2**20
    assert len(recorder.ops) == 1  # one kernel, no copy before it
    cls, flops, moved, _, *rest = recorder.ops[0]
    flags = dict(zip(opstream.FLAGS, rest[: len(opstream.FLAGS)], strict=True))
    assert set(rest[len(opstream.FLAGS) :]) == {0}  # no attention kernel's shape
    assert moved == w.bytes_moved() and flops == 0
    assert flags["strided"] == (pattern == "strided") and flags["cat"] == (pattern == "cat")


def test_a_reduction_or_a_contiguous_operation_is_not_strided():
    import torch

    x = torch.zeros(4, 8, 64, dtype=torch.bfloat16, device="meta")
    recorder = opstream._recorder()
    with recorder:
        x.sum(-1)  # a reduction: its own kernels
        x * 2.0  # a scalar operand: vectorized
        x * x[:, :1]  # broadcast: strided
        x.float()  # a cast: the unrolled kernel
    assert [op[4 + opstream.FLAGS.index("strided")] for op in recorder.ops] == [
        False,
        False,
        True,
        True,
    ]


def test_the_reference_models_step_has_strided_kernels_and_cats():
    o = ops("llama-3.2-1b", 1, 256, "bf16", "train_step")
    rest = ~np.isin(o["cls"], ["gemm", "attention", "optimizer"])
    assert 0.1 < o["bytes"][o["strided"] & rest].sum() / o["bytes"][rest].sum() < 0.9
    assert o["cat"].any()


def test_a_kind_at_half_speed_takes_twice_its_bytes_time_and_unmeasured_is_as_before():
    o = ops()
    base = steptime.kernel_times(TRUE, o)
    slow = steptime.kernel_times({**TRUE, "strided_speed": 0.5, "cat_speed": math.nan}, o)
    product = np.isin(o["cls"], ["gemm", "attention"])
    strided = o["strided"] & ~product
    assert strided.any()
    assert slow[strided] == pytest.approx(2 * base[strided])
    assert np.array_equal(slow[~strided], base[~strided])
    assert np.array_equal(steptime.kernel_times({**TRUE, "strided_speed": math.nan}, o), base)


def test_a_kind_at_its_measured_energy_per_byte_costs_only_its_own_bytes_more():
    o = ops()
    strided = o["strided"] & ~np.isin(o["cls"], ["gemm", "attention"])
    base = steptime.dynamic_energy(TRUE, o)
    dearer = steptime.dynamic_energy({**TRUE, "strided_energy": 2.5, "cat_energy": math.nan}, o)
    assert dearer - base == pytest.approx(1.5 * TRUE["e_byte_j"] * o["bytes"][strided].sum())
    assert steptime.dynamic_energy({**TRUE, "strided_energy": math.nan}, o) == base
    # the time is the speed's alone
    assert steptime.gpu_time({**TRUE, "strided_energy": 2.5}, o) == steptime.gpu_time(TRUE, o)


def test_each_kinds_energy_per_byte_is_over_the_vectorized_kernels():
    largest = {
        "vectorized": {"dynamic_energy_j_per_iter": 0.3, "bytes_moved": 3e9, "bytes_per_s": 4e12},
        "strided": {"dynamic_energy_j_per_iter": 0.5, "bytes_moved": 2e9, "bytes_per_s": 1e12},
    }
    per_byte = steptime_measured._joules_per_byte
    assert steptime_measured._over_vectorized(largest, "strided", per_byte) == pytest.approx(2.5)
    assert math.isnan(steptime_measured._over_vectorized(largest, "cat", per_byte))


def test_the_fit_holds_the_measured_speeds_and_finds_the_rest():
    speeds = {"strided_speed": 0.6, "cat_speed": 0.2, "strided_energy": 2.0, "cat_energy": 3.0}
    rows = synthetic_rows({**TRUE, **speeds}, SIZES)
    fitted = steptime_fit.fit(rows, "h200", "bf16", speeds)
    assert {k: fitted[k] for k in speeds} == speeds
    assert fitted["resid_sd"] < 1e-3
    assert fitted["host_forward_s"] == pytest.approx(TRUE["host_forward_s"], rel=0.05)
    blind = steptime_fit.fit(rows, "h200", "bf16")  # every kind at the vectorized bandwidth
    assert blind["resid_sd"] > 10 * fitted["resid_sd"]


def test_the_pipeline_measures_each_kind_and_the_calibration_reads_their_speeds(workflow):
    config = {**workflow.config}
    config["memory"] = {
        "targets": ["cpu"],
        "precisions": ["bf16"],
        "mib": [1, 2],
        "repeats": 2,
        "min_repeats": 2,
        "min_window_s": 0.02,
        "warmup_iterations": 1,
    }
    workflow.write_config(config)
    files = [RAW.format(k, m) for k in memory.PATTERNS for m in (1, 2)]
    workflow.run(*files)
    rows = {
        k: pd.read_parquet(workflow.workdir / RAW.format(k, 2)).iloc[0] for k in memory.PATTERNS
    }
    for r in rows.values():
        assert r["status"] == "ok" and r["gates_passed"] and r["pass"] == "forward"
        assert r["bytes_per_s"] == pytest.approx(r["bytes_moved"] / r["time_per_iter_s"])
    got = steptime_measured.memory_speeds([workflow.workdir / "results"], "cpu", "bf16")
    base = rows["vectorized"]["bytes_per_s"]
    assert got["strided_speed"] == pytest.approx(rows["strided"]["bytes_per_s"] / base)
    assert got["cat_speed"] == pytest.approx(rows["cat"]["bytes_per_s"] / base)
    # a CPU without an energy meter has no dynamic energy: NaN, as where none was measured
    per_byte = {k: r["dynamic_energy_j_per_iter"] / r["bytes_moved"] for k, r in rows.items()}
    for k in ("strided", "cat"):
        ratio = per_byte[k] / per_byte["vectorized"]
        assert got[f"{k}_energy"] == pytest.approx(ratio, nan_ok=True)
    assert got["memory_from"].count("_mib2.parquet") == 3  # the largest of each kind
    # the step-time fit holds the speeds, not the energies per byte (worse out of fit, held)
    held = steptime_rows._speeds_held(got)
    assert held["strided_speed"] == got["strided_speed"] and "strided_energy" not in held
    assert "cat_energy" not in held and held["memory_bandwidth"] == got["memory_bandwidth"]
    # a precision not measured takes one that was, whole: every kind from the same precision
    mixed = steptime_measured.memory_speeds([workflow.workdir / "results"], "cpu", "bf16-mixed")
    assert pd.Series(mixed).equals(pd.Series(got))  # NaN where no energy was metered, alike
    other = steptime_measured.memory_speeds([workflow.workdir / "results"], "h200", "bf16")
    assert math.isnan(other["strided_speed"]) and math.isnan(other["cat_energy"])
    assert other["memory_from"] == ""
    assert workflow.scheduled(*files) == {}  # nothing left to redo
