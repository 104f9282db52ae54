"""Attention given dropout (issue 32): GPT-2 and StarCoder train with ``attn_pdrop`` 0.1, and
their fused attention kernels then draw a random number per score and run 1.7-2.2x slower
forward (``benchmarks/results/kernel_rates_dropout_h200_2026-12-04.json``). The operation
stream flags such kernels; the step-time model gives them a rate of their own where the
calibration has such rows, and prices them as causal attention where it has none."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_steptime import ATTENTION, SIZES, TRUE, synthetic_rows, synthetic_table, workload

from flopmetrics.analysis import steptime, steptime_estimate, steptime_fit
from flopmetrics.flops.models import resolve
from flopmetrics.flops.opstream import step_ops

# the tiny Llama, wide enough for attention to be bound by its rate, with attention dropout
DROPPING = {**resolve("tiny-llama")[1], "hidden_size": 256, "head_dim": 64}
DROPPING["attention_dropout"] = 0.1
SLOWER = {"r_dropout": 1e14, "e_dropout_j": 3e-12}


@pytest.fixture(autouse=True)
def _own_cache(flops_cache, monkeypatch):
    monkeypatch.setenv("FLOPMETRICS_CACHE_DIR", str(flops_cache))


def test_attention_given_dropout_is_flagged_forward_and_backward_and_only_then():
    o = step_ops(DROPPING, 2, 256, "bf16", "train_step")
    attention = o["cls"] == "attention"
    flagged = o["dropout"]
    assert flagged.any() and not (flagged & ~attention).any()
    assert set(o["phase"][flagged]) == {"f", "b"}  # the kernel and its backward
    without = step_ops({**DROPPING, "attention_dropout": 0.0}, 2, 256, "bf16", "train_step")
    assert not without["dropout"].any()
    assert np.array_equal(without["flops"], o["flops"])  # the same work, another kernel


def test_dropout_gets_a_rate_of_its_own_where_the_rows_have_it():
    slow = {**TRUE, **ATTENTION, **SLOWER}
    dropping = [(DROPPING, b, s) for b in (1, 64, 256) for s in (256, 512)]
    fitted = steptime_fit.fit(synthetic_rows(slow, SIZES + dropping), "h200", "bf16")
    assert fitted["r_dropout"] == pytest.approx(1e14, rel=0.05)
    assert fitted["e_dropout_j"] == pytest.approx(3e-12, rel=0.05)
    long = step_ops(DROPPING, 64, 512, "bf16", "forward")
    calibration = {**fitted, "left_out_q95": 0.05, "idle_w": 120.0, "limit_w": 700.0}
    est = steptime.predict(calibration, long)
    assert "dropout" in est["slow"]
    assert est["time_s"] == pytest.approx(steptime.step(slow, long, 120.0, 700.0)[1], rel=0.01)


def test_unfitted_dropout_is_priced_as_causal_attention_not_refused():
    calibration = {**TRUE, **ATTENTION, "resid_sd": 0.01, "left_out_q95": 0.05}
    calibration.update(idle_w=120.0, limit_w=700.0, r_dropout=math.nan, e_dropout_j=math.nan)
    long = step_ops(DROPPING, 64, 512, "bf16", "train_step")
    est = steptime.predict(calibration, long)
    as_attention = {**calibration, "r_dropout": 2e14, "e_dropout_j": 2e-12}
    assert est["energy_j"] == pytest.approx(steptime.step(as_attention, long, 120.0, 700.0)[0])
    slower = steptime.predict({**calibration, **SLOWER}, long)
    assert slower["time_s"] > est["time_s"]


def test_an_estimate_says_where_it_prices_dropout_as_causal_attention():
    table = synthetic_table().assign(**ATTENTION)
    w = workload({"name": "dropping", **DROPPING}, batch_size=64, seq_len=512)
    said = steptime_estimate.step_energy(w, "h200", table)["basis"]
    assert "given dropout" in said and "priced as attention" in said
    fitted = steptime_estimate.step_energy(w, "h200", table.assign(**SLOWER))["basis"]
    assert "priced as" not in fitted
