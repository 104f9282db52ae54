"""The attention experiment (issue 32): the fused causal attention kernel alone, by head size,
heads, grouping and length, so that the step-time model can price attention at its own rate."""

from __future__ import annotations

import pandas as pd
import pytest

from flopmetrics.contracts.errors import ConfigError
from flopmetrics.contracts.experiments import attention_groups
from flopmetrics.flops import opstream
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
    # the stream names the kernel's head size (heads of 16 run the kernel of 64) on it alone
    assert [op[-1] for op in recorder.ops] == [0, 0, 64]  # K and V expanded to 4 heads first
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
        "head_dims": [16, 32],
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
    files = [RAW.format(d, g, 128) for d in (16, 32) for g in (1, 2)]
    workflow.run(*files)
    t = pd.read_parquet(workflow.workdir / RAW.format(32, 2, 128)).set_index("pass")
    assert set(t.index) == {"forward", "forward_train", "forward_backward", "backward"}
    assert (t["status"] == "ok").all() and t.loc["forward", "gates_passed"]
    assert t.loc["forward", "kv_heads"] == 2 and t.loc["forward", "head_dim"] == 32
    assert t.loc["backward", "derived"] and t.loc["backward", "flops"] > t.loc["forward", "flops"]
    config["attention"]["seq_len"] = [128, 256]
    workflow.write_config(config)
    new = [RAW.format(d, g, 256) for d in (16, 32) for g in (1, 2)]
    assert workflow.scheduled(*files, *new) == {"profile_attention": 4, "total": 4}
