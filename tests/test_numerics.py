"""No measurement on non-finite numbers: the failure that put NaN weights under the fp16
reference rows, reproduced on the CPU, and the checks that now catch it."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from conftest import job_spec

from flopmetrics.analysis import calibration
from flopmetrics.jobs import run as run_module
from flopmetrics.jobs.run import run
from flopmetrics.workloads.causal_lm import CausalLMWorkload, LMConfig

LLM = {
    "model": "tiny-llama",
    "batch_size": 2,
    "seq_len": 16,
    "passes": ["forward", "forward_train", "forward_backward", "train_step"],
    "attn_implementation": "sdpa",
    "attention_flops": "full",
}


def tiny(precision: str) -> CausalLMWorkload:
    return CausalLMWorkload("cpu", precision, LMConfig.of(LLM))


def nan_parameters(wl) -> int:
    return sum(int(torch.isnan(p).sum()) for p in wl.model.parameters())


def test_old_fp16_adamw_turns_weights_into_nan():
    """What the old job did: pure fp16 with AdamW's default eps (1e-8, which is 0 in fp16)."""
    wl = tiny("fp16")
    wl.optimizer = torch.optim.AdamW(
        [p for p in wl.model.parameters() if p.requires_grad], lr=1e-5, eps=1e-8
    )
    step = wl.steps()["train_step"]
    for _ in range(4):
        step()
    assert nan_parameters(wl) > wl.parameters // 2


def test_fp16_train_step_stays_finite_and_restore_gives_the_starting_weights():
    wl = tiny("fp16")
    assert wl.optimizer.defaults["eps"] == 1e-4  # representable in fp16
    step = wl.steps()["train_step"]
    for _ in range(4):
        step()
    assert nan_parameters(wl) == 0
    assert any(
        not torch.equal(p, s) for p, s in zip(wl.model.parameters(), wl._start, strict=False)
    )
    wl.restore()
    assert all(torch.equal(p, s) for p, s in zip(wl.model.parameters(), wl._start, strict=False))


@pytest.mark.parametrize("precision", ["fp16", "fp16-mixed"])
def test_fp16_jobs_are_finite_or_say_which_tensor_is_not(precision):
    rows, _ = run(
        job_spec("llm", LLM, precision=precision, measure={"repeats": 2, "min_window_s": 0.05}),
        progress=lambda m: None,
    )
    assert set(rows["numerics"]) <= {"finite", "non_finite"}
    bad = rows[rows["numerics"] == "non_finite"]
    assert (bad["status"] == "non_finite").all() and bad["numerics_first_nonfinite"].str.len().gt(
        0
    ).all()
    good = rows[rows["numerics"] == "finite"]
    assert (good["status"] == "ok").all() and good["gate_finite"].all()
    # the passes that do not update weights compute on the finite starting weights
    assert set(rows.loc[rows["pass"].isin(["forward", "forward_train"]), "numerics"]) == {"finite"}
    if precision == "fp16-mixed":
        assert rows["precision"].eq("fp16-mixed").all()


def test_a_nan_weight_fails_the_gate_names_the_tensor_and_stays_out_of_calibration(monkeypatch):
    real_build = run_module.build

    def poisoned(*args):
        wl = real_build(*args)
        with torch.no_grad():
            wl.model.weights[0][0, 0] = math.nan
            wl._start[0][0, 0] = math.nan  # the starting weights themselves are bad
        return wl

    monkeypatch.setattr(run_module, "build", poisoned)
    rows, _ = run(job_spec("mlp", {"n": 2, "d": 8, "m": 4}), progress=lambda m: None)
    assert (rows["numerics"] == "non_finite").all() and not rows["gate_finite"].any()
    assert not rows["gates_passed"].any() and (rows["status"] == "non_finite").all()
    assert (
        rows.set_index("pass").loc["forward", "numerics_first_nonfinite"]
        == "forward: output of forward"
    )
    usable = calibration.usable(
        rows.assign(experiment="llm", gpu_label="h100", flops=1e9, energy_j_per_iter=1.0),
        ["llm"],
        None,
    )
    assert usable.empty


def test_rows_without_the_check_are_unknown_and_not_trusted():
    from flopmetrics.energy import gates

    old = pd.DataFrame(
        [{"status": "ok", "precision": "fp16", "gpu_label": "cpu", "derived": False}]
    )
    out = gates.apply(old)
    assert (
        out.loc[0, "numerics"] == "unknown"
        and not out.loc[0, "gate_finite"]
        and not out.loc[0, "gates_passed"]
    )


def test_an_fp16_product_that_overflows_is_caught():
    """Large values overflow fp16 (max 65504): the product is inf, and the row says so."""
    rows, _ = run(
        job_spec(
            "matmul", {"size": 64}, precision="fp16", measure={"repeats": 1, "min_window_s": 0.01}
        ),
        progress=lambda m: None,
    )
    assert rows["numerics"].eq("finite").all()

    real_build = run_module.build

    def huge(*args):
        wl = real_build(*args)
        wl.a.fill_(300.0)  # 64 * 300 * 300 > 65504
        wl.b.fill_(300.0)
        return wl

    import flopmetrics.jobs.run as job

    mp = pytest.MonkeyPatch()
    mp.setattr(job, "build", huge)
    try:
        rows, _ = run(
            job_spec(
                "matmul",
                {"size": 64},
                precision="fp16",
                measure={"repeats": 1, "min_window_s": 0.01},
            ),
            progress=lambda m: None,
        )
    finally:
        mp.undo()
    assert rows["numerics"].eq("non_finite").all()
    assert rows.loc[0, "numerics_first_nonfinite"] == "forward: output of forward"
