"""The step-time model (issue 32): a step's operation stream on the meta device, and the fit of
time and energy from what bounds a step (GPU, host, power cap)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import REPO
from test_cli import cli
from test_models import MOE

from flopmetrics.analysis import (
    co2e,
    steptime,
    steptime_estimate,
    steptime_fit,
    steptime_measured,
    steptime_misses,
    steptime_rows,
)
from flopmetrics.contracts import packaged, paths
from flopmetrics.contracts.errors import ModelConfigError
from flopmetrics.energy import datasheet
from flopmetrics.flops.models import resolve
from flopmetrics.flops.opstream import step_ops
from flopmetrics.jobs.provenance import git_revision


@pytest.fixture(autouse=True)
def _own_cache(flops_cache, monkeypatch):
    monkeypatch.setenv("FLOPMETRICS_CACHE_DIR", str(flops_cache))


def ops(model="tiny-llama", batch=2, seq=32, precision="bf16", pass_name="train_step"):
    return step_ops(resolve(model)[1], batch, seq, precision, pass_name)


def test_the_stream_has_each_phase_where_its_pass_runs_it():
    fwd, both, step = (ops(pass_name=p) for p in ("forward", "forward_backward", "train_step"))
    assert set(fwd["phase"]) == {"f"}
    assert set(both["phase"]) == {"f", "b"}
    assert set(step["phase"]) == {"f", "b", "o"}
    assert set(step["cls"][step["phase"] == "o"]) == {"optimizer"}
    # attention runs as one fused kernel each way per layer (2 layers), never as the math path
    assert int(np.sum(step["cls"] == "attention")) >= 4
    assert not np.any((step["cls"] == "gemm") & (step["phase"] == "o"))
    # the rotary embedding's torch.cat copies are flagged (benchmarks/steptime_cat_probe.py)
    assert step["cat"].any() and set(step["cls"][step["cat"]]) == {"other"}


def test_gemm_flops_are_the_counters_and_grow_with_the_tokens():
    small, large = ops(seq=32), ops(seq=64)
    gemm = lambda o: o["flops"][o["cls"] == "gemm"].sum()  # noqa: E731
    assert gemm(large) == pytest.approx(2 * gemm(small), rel=0.02)
    assert large["bytes"].sum() > small["bytes"].sum()


def test_mixed_precision_adds_the_casts_and_doubles_the_optimizers_bytes():
    pure, mixed = ops(precision="bf16"), ops(precision="bf16-mixed")
    opt = lambda o: o["bytes"][o["cls"] == "optimizer"].sum()  # noqa: E731
    assert opt(mixed) == pytest.approx(2 * opt(pure), rel=1e-3)  # fp32 master weights, states
    other = lambda o, ph: np.sum((o["cls"] == "other") & (o["phase"] == ph))  # noqa: E731
    for ph in ("f", "b"):  # the weights' casts, and their gradients' casts back
        assert other(mixed, ph) > other(pure, ph)
    gemm = lambda o: o["flops"][o["cls"] == "gemm"].sum()  # noqa: E731
    assert gemm(mixed) == gemm(pure)


def test_only_the_recorded_precisions_have_a_stream():
    with pytest.raises(ValueError, match="fp16"):
        ops(precision="fp16")


def test_a_gemm_with_an_unaligned_dimension_is_flagged():
    aligned = ops("tiny-llama")
    odd = step_ops({**resolve("tiny-llama")[1], "vocab_size": 257}, 2, 32, "bf16", "train_step")
    assert steptime.slow_shares(aligned)["unaligned"] == 0
    assert 0 < steptime.slow_shares(odd)["unaligned"] < 1
    assert any(257 in u[:3] for u in odd["unaligned_gemms"])


def test_attention_computes_at_the_head_size_of_the_kernel_that_runs():
    # 4 heads of 16, 20, 32: the kernel's head size is 64 for all three (80 runs as 128 on an
    # H200); the products' FLOPs are those of the padded heads, 4 b s^2 h_kernel causal
    fused = lambda o: o["flops"][o["cls"] == "attention"].sum()  # noqa: E731
    base = resolve("tiny-llama")[1]
    heads = {d: step_ops({**base, "head_dim": d}, 2, 256, "bf16", "forward") for d in (16, 20, 32)}
    assert fused(heads[16]) == pytest.approx(fused(heads[20])) == pytest.approx(fused(heads[32]))
    causal = 3 / 4  # 256 tokens are 2 tiles of 128: 3 of 4 computed
    assert fused(heads[16]) == pytest.approx(2 * 4 * 2 * 256**2 * 4 * 64 * causal, rel=0.01)


def test_an_unknown_pass_has_no_stream():
    with pytest.raises(ValueError, match="optimizer"):
        ops(pass_name="optimizer")


TRUE = {
    "r_flop": 6e14,
    "bandwidth": 3.5e12,
    "tau_s": 3e-6,
    "host_forward_s": 2e-5,
    "host_backward_s": 1e-5,
    "host_optimizer_s": 5e-6,
    "e_flop_j": 1.0e-12,
    "e_byte_j": 1.2e-10,
}


def synthetic_rows(params, sizes, limit_w=700.0, idle_w=120.0):
    """Rows as the model itself would measure them, over sizes that reach every bound."""
    rows = []
    for model, batch, seq in sizes:
        for p in steptime.PASSES:
            o = step_ops(
                resolve(model)[1] if isinstance(model, str) else model, batch, seq, "bf16", p
            )
            e, t, _ = steptime.step(params, o, idle_w, limit_w)
            name = model if isinstance(model, str) else model.get("name", model["model_type"])
            row = {"model": name, "precision": "bf16", "pass": p}  # as a measured row names it
            row.update(batch_size=batch, seq_len=seq)
            rows.append(
                {"ops": o, "idle_w": idle_w, "limit_w": limit_w, "energy_j": e, "time_s": t}
                | {"row": row}
            )
    return rows


SIZES = [("tiny-llama", b, s) for b in (1, 64, 256) for s in (64, 256)]


def test_the_bounds_are_reached_as_physics_says():
    small = step_ops(resolve("tiny-llama")[1], 1, 16, "bf16", "train_step")
    assert steptime.step(TRUE, small, 120.0, 700.0)[2] == "host"
    hot = {**TRUE, "e_byte_j": 1e-6}  # a step that would draw more than the limit
    e, t, bound = steptime.step(hot, small, 120.0, 700.0)
    assert bound == "power"
    assert e / t == pytest.approx(700.0)


def test_the_fit_finds_the_parameters_that_made_the_rows():
    rows = synthetic_rows(TRUE, SIZES)
    fitted = steptime_fit.fit(rows, "h200", "bf16")
    assert fitted["resid_sd"] < 1e-3
    for r in rows:  # it reproduces every row, not only on average
        e, t, _ = steptime.step(fitted, r["ops"], r["idle_w"], r["limit_w"])
        assert e == pytest.approx(r["energy_j"], rel=0.01)
        assert t == pytest.approx(r["time_s"], rel=0.01)
    assert fitted["host_forward_s"] == pytest.approx(TRUE["host_forward_s"], rel=0.05)


def test_the_fit_never_passes_the_datasheet():
    too_fast = {**TRUE, "r_flop": 5e15, "bandwidth": 4e13}  # beyond any H200
    # sizes large enough that some steps are not bound by the host, which fixes the GPU's rates
    sizes = [("tiny-llama", b, s) for b in (1, 256, 1024) for s in (64, 256, 1024)]
    fitted = steptime_fit.fit(synthetic_rows(too_fast, sizes), "h200", "bf16")
    peak, bandwidth = steptime_fit.limits("h200", "bf16")
    assert fitted["r_flop"] <= peak * (1 + 1e-9)
    assert fitted["bandwidth"] <= bandwidth * (1 + 1e-9)
    # no unaligned GEMM, masked attention, grouped GEMM or dropout seen: their rates and energies
    # are not fitted; the tiny model's attention is over 5 % of its FLOPs at 256 tokens: its rate is
    unseen = {
        k
        for kind in ("unaligned", "align2", "masked", "grouped", "dropout")
        for k in steptime.SLOW[kind][:2]
    }
    free = [k for k in steptime.FITTED if k not in unseen and k != "r_flop"]
    assert all(fitted[k] >= 0 for k in free)
    # a parameter the fit drove to its bound of 0 (the per-kernel time, making up for the GEMMs
    # held at the peak: where it lands depends on the optimizer's path) is bounded, not
    # estimated, as the GEMM rate below: no finite error; every other has one
    at_bound = [k for k in free if not math.isfinite(fitted[f"{k}_rse"])]
    assert len(at_bound) <= 1 and all(fitted[k] < 1e-15 for k in at_bound)
    # held at the datasheet's peak, the GEMM rate is bounded, not estimated: no finite error
    assert fitted["r_flop_rse"] == math.inf
    assert all(math.isnan(fitted[k]) and math.isnan(fitted[f"{k}_rse"]) for k in unseen)
    assert fitted["r_attention"] <= peak * (1 + 1e-9)


def test_attention_gets_a_rate_of_its_own_or_is_priced_as_the_gemms():
    slow = {**TRUE, **ATTENTION}
    wide = {**resolve("tiny-llama")[1], "hidden_size": 256, "head_dim": 64}  # bound by its rate
    sizes = [(m, b, s) for m in ("tiny-llama", wide) for b in (1, 64, 256) for s in (64, 512)]
    fitted = steptime_fit.fit(synthetic_rows(slow, sizes), "h200", "bf16")
    assert fitted["r_attention"] == pytest.approx(2e14, rel=0.05)
    assert fitted["e_attention_j"] == pytest.approx(2e-12, rel=0.05)
    long = step_ops(wide, 64, 512, "bf16", "forward")
    assert steptime.kind_of(long) == "attention"
    calibration = {**TRUE, "resid_sd": 0.01, "left_out_q95": 0.05, "idle_w": 120.0}
    calibration.update(limit_w=700.0, r_attention=math.nan, e_attention_j=math.nan)
    est = steptime.predict(calibration, long)  # not refused: priced as the GEMMs
    as_gemm = steptime.step({**TRUE, "r_attention": 6e14, "e_attention_j": 1e-12}, long, 120, 700)
    assert est["slow"] == ["attention"] and est["energy_j"] == pytest.approx(as_gemm[0])


# attention at a rate whose power stays below the cap, so that the rows can tell its rate
ATTENTION = {"r_attention": 2e14, "e_attention_j": 2e-12}
# an LM head cuBLAS cannot align, wide enough for its GEMMs to be bound by their rate
ODD = {**resolve("tiny-llama")[1], "hidden_size": 256, "head_dim": 64, "vocab_size": 4097}


def test_unaligned_gemms_get_a_rate_and_energy_of_their_own_where_the_rows_have_them():
    slow = {
        **TRUE,
        "r_unaligned": 1.5e14,
        "e_unaligned_j": 2.5e-12,
        **ATTENTION,
    }  # cuBLAS's slow kernels
    odd = [(ODD, b, s) for b in (16, 64, 256) for s in (128, 512)]  # most GPU-bound
    rows = synthetic_rows(slow, SIZES) + synthetic_rows(slow, odd)
    fitted = steptime_fit.fit(rows, "h200", "bf16")
    assert fitted["r_unaligned"] == pytest.approx(1.5e14, rel=0.05)
    assert fitted["e_unaligned_j"] == pytest.approx(2.5e-12, rel=0.05)
    assert math.isfinite(fitted["r_unaligned_rse"])
    odd = step_ops(ODD, 256, 256, "bf16", "train_step")
    calibration = {**fitted, "left_out_q95": 0.05, "idle_w": 120.0, "limit_w": 700.0}
    calibration["left_out_q95_unaligned"] = 0.2
    est = steptime.predict(calibration, odd)  # answered now, at the slower rate
    assert est["energy_j"] == pytest.approx(steptime.step(slow, odd, 120.0, 700.0)[0], rel=0.01)
    assert est["time_s"] > steptime.step(TRUE, odd, 120.0, 700.0)[1]
    # its interval is the left-out misses of steps like it, not of aligned ones
    assert est["energy_j_hi"] / est["energy_j"] - 1 == pytest.approx(0.2)
    aligned = steptime.predict(calibration, ops())
    assert aligned["energy_j_hi"] / aligned["energy_j"] - 1 == pytest.approx(0.05)


# the same head two tokens wider: even, not a multiple of 8 (cuBLAS's two-element kernels)
EVEN = {**ODD, "vocab_size": 4098}


def test_an_even_unaligned_gemm_is_align2_not_odd():
    odd, even = (step_ops(m, 16, 128, "bf16", "train_step") for m in (ODD, EVEN))
    assert steptime.slow_shares(odd)["align2"] == 0 < steptime.slow_shares(odd)["unaligned"]
    assert steptime.slow_shares(even)["unaligned"] == 0 < steptime.slow_shares(even)["align2"]
    assert steptime.slow_shares(even)["align2"] == pytest.approx(
        steptime.slow_shares(odd)["unaligned"], rel=0.01
    )


def test_align2_gemms_get_a_rate_of_their_own_else_the_odd_ones_rate():
    slow = {**TRUE, "r_unaligned": 1.5e14, "e_unaligned_j": 2.5e-12, **ATTENTION}
    slow = {**slow, "r_align2": 3e14, "e_align2_j": 1.5e-12}
    sizes = [(m, b, s) for m in (ODD, EVEN) for b in (16, 64, 256) for s in (128, 512)]
    fitted = steptime_fit.fit(synthetic_rows(slow, SIZES + sizes), "h200", "bf16")
    assert fitted["r_align2"] == pytest.approx(3e14, rel=0.05)
    assert fitted["e_align2_j"] == pytest.approx(1.5e-12, rel=0.05)
    assert fitted["r_unaligned"] == pytest.approx(1.5e14, rel=0.05)
    even = step_ops(EVEN, 256, 256, "bf16", "train_step")
    c = {**fitted, "left_out_q95": 0.05, "idle_w": 120.0, "limit_w": 700.0}
    assert steptime.predict(c, even)["time_s"] == pytest.approx(
        steptime.step(slow, even, 120.0, 700.0)[1], rel=0.01
    )
    # a table with no align2 rows prices them as the odd ones (slower), and is not refused
    older = {**c, "r_align2": math.nan, "e_align2_j": math.nan}
    as_odd = {**slow, "r_align2": 1.5e14, "e_align2_j": 2.5e-12}
    assert steptime.predict(older, even)["time_s"] == pytest.approx(
        steptime.step(as_odd, even, 120.0, 700.0)[1], rel=0.01
    )
    # with neither rate, the step is refused, in the kind's own words
    none = {**older, "r_unaligned": math.nan, "e_unaligned_j": math.nan}
    assert "even dimension" in steptime.predict(none, even)["status"]


def test_the_calibration_bounds_unaligned_steps_by_their_own_left_out_misses():
    slow = {**TRUE, "r_unaligned": 1.5e14, "e_unaligned_j": 2.5e-12, **ATTENTION}
    sizes = [(m, b, s) for m in ("tiny-llama", ODD) for b in (1, 64) for s in (64, 256)]
    rows = synthetic_rows(slow, sizes)
    for i, r in enumerate(rows):  # measured rows scatter; each as a pipeline row names itself
        r["energy_j"] *= 1 + 0.02 * ((i % 3) - 1)
        r["row"]["model"] = "m"
    c = steptime_rows.calibrate(rows, "h200", "bf16")
    # the tiny model spends over 5 % of its FLOPs in attention at these lengths
    assert c["left_out_q95_attention"] > 0 and c["left_out_q95_unaligned"] > 0
    assert c["left_out_n"] == 2 * len(rows)  # each row left out once by batch, once by length


def test_an_estimate_carries_the_left_out_misses_and_refuses_unaligned_gemms():
    calibration = {**TRUE, "resid_sd": 0.02, "left_out_q95": 0.1, "idle_w": 120.0}
    calibration["limit_w"] = 700.0
    est = steptime.predict(calibration, ops())
    assert est["energy_j_hi"] / est["energy_j"] - 1 == pytest.approx(0.1)
    wide = steptime.predict({**calibration, "resid_sd": 0.2}, ops())  # the scatter dominates
    assert wide["energy_j_hi"] / wide["energy_j"] - 1 == pytest.approx(1.959964 * 0.2, rel=1e-5)
    assert est["energy_j_lo"] < est["energy_j"] < est["energy_j_hi"]
    odd = step_ops({**resolve("tiny-llama")[1], "vocab_size": 257}, 2, 32, "bf16", "train_step")
    assert "odd dimension" in steptime.predict(calibration, odd)["status"]


# a sliding window shorter than the step: transformers passes attention a mask
WINDOWED = {**resolve("tiny-llama")[1], "model_type": "mistral", "sliding_window": 16}


def test_attention_given_a_mask_computes_every_tile_and_reads_the_mask():
    causal, masked = (
        step_ops(f, 2, 256, "bf16", "forward") for f in (resolve("tiny-llama")[1], WINDOWED)
    )
    attention = lambda o: o["cls"] == "attention"  # noqa: E731
    assert not causal["masked"].any() and masked["masked"].any()
    assert set(masked["cls"][masked["masked"]]) == {"attention"}
    fused = lambda o, flag: o["flops"][attention(o) & flag].sum()  # noqa: E731
    # 256 tokens are 2 tiles of 128: causal 3 of 4, masked all 4
    assert fused(masked, masked["masked"]) == pytest.approx(
        4 / 3 * fused(causal, attention(causal))
    )
    kernels = lambda o: o["bytes"][attention(o) & (o["flops"] > 0)].sum()  # noqa: E731
    mask_bytes = 2 * 1 * 256 * 256 * 2  # a bf16 bias of (batch, 1, s, s) per layer (2 layers)
    # and K and V expanded from 2 to 4 heads of 16 for the masked kernel (flash reads them as
    # they are)
    expanded = 2 * 2 * (4 - 2) * 256 * 16 * 2  # K and V, batch 2, per layer
    assert kernels(masked) - kernels(causal) == pytest.approx(2 * (mask_bytes + expanded), rel=0.05)
    assert steptime.slow_shares(masked)["masked"] > steptime.SLOW_LIMIT
    assert steptime.kind_of(masked) == "masked" and steptime.kind_of(causal) == "attention"


def test_masked_attention_gets_a_rate_of_its_own_or_the_step_is_refused():
    slow = {**TRUE, "r_masked": 1e14, "e_masked_j": 3e-12, **ATTENTION}
    wide = {**WINDOWED, "hidden_size": 256, "head_dim": 64}  # attention bound by its rate
    sizes = [(m, b, s) for m in ("tiny-llama", wide) for b in (1, 64, 256) for s in (256, 512)]
    fitted = steptime_fit.fit(synthetic_rows(slow, sizes), "h200", "bf16")
    assert fitted["r_masked"] == pytest.approx(1e14, rel=0.05)
    assert fitted["e_masked_j"] == pytest.approx(3e-12, rel=0.05)
    calibration = {**fitted, "left_out_q95": 0.05, "left_out_q95_masked": 0.15}
    calibration.update(idle_w=120.0, limit_w=700.0)
    windowed = step_ops(wide, 64, 256, "bf16", "train_step")
    est = steptime.predict(calibration, windowed)
    assert est["slow"] == ["masked"]
    assert est["energy_j_hi"] / est["energy_j"] - 1 == pytest.approx(0.15)
    unfitted = {**calibration, "r_masked": math.nan, "e_masked_j": math.nan}
    assert "attention given a mask" in steptime.predict(unfitted, windowed)["status"]


def test_a_step_takes_the_held_out_misses_of_steps_bound_like_it_where_larger():
    calibration = {**TRUE, "resid_sd": 0.01, "left_out_q95": 0.05, "heldout_q95": 0.2}
    calibration.update(idle_w=120.0, limit_w=700.0, heldout_q95_host=0.3, heldout_q95_gpu=0.1)
    small = step_ops(resolve("tiny-llama")[1], 1, 16, "bf16", "train_step")
    host = steptime.predict(calibration, small)
    assert host["bound"] == "host"
    assert host["energy_j_hi"] / host["energy_j"] - 1 == pytest.approx(0.3)
    large = steptime.predict({**calibration, "host_forward_s": 0.0, "host_backward_s": 0.0}, small)
    assert large["bound"] != "host"  # bound otherwise: the pooled misses, being larger
    assert large["energy_j_hi"] / large["energy_j"] - 1 == pytest.approx(0.2)


def test_too_few_rows_are_refused_not_fitted():
    with pytest.raises(ValueError, match="cannot fix"):
        steptime_fit.fit(synthetic_rows(TRUE, SIZES[:1]), "h200", "bf16")


def synthetic_table(label="h200", precision="bf16") -> pd.DataFrame:
    row = {**TRUE, "resid_sd": 0.03, "left_out_q95": 0.08, "idle_w": 120.0, "limit_w": 700.0}
    info = {"models": "tiny-llama", "batch_sizes": "1,64", "seq_lens": "64,256"}
    return pd.DataFrame([{**row, **info, "gpu_label": label, "precision": precision}])


def workload(model, **extra):
    w = {"name": "w", "model": model, "tokens": 1e6, "batch_size": 4, "seq_len": 64}
    return {**w, "target": "h200", "precision": "bf16", "pass": "train_step", **extra}


def test_the_co2e_table_answers_for_another_model_from_the_step_time_model():
    calibration = pd.read_parquet(packaged.table_path())  # Llama-3.2-1B: another model
    without = co2e.estimate([workload("tiny-qwen2")], calibration, 1.0, 400.0)
    table = co2e.estimate(
        [workload("tiny-qwen2")], calibration, 1.0, 400.0, steptime_table=synthetic_table()
    )
    assert without.iloc[0]["status"] != "ok"  # the calibration alone refuses it
    r = table.iloc[0]
    assert r["status"] == "ok" and r["basis"].startswith("step-time model")
    assert r["energy_j_lo"] < r["energy_j"] < r["energy_j_hi"]
    assert r["energy_j_hi"] / r["energy_j"] == pytest.approx(1.08)
    small = synthetic_table().assign(flops_max=1e6)  # fitted on steps far smaller than this one
    larger = co2e.estimate([workload("tiny-qwen2")], calibration, 1.0, 400.0, steptime_table=small)
    assert larger.iloc[0]["basis"].startswith("extrapolated: step-time model")
    assert "FLOPs" in larger.iloc[0]["basis"] and "x the largest fitted" in larger.iloc[0]["basis"]
    # as many FLOPs as fitted, but far more kernels or bytes moved (an unrolled scan's steps)
    for key, word in (("kernels_max", "kernels"), ("bytes_max", "bytes moved")):
        few = synthetic_table().assign(**{key: 10.0})
        basis = co2e.estimate([workload("tiny-qwen2")], calibration, 1.0, 400.0, steptime_table=few)
        assert basis.iloc[0]["basis"].startswith("extrapolated: step-time model")
        assert f"{word} " in basis.iloc[0]["basis"] and "FLOPs" not in basis.iloc[0]["basis"]
    ops_step = step_ops(resolve("tiny-qwen2")[1], 4, 64, "bf16", "train_step")
    e, *_ = steptime.step(TRUE, ops_step, 120.0, 700.0)
    assert r["energy_j"] == pytest.approx(e * 1e6 / (4 * 64))


def test_the_co2e_table_says_both_refusals_where_neither_model_answers():
    odd = {**resolve("tiny-llama")[1], "name": "odd-vocab", "vocab_size": 257}
    calibration = pd.read_parquet(packaged.table_path())
    table = co2e.estimate(
        [workload(odd)], calibration, 1.0, 400.0, steptime_table=synthetic_table()
    )
    status = table.iloc[0]["status"]
    assert "not calibrated" in status and "odd dimension" in status
    other = co2e.estimate(  # no step-time fit for this precision: the calibration's refusal
        [workload("tiny-qwen2", precision="bf16-mixed")],
        calibration,
        1.0,
        400.0,
        steptime_table=synthetic_table(),
    )
    assert "step-time" not in other.iloc[0]["status"]


def test_a_step_bound_by_the_host_says_its_time_is_the_host_cpus():
    host_bound = steptime_estimate.step_energy(workload("tiny-qwen2"), "h200", synthetic_table())
    assert host_bound["basis"].startswith("step-time model (bound by the host's launching)")
    assert steptime_estimate.HOST_NOTE in host_bound["basis"]
    free_host = synthetic_table().assign(host_forward_s=0.0, host_backward_s=0.0)
    gpu_bound = steptime_estimate.step_energy(
        workload("tiny-qwen2"), "h200", free_host.assign(host_optimizer_s=0.0)
    )
    assert "bound by the host" not in gpu_bound["basis"]
    assert steptime_estimate.HOST_NOTE not in gpu_bound["basis"]


def test_a_replayed_step_is_priced_without_the_hosts_costs_and_says_so():
    eager = steptime_estimate.step_energy(workload("tiny-qwen2"), "h200", synthetic_table())
    graph = workload("tiny-qwen2", launch="cuda_graph")
    replayed = steptime_estimate.step_energy(graph, "h200", synthetic_table())
    assert replayed["launch"] == "cuda_graph" and eager["launch"] == "eager"
    # the eager step waits on the host; replayed, it is the GPU's work alone, and shorter
    assert "bound by the host" in eager["basis"] and "bound by the host" not in replayed["basis"]
    assert replayed["step"] < eager["step"]
    assert steptime_estimate.REPLAYED_NOTE in replayed["basis"]
    assert steptime_estimate.REPLAYED_NOTE not in eager["basis"]
    # nothing else differs: with no host cost in the table, both launches price alike
    free = synthetic_table().assign(host_forward_s=0.0, host_backward_s=0.0, host_optimizer_s=0.0)
    same = steptime_estimate.step_energy(workload("tiny-qwen2"), "h200", free)
    assert same["step"] == pytest.approx(replayed["step"])
    assert steptime_estimate.step_energy(workload("tiny-qwen2", launch="auto"), "h200", free) == {}


def test_a_step_the_meta_device_cannot_record_is_refused_with_its_reason(monkeypatch):
    def fails(*_):
        raise NotImplementedError("no meta kernel for aten.exotic")

    monkeypatch.setattr(steptime_estimate, "step_ops", fails)
    e = steptime_estimate.step_energy(workload("tiny-qwen2"), "h200", synthetic_table())
    assert "tiny-qwen2" in e["status"] and "aten.exotic" in e["status"]


def test_the_estimate_command_uses_the_packaged_step_time_model_for_another_model(tmp_path):
    args = ["--tokens", "1e9", "--target", "h200", "--precision", "bf16", "--batch-size", "8"]
    out = cli(
        "estimate", "--model", "qwen2.5-0.5b", *args, "--seq-len", "512", "--json", cwd=tmp_path
    )
    r = json.loads(out.stdout)
    assert r["status"] == "ok" and r["basis"].startswith("step-time model")
    assert "step-time model fitted from" in r["calibration"]
    assert r["energy_j_lo"] < r["energy_j"] < r["energy_j_hi"]
    # GPT-2's vocabulary of 50257: its LM head at the unaligned GEMMs' own rate, and the
    # interval of the calibration's unaligned steps where wider than the held-out misses
    gpt2 = cli("estimate", "--model", "gpt2", *args, "--seq-len", "512", "--json", cwd=tmp_path)
    g = json.loads(gpt2.stdout)
    assert g["status"] == "ok" and g["basis"].startswith("step-time model")
    assert g["energy_j_hi"] / g["energy_j"] >= r["energy_j_hi"] / r["energy_j"] - 1e-9
    assert "unaligned" in g["interval"] and "unaligned" not in r["interval"]


def test_the_pipeline_fits_the_step_time_model_on_the_folders_named(workflow):
    folder = REPO / "resources/reference/h200_calibration_batch"
    others = REPO / "resources/reference/h200_heldout3"  # judged, never fitted on
    config = {**workflow.config}
    config["calibration"] = {
        **config.get("calibration", {}),
        "steptime_dirs": [str(folder)],
        "steptime_heldout_dirs": [str(others)],
        "steptime_pool_heldout": True,  # fitted on the held-out rows too, each folder left out
    }
    workflow.write_config(config)
    workflow.run(paths.STEPTIME_CALIBRATION)
    table = pd.read_parquet(workflow.workdir / paths.STEPTIME_CALIBRATION)
    assert sorted(table["precision"]) == ["bf16", "bf16-mixed"]
    peak, bandwidth = steptime_fit.limits("h200", "bf16")
    assert (table["r_flop"] <= peak * (1 + 1e-9)).all() and (table["e_flop_j"] > 0).all()
    assert table["left_out_q95"].notna().all()
    bf16 = table[table["precision"] == "bf16"].iloc[0]  # the held-out set has no bf16 rows
    assert bf16["batch_sizes"] == "1,2,4" and bf16["heldout_n"] == 0
    assert (table["fitted_from"] == f"{folder},{others}").all()  # the folders read
    mixed = table[table["precision"] == "bf16-mixed"].iloc[0]  # the held-out set's precision
    assert mixed["heldout_n"] == 20 and len(mixed["heldout_models"].split(",")) == 4
    assert mixed["heldout_q95"] > 0 and mixed["heldout_pooled"]
    assert (table["git_revision"] == git_revision()[0]).all()  # the code that fitted it
    assert "pythia-410m" in mixed["models"]
    pooled = pd.read_csv(workflow.workdir / paths.STEPTIME_HELDOUT_STEPS)  # each step judged
    assert len(pooled) == 20 and set(pooled["folder"]) == {str(others)}
    assert set(pooled["precision"]) == {"bf16-mixed"} and set(pooled["pass"]) <= set(
        steptime.PASSES
    )
    assert pooled["miss"].max() == pytest.approx(mixed["heldout_max"])
    ratio = pooled["energy_j_predicted"] / pooled["energy_j_measured"] - 1
    assert np.allclose(pooled["signed_miss"], ratio) and np.allclose(pooled["miss"], ratio.abs())
    assert workflow.scheduled(paths.STEPTIME_CALIBRATION) == {}  # nothing left to redo
    config["calibration"]["steptime_pool_heldout"] = False  # an edit reruns the fit
    workflow.write_config(config)
    assert workflow.scheduled(paths.STEPTIME_CALIBRATION)["calibrate_steptime"] == 1
    workflow.run(paths.STEPTIME_CALIBRATION)
    alone = pd.read_parquet(workflow.workdir / paths.STEPTIME_CALIBRATION)
    alone = alone[alone["precision"] == "bf16-mixed"].iloc[0]  # judged on them, not fitted
    assert alone["fit_rows"] == mixed["fit_rows"] - 20 and "pythia-410m" not in alone["models"]
    assert alone["heldout_n"] == 20 and not alone["heldout_pooled"]
    assert alone["fitted_from"] == str(folder)
    # one held-out folder left out of the pooled fit leaves the calibration's alone: the same
    # fit judged the same steps
    steps = pd.read_csv(workflow.workdir / paths.STEPTIME_HELDOUT_STEPS)
    assert np.allclose(steps["signed_miss"], pooled["signed_miss"], rtol=1e-6)


def test_the_interval_carries_the_misses_on_models_the_fit_never_saw():
    calibration = {**TRUE, "resid_sd": 0.01, "left_out_q95": 0.03, "idle_w": 120.0}
    calibration["limit_w"] = 700.0
    other = synthetic_rows(TRUE, [("tiny-qwen2", b, s) for b in (1, 64) for s in (64, 256)])
    for i, r in enumerate(other):  # another model spends 8-16 % more than the fit says
        r["energy_j"] *= 1.08 + 0.04 * (i % 3)
        assert r["row"]["model"] == "tiny-qwen2"
    bound = steptime_misses.heldout_bound(calibration, other)
    assert bound["heldout_n"] == len(other) and bound["heldout_models"] == "tiny-qwen2"
    assert 0.10 < bound["heldout_q95"] <= bound["heldout_max"] < 0.14
    est = steptime.predict({**calibration, **bound}, ops())
    assert est["energy_j_hi"] / est["energy_j"] - 1 == pytest.approx(bound["heldout_q95"])
    table = synthetic_table().assign(**bound)
    e = steptime_estimate.step_energy(workload("tiny-qwen2"), "h200", table)
    assert f"not fitted on ({len(other)} steps; tiny-qwen2; of those bound by" in e["interval"]


def _named(rows: list[dict], model: str, extra: float = 0.0) -> list[dict]:
    """``rows`` as measured rows of ``model``, each spending ``extra`` more energy."""
    for r in rows:
        r["energy_j"] *= 1 + extra
        r["row"].update(model=model, gpu_uuid="GPU-x")
    return rows


def test_a_pooled_fit_takes_its_interval_from_fits_that_never_saw_the_folder_judged():
    """Pooled, the fit takes every held-out folder's rows, and its interval the misses of fits
    that leave one folder out: a folder whose models spend 12 % more than the rest is missed
    by about that much, although the fit on everything has seen them."""
    calibration = _named(synthetic_rows(TRUE, SIZES[:4]), "tiny-llama")
    plain = _named(synthetic_rows(TRUE, [("tiny-qwen2", b, 64) for b in (1, 64)]), "tiny-qwen2")
    costly = _named(synthetic_rows(TRUE, [("tiny-llama", b, 256) for b in (1, 64)]), "m2", 0.12)
    c = {"gpu_label": "h200", "precision": "bf16", "idle_w": 120.0, "limit_w": 700.0}
    c.update({"resid_sd": 0.0, "left_out_q95": 0.0})
    said = []
    out, judged = steptime_rows.pooled(c, calibration, {"a": plain, "b": costly}, {}, said.append)
    assert out["fit_rows"] == len(calibration) + len(plain) + len(costly)
    assert out["models"] == "m2,tiny-llama,tiny-qwen2"
    assert [len(judged[f]) for f in "ab"] == [len(plain), len(costly)]
    assert set(judged["b"]["model"]) == {"m2"} and (judged["b"]["signed_miss"] < 0).all()
    bound = steptime_misses.misses_bound(pd.concat(judged.values()))
    assert bound["heldout_max"] == pytest.approx(1 - 1 / 1.12, abs=0.005)  # "b" left out
    assert (
        said[2].endswith("fit 3 of 3 done") and "b left out: 6 rows, median miss 10.7 %" in said[4]
    )
    # judged by the fit on everything instead, "b" is partly in-sample: it misses less
    inside = steptime_misses.heldout_bound({**c, **out}, plain + costly)
    assert inside["heldout_max"] < bound["heldout_max"] - 0.005


def _sdpa(**options) -> list:
    """The operations the recorder books for one SDPA call on the meta device: 8 query heads,
    one key and value head (multi-query attention, handed over without expanding it)."""
    from flopmetrics.flops import opstream

    q = torch.zeros(2, 8, 256, 64, dtype=torch.bfloat16, device="meta")
    kv = torch.zeros(2, 1, 256, 64, dtype=torch.bfloat16, device="meta")
    recorder = opstream._recorder()
    with opstream._fused_attention(recorder), recorder:
        torch.nn.functional.scaled_dot_product_attention(q, kv, kv, **options)
    return recorder.ops


def test_broadcast_key_heads_without_gqa_run_the_math_kernels_on_fp32_operands():
    # PyTorch's fused kernels need as many key heads as query heads: SDPA falls back to its
    # math backend, which computes 16-bit inputs in fp32 (Falcon-7B in transformers 5.17)
    fp32 = [op for op in _sdpa(is_causal=True) if op[7]]
    assert fp32 and all(op[0] == "attention" for op in fp32)
    assert sum(op[1] for op in fp32) == 2 * 2 * 2 * 8 * 256 * 256 * 64  # every tile, QK and PV
    gqa = _sdpa(is_causal=True, enable_gqa=True)  # the flash kernel, on the expanded heads
    assert not any(op[7] for op in gqa) and any(op[0] == "attention" and op[1] for op in gqa)


def test_fp32_gemms_take_the_measured_rate_or_the_step_is_refused():
    o = ops("llama-3.2-1b", 1, 256, pass_name="forward")
    o["fp32"] = (o["cls"] == "attention") & (o["flops"] > 0)  # as if the math kernels ran
    share = steptime.slow_shares(o)["fp32"]
    assert steptime.LIMITS["fp32"] < share < steptime.SLOW_LIMIT  # refused below SLOW_LIMIT
    measured = steptime.filled({**TRUE, "r_fp32": 5e13, "e_fp32_j": 1.1e-11})
    times = steptime.kernel_times(measured, o)
    assert times[o["fp32"]] == pytest.approx(o["flops"][o["fp32"]] / 5e13)
    as_fast = steptime.dynamic_energy({**measured, "e_fp32_j": TRUE["e_flop_j"]}, o)
    extra = steptime.dynamic_energy(measured, o) - as_fast
    assert extra == pytest.approx((1.1e-11 - 1e-12) * o["flops"][o["fp32"]].sum())
    calibration = {**measured, "resid_sd": 0.01, "left_out_q95": 0.05, "idle_w": 120.0}
    calibration["limit_w"] = 700.0
    assert steptime.predict(calibration, o)["slow"] == ["fp32"]
    unmeasured = {**calibration, "r_fp32": math.nan, "e_fp32_j": math.nan}
    assert "fp32 matrix product" in steptime.predict(unmeasured, o)["status"]


def test_the_fp32_rate_is_read_from_the_matmul_rows_beside_the_calibration(tmp_path):
    import shutil

    source = REPO / "resources/reference/h200/raw/matmul/h200/fp32/n8192.parquet"
    target = tmp_path / "ref/raw/matmul/h200/fp32/n8192.parquet"
    target.parent.mkdir(parents=True)
    shutil.copy(source, target)
    got = steptime_measured.fp32_products([tmp_path / "ref"], "h200")
    again = tmp_path / "again" / target.relative_to(tmp_path / "ref")  # a second folder's file
    again.parent.mkdir(parents=True)
    shutil.copy(source, again)
    assert steptime_measured.fp32_products([tmp_path / "ref", tmp_path / "again"], "h200") == {
        **got,
        "fp32_from": str(target),
    }
    row = pd.read_parquet(source).iloc[0]
    assert got["r_fp32"] == pytest.approx(row["flops"] / row["time_per_iter_s"])
    assert got["e_fp32_j"] == pytest.approx(row["dynamic_energy_j_per_iter"] / row["flops"])
    peak = max(s.peak_flops("fp32") or 0 for s in datasheet.table().values() if s.label == "h200")
    assert 0 < got["r_fp32"] <= peak
    assert math.isnan(steptime_measured.fp32_products([tmp_path / "ref"], "h100")["r_fp32"])
    assert math.isnan(steptime_measured.fp32_products([tmp_path], "h200")["r_fp32"])  # none below


def test_a_safe_softmax_is_booked_as_the_four_kernels_a_gpu_runs():
    from flopmetrics.flops import opstream

    x = torch.zeros(2, 8, 256, 256, device="meta")  # fp32 scores of the math attention
    recorder = opstream._recorder()
    with recorder:
        torch.ops.aten._safe_softmax(x, -1)
    n, rows = x.numel(), x.numel() // 256
    assert len(recorder.ops) == 4  # softmax, the test for -inf, the rows' all, where
    moved = 2 * 4 * n + (4 * n + n) + (n + rows) + (rows + 2 * 4 * n)
    assert sum(op[2] for op in recorder.ops) == moved


def _baddbmm_ops(beta: float) -> list:
    from flopmetrics.flops import opstream

    bias = torch.zeros(16, 1, 512, device="meta", dtype=torch.bfloat16)  # broadcast over rows
    q = torch.zeros(16, 512, 64, device="meta", dtype=torch.bfloat16)
    k = torch.zeros(16, 64, 512, device="meta", dtype=torch.bfloat16)
    recorder = opstream._recorder()
    with recorder:
        torch.baddbmm(bias, q, k, beta=beta, alpha=0.125)
    return recorder.ops


def test_a_baddbmm_given_a_broadcast_bias_books_the_strided_copy_a_gpu_runs_first():
    """CUDA's ``baddbmm`` copies its input (ALiBi's bias in BLOOM, broadcast over the queries)
    into its output before the GEMM adds to it; with ``beta=0`` the GEMM alone writes it."""
    from flopmetrics.flops import opstream

    gemm, copy = _baddbmm_ops(1.0)
    assert (gemm[0], gemm[1]) == ("gemm", 2 * 16 * 512 * 512 * 64)
    assert copy[:3] == ("elementwise", 0, 2 * (16 * 512 + 16 * 512 * 512))
    assert copy[4 + opstream.FLAGS.index("strided")]  # after class, FLOPs, bytes and phase
    assert len(_baddbmm_ops(0.0)) == 1


def test_an_estimate_says_where_its_transformers_differs_from_the_rows():
    import transformers

    table = pd.read_parquet(packaged.steptime_path())
    w = {"model": "tiny-llama", "batch_size": 2, "seq_len": 64, "precision": "bf16"}
    w["pass"] = "train_step"
    older = steptime_estimate.step_energy(w, "h200", table.assign(transformers_measured="4.45.0"))
    assert "measured with transformers 4.45.0" in older["basis"]
    mine = table.assign(transformers_measured=f"4.45.0,{transformers.__version__}")
    assert "transformers" not in steptime_estimate.step_energy(w, "h200", mine)["basis"]


def test_grouped_gemms_are_a_kind_of_their_own_refused_until_calibrated():
    """A mixture of experts' experts (``torch._grouped_mm``) were booked as elementwise kernels
    without FLOPs, priced by their bytes alone. They are GEMMs with their FLOPs, of a kind whose
    rate no calibration has yet: such a step is refused, not priced as dense GEMMs."""
    o = step_ops(MOE, 2, 16, "bf16", "forward")
    grouped = o["grouped"]
    assert set(o["cls"][grouped]) == {"gemm"}
    # layers x tokens x experts per token x 3 products of hidden x intermediate
    assert o["flops"][grouped].sum() == 2 * 32 * 2 * 3 * 2 * 64 * 96
    calibration = {**TRUE, "resid_sd": 0.01, "left_out_q95": 0.05, "idle_w": 120.0}
    calibration["limit_w"] = 700.0
    assert "grouped GEMMs" in steptime.predict(calibration, o)["status"]
    rated = {**calibration, "r_grouped": 1e11, "e_grouped_j": 2e-12}
    assert "grouped" in steptime.predict(rated, o)["slow"]
    times = steptime.kernel_times(rated, o)
    assert times[grouped] == pytest.approx(o["flops"][grouped] / 1e11)
    # fp32 master weights: PyTorch's grouped GEMM refuses them, on a GPU as on the meta device
    with pytest.raises(ModelConfigError, match="grouped GEMM, which takes bf16 operands only"):
        step_ops(MOE, 2, 16, "bf16-mixed", "forward")


def test_a_value_head_smaller_than_the_querys_is_padded_for_the_fused_kernel():
    """Multi-head latent attention (DeepSeek's, MiniCPM3's) has value heads smaller than its
    query heads: the fused kernel booked for it returned the query's head size, and the step's
    next product failed. V is padded to Q's head, as transformers does for flash-attn."""
    mla = {"model_type": "minicpm3", "hidden_size": 64, "intermediate_size": 96}
    mla |= {"num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 4}
    mla |= {"qk_nope_head_dim": 16, "qk_rope_head_dim": 16, "v_head_dim": 16}
    mla |= {"kv_lora_rank": 32, "q_lora_rank": 32, "vocab_size": 128}
    o = step_ops(mla, 2, 128, "bf16", "forward")
    attention = o["flops"][o["cls"] == "attention"].sum()
    # layers x (QK and PV) x batch x heads x 128 x 128 (one tile), at the kernel's head of 64
    assert attention == 2 * 2 * 2 * 2 * 4 * 128 * 128 * 64


def test_grouped_gemms_are_fitted_last_leaving_the_dense_fit_as_it_was():
    """A mixture of experts' rows fix the grouped GEMMs' rate and energy per FLOP, and move no
    parameter the dense model's rows fix (its routing's many small operations would otherwise
    pull the host costs and kernel rates every dense model is priced with)."""
    dense = synthetic_rows(TRUE, SIZES)
    alone = steptime_fit.fit(dense, "h200", "bf16")
    # measured as the dense fit would price them, with grouped GEMMs of a rate of their own
    moe = {k: alone[k] for k in steptime.PARAMETERS} | {"r_grouped": 2e14, "e_grouped_j": 3e-12}
    wide = {**MOE, "hidden_size": 1024, "intermediate_size": 2048}  # experts bound by FLOPs
    moe_rows = synthetic_rows(moe, [(wide, b, s) for b in (1, 16, 64) for s in (64, 256)])
    both = steptime_fit.fit(dense + moe_rows, "h200", "bf16")
    grouped = steptime.SLOW["grouped"][:2]
    shared = [k for k in steptime.FITTED if k not in grouped and math.isfinite(alone[k])]
    assert {k: both[k] for k in shared} == {k: alone[k] for k in shared}
    assert math.isnan(alone["r_grouped"])
    assert both["r_grouped"] == pytest.approx(2e14, rel=0.02)
    assert both["e_grouped_j"] == pytest.approx(3e-12, rel=0.02)
    assert both["fit_rows"] == len(dense) + len(moe_rows)


def test_a_table_recorded_with_another_transformers_than_its_rows_is_not_packaged(tmp_path):
    """Operation streams recorded with another transformers than the rows were measured with
    can book other kernels than ran (Falcon-7B's attention: math kernels in 5.17, the efficient
    kernel in 5.25), and the held-out misses the intervals carry with them: packaging refuses."""
    from flopmetrics.pipeline import package_calibration

    table = pd.read_parquet(packaged.steptime_path())
    assert table["transformers_recorded"].isin(table["transformers_measured"]).all()
    other = tmp_path / "steptime.parquet"
    table.assign(transformers_recorded="0.0.1").to_parquet(other)
    with pytest.raises(SystemExit, match=r"recorded with transformers 0\.0\.1, its rows measured"):
        package_calibration.write_steptime(other, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_packaged_step_time_table_names_the_revision_that_fitted_it(tmp_path):
    from flopmetrics.pipeline import package_calibration

    table = pd.read_parquet(packaged.steptime_path()).drop(columns="git_revision", errors="ignore")
    fitted, older = tmp_path / "fitted.parquet", tmp_path / "older.parquet"
    table.assign(git_revision="f00d").to_parquet(fitted)
    table.to_parquet(older)  # fitted before tables named their revision: the packaging code's
    assert (
        package_calibration.write_steptime(fitted, tmp_path / "a")["steptime_git_revision"]
        == "f00d"
    )
    info = package_calibration.write_steptime(older, tmp_path / "b")
    assert info["steptime_git_revision"] == git_revision()[0]
