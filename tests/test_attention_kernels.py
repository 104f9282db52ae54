"""The attention experiment (issue 32): the fused causal attention kernel alone, by head size,
heads, grouping and length, so that the step-time model can price attention at its own rate."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from test_steptime import (
    MOE,
    SIZES,
    TRUE,
    WINDOWED,
    ops,
    synthetic_rows,
    synthetic_table,
    workload,
)

from flopmetrics.analysis import (
    steptime,
    steptime_attention,
    steptime_estimate,
    steptime_fit,
    steptime_measured,
)
from flopmetrics.contracts.errors import ConfigError
from flopmetrics.contracts.experiments import attention_groups
from flopmetrics.flops import opstream
from flopmetrics.flops.opstream import step_ops
from flopmetrics.workloads import attention

RAW = "results/raw/attention/cpu/bf16/d{}_h4_g{}/b1_s{}.parquet"
SHAPE = {"head_dim": 16, "heads": 4, "groups": 2, "batch_size": 1, "seq_len": 200}


def test_its_flops_are_the_causal_tiles_the_operation_stream_books():
    w = attention.build("cpu", "bf16", SHAPE, seed=0)
    counted = w.analytic()
    w.q, w.k, w.v = (x.detach().to("meta") for x in (w.q, w.k, w.v))  # as a step is recorded
    recorder = opstream._recorder()
    with opstream._fused_attention(recorder), recorder:
        w.steps()["forward"]()
    booked = sum(op[1] for op in recorder.ops if op[0] == "attention")
    assert booked == pytest.approx(counted["forward"]["flops_analytic"])
    # one kernel (K and V reach flash unexpanded), and its shape: heads of 16 run the kernel of
    # 64; 200 queries; 1 x 4 rows; 2 query heads per key/value head
    shapes = [op[-len(opstream.SHAPE) :] for op in recorder.ops]
    assert shapes == [(64, 200, 4, 2)]
    # two tiles of 128 rows: the diagonal's and the one below, 3 of 4; heads of 16 run the
    # kernel of 64
    full = 4 * 1 * 4 * 200 * 200 * 64
    assert w.analytic()["forward"]["flops_analytic"] == pytest.approx(0.75 * full)
    assert w.analytic()["backward"]["flops_analytic"] == pytest.approx(1.5 * full)
    assert w.describe()["kv_heads"] == 2 and w.k.shape[1] == 2


def test_heads_that_do_not_split_into_groups_are_refused_by_name():
    config = {"attention": {"heads": [12, 16], "groups": [1, 8]}}
    with pytest.raises(ConfigError, match=r"attention.groups\[1\].*12 query heads.*heads\[0\]"):
        attention_groups(config)
    attention_groups({"attention": {"heads": [16], "groups": [1, 8]}})


def test_the_pipeline_measures_each_shape_and_reruns_only_a_new_length(workflow):
    config = {**workflow.config}
    config["attention"] = {
        "targets": ["cpu"],
        "head_dims": [32, 128],  # kernels of 64 and 128: one entry each
        "heads": [4],
        "groups": [1, 2],
        "batch_size": [1],
        "seq_len": [128],
        "repeats": 2,
        "min_repeats": 2,
        "min_window_s": 0.02,
        "warmup_iterations": 1,
    }
    workflow.write_config(config)
    files = [RAW.format(d, g, 128) for d in (32, 128) for g in (1, 2)]
    workflow.run(*files)
    t = pd.read_parquet(workflow.workdir / RAW.format(32, 2, 128)).set_index("pass")
    assert set(t.index) == {"forward", "forward_train", "forward_backward", "backward"}
    assert (t["status"] == "ok").all() and t.loc["forward", "gates_passed"]
    assert t.loc["forward", "kv_heads"] == 2 and t.loc["forward", "head_dim"] == 32
    assert t.loc["backward", "derived"] and t.loc["backward", "flops"] > t.loc["forward", "flops"]
    got = steptime_measured.attention_kernels([workflow.workdir / "results"], "cpu", "bf16")
    entries = json.loads(got[steptime_attention.ATTENTION_TABLE])
    assert len(entries) == 2 * len(files)  # forward and backward of each configuration
    for direction, name in (("f", "forward"), ("b", "backward")):
        mine = [e for e in entries if e[0] == direction and e[1] == 64 and e[2] == 2]
        assert len(mine) == 1
        assert mine[0][3:5] == [4, 128]  # heads of 32 run the kernel of 64; 1 x 4 rows
        assert mine[0][5] == pytest.approx(t.loc[name, "time_per_iter_s"] / t.loc[name, "flops"])
    config["attention"]["seq_len"] = [128, 256]
    workflow.write_config(config)
    new = [RAW.format(d, g, 256) for d in (32, 128) for g in (1, 2)]
    assert workflow.scheduled(*files, *new) == {"profile_attention": 4, "total": 4}
    # on a GPU, a pass that drew little power above idle timed the host, not the kernel: out
    gpu = workflow.workdir / "gpu" / RAW.format(32, 2, 128)
    gpu.parent.mkdir(parents=True)
    power = {"forward": 150.0, "forward_train": 650.0, "forward_backward": 650.0}
    t = t.reset_index().assign(idle_power_w=100.0, power_limit_w=700.0)
    t.assign(power_mean_w=t["pass"].map(power)).to_parquet(gpu)
    got = steptime_measured.attention_kernels([workflow.workdir / "gpu" / "results"], "cpu", "bf16")
    assert [e[0] for e in json.loads(got[steptime_attention.ATTENTION_TABLE])] == ["b"]


@pytest.fixture()
def _own_cache(flops_cache, monkeypatch):
    monkeypatch.setenv("FLOPMETRICS_CACHE_DIR", str(flops_cache))


def _table(entries):
    return json.dumps([list(e) for e in entries])


def test_a_shape_between_measured_ones_is_priced_linearly_in_the_logarithms_and_held_beyond():
    # forward, head 64, groups 1: 1e-15 s/FLOP at 16 rows x 256, 4e-15 at 16 x 4096
    table = _table(
        [("f", 64, 1, 16, 256, 4e-15, 1e-12), ("f", 64, 1, 16, 4096, 1e-15, 2e-12)]
        + [("f", 64, 1, 128, 256, 2e-15, 1e-12), ("f", 64, 1, 128, 4096, 1e-15, 2e-12)]
    )
    surface = steptime_attention._surfaces(table)[("f", 64)][1]
    assert surface(16, 1024) == pytest.approx((2.5e-15, 1.5e-12))  # halfway in log length
    assert surface(16, 64) == pytest.approx((4e-15, 1e-12))  # held at the shortest measured
    assert surface(1024, 256) == pytest.approx((2e-15, 1e-12))  # and the most rows
    assert surface(math.sqrt(16 * 128), 256)[0] == pytest.approx(3e-15)
    # two head sizes of one kernel measured at one shape: both kept, in their mean
    twice = _table([("f", 128, 1, 16, 256, 2e-15, 1e-12), ("f", 128, 1, 16, 256, 4e-15, 3e-12)])
    assert steptime_attention._surfaces(twice)[("f", 128)][1](16, 256) == pytest.approx(
        (3e-15, 2e-12)
    )


@pytest.mark.usefixtures("_own_cache")
def test_a_step_prices_its_attention_kernels_of_a_measured_head_size_as_measured():
    o = ops("tiny-llama", 2, 64, "bf16", "train_step")
    attention = np.flatnonzero(o["head"] > 0)
    head = int(o["head"][attention[0]])
    assert set(o["phase"][attention]) == {"f", "b"}
    table = _table([(d, head, 1, 1, 1, 1e-9, 1e-6) for d in "fb"])  # one shape: everywhere
    priced = steptime.kernel_times({**TRUE, steptime_attention.ATTENTION_TABLE: table}, o)
    base = steptime.kernel_times(TRUE, o)
    assert priced[attention] == pytest.approx(1e-9 * o["flops"][attention])
    rest = np.setdiff1d(np.arange(len(base)), attention)
    assert np.array_equal(priced[rest], base[rest])
    # their dynamic energy as measured, in place of their FLOPs' and bytes' priced energy
    p = steptime.filled({**TRUE, "e_attention_j": 0.0})
    with_table = steptime.dynamic_energy({**p, steptime_attention.ATTENTION_TABLE: table}, o)
    without = steptime.dynamic_energy(p, o)
    moved = p["e_byte_j"] * o["bytes"][attention].sum()
    assert with_table == pytest.approx(without - moved + 1e-6 * o["flops"][attention].sum())
    other = _table([(d, 2 * head, 1, 1, 1, 1e-9, 1e-6) for d in "fb"])  # another head size
    assert np.array_equal(
        steptime.kernel_times({**TRUE, steptime_attention.ATTENTION_TABLE: other}, o), base
    )
    # a step whose attention the table prices is not of the slower kind "attention" (whose
    # left-out misses would otherwise widen its interval)
    assert steptime.kind_of(o) == "attention" and steptime.kind_of(o, table) == ""
    assert steptime.kind_of(o, other) == "attention"


@pytest.mark.usefixtures("_own_cache")
def test_grouped_heads_reach_flash_unexpanded_and_a_table_prices_no_masked_kernel():
    """PyTorch hands flash fewer key and value heads than query heads as they are (no copy
    kernels), forward and backward alike; attention given a mask runs another kernel, which the
    causal kernels' table does not price."""
    o = ops("tiny-llama", 2, 64, "bf16", "train_step")  # 4 query heads per 2 key/value heads
    attention = o["cls"] == "attention"
    assert (o["head"][attention] > 0).all()  # the fused kernels only: no K/V expansion
    assert set(o["groups"][attention]) == {2} and set(o["phase"][attention]) == {"f", "b"}
    masked = step_ops(WINDOWED, 2, 256, "bf16", "train_step")
    head = int(masked["head"][masked["masked"]][0])
    table = _table([(d, head, g, 1, 1, 1e-9, 1e-6) for d in "fb" for g in (1, 2)])
    priced = steptime.kernel_times({**TRUE, steptime_attention.ATTENTION_TABLE: table}, masked)
    assert np.array_equal(priced, steptime.kernel_times(TRUE, masked))
    assert steptime.kind_of(masked, table) == "masked"


@pytest.mark.usefixtures("_own_cache")
def test_an_estimate_says_how_its_attention_was_priced():
    w = workload("tiny-llama")
    head = int(max(ops("tiny-llama", 4, 64, "bf16", "train_step")["head"]))
    said = lambda heads: steptime_estimate.step_energy(  # noqa: E731
        w, "h200", synthetic_table().assign(attention_kernels=_table(heads))
    )["basis"]
    mine = [(d, head, 1, 1, 1, 1e-13, 1e-12) for d in "fb"]
    assert said(mine).endswith("measured alone at each one's shape")
    assert "attention kernel priced as" not in said(mine)  # not as the GEMMs: as measured
    other = [(d, 2 * head, 1, 1, 1, 1e-13, 1e-12) for d in "fb"]
    assert f"but for heads of {head} (not measured" in said(other)
    assert "attention kernel priced as the GEMMs" in said(other)  # the fit had no rate of it
    assert (
        "measured alone" not in steptime_estimate.step_energy(w, "h200", synthetic_table())["basis"]
    )


@pytest.mark.usefixtures("_own_cache")
def test_a_fit_holds_the_measured_attention_and_finds_the_rest_grouped_gemms_last():
    head = int(max(ops("tiny-llama", 1, 64, "bf16", "train_step")["head"]))
    table = _table([(d, head, g, 1, 1, 5e-14, 3e-12) for d in "fb" for g in (1, 2)])
    truth = {**TRUE, steptime_attention.ATTENTION_TABLE: table}
    wide = {**MOE, "hidden_size": 1024, "intermediate_size": 2048}  # a staged kind's rows too
    moe = {**truth, "r_grouped": 2e14, "e_grouped_j": 3e-12}
    rows = synthetic_rows(truth, SIZES) + synthetic_rows(moe, [(wide, 16, 64), (wide, 64, 256)])
    held = {steptime_attention.ATTENTION_TABLE: table}
    fitted = steptime_fit.fit(rows, "h200", "bf16", held)
    assert fitted[steptime_attention.ATTENTION_TABLE] == table
    # every attention kernel priced as measured: no rate of its own to fit
    assert math.isnan(fitted["r_attention"]) and math.isnan(fitted["e_attention_j"])
    assert fitted["resid_sd"] < 1e-3
    assert fitted["host_forward_s"] == pytest.approx(TRUE["host_forward_s"], rel=0.05)
    blind = steptime_fit.fit(rows[: -2 * len(steptime.PASSES)], "h200", "bf16")  # at one rate
    assert blind["resid_sd"] > 10 * fitted["resid_sd"]
    assert math.isfinite(blind["r_attention"])  # there, attention has a rate to fit
