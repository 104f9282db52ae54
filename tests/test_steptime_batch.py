"""The fit's evaluation of many steps at once (:mod:`flopmetrics.analysis.steptime_batch`) is
the step-time model itself: the same energy and time as
:func:`flopmetrics.analysis.steptime.step`, step by step, whatever bounds a step, whichever
slower kinds it has and whether an attention table prices its attention."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from test_models import MOE
from test_steptime import ATTENTION, EVEN, ODD, TRUE, WINDOWED

from flopmetrics.analysis import steptime
from flopmetrics.analysis.steptime_attention import ATTENTION_TABLE
from flopmetrics.analysis.steptime_batch import Steps
from flopmetrics.flops.models import resolve
from flopmetrics.flops.opstream import step_ops


@pytest.fixture(autouse=True)
def _own_cache(flops_cache, monkeypatch):
    monkeypatch.setenv("FLOPMETRICS_CACHE_DIR", str(flops_cache))


def _streams() -> list[dict]:
    """Steps with every kind: unaligned and align2 GEMMs, masked attention, grouped GEMMs,
    mixed precision's casts, the rotary embedding's cat copies."""
    models = [resolve("tiny-llama")[1], ODD, EVEN, WINDOWED]
    out = [
        step_ops(m, 3, 96, precision, p)
        for m in models
        for precision in ("bf16", "bf16-mixed")
        for p in steptime.PASSES
    ]
    moe = {**MOE, "hidden_size": 256, "intermediate_size": 512}
    return out + [step_ops(moe, 3, 96, "bf16", p) for p in steptime.PASSES]


SLOWER = {
    **ATTENTION,
    **{"r_unaligned": 1.5e14, "e_unaligned_j": 2.5e-12, "r_masked": 1e14, "e_masked_j": 4e-12},
    **{"r_grouped": 2e14, "e_grouped_j": 3e-12, "r_align2": 3e14, "e_align2_j": 2e-12},
    **{"strided_speed": 0.35, "cat_speed": 0.3, "strided_energy": 2.5, "cat_energy": 2.8},
}
HOST = ("host_forward_s", "host_backward_s", "host_optimizer_s")


@pytest.mark.parametrize("table", [False, True])
@pytest.mark.parametrize(
    ("scale", "bound"),
    [
        ({}, "host"),
        (dict.fromkeys(HOST, 1e-4), "gpu"),
        ({**dict.fromkeys(HOST, 1e-4), "e_flop_j": 1e3, "e_byte_j": 1e2}, "power"),
        # where a slower kind has no rate, its fallback's or the GEMMs'
        ({"r_masked": math.nan, "e_align2_j": math.nan, "r_attention": math.nan}, "host"),
    ],
)
def test_the_batch_prices_every_step_as_the_model_does(scale, bound, table):
    streams = _streams()
    head = int(max(streams[0]["head"]))
    held = {}
    if table:  # the fused causal kernels of one head size priced as measured
        held[ATTENTION_TABLE] = json.dumps([[d, head, 2, 1, 1, 5e-14, 3e-12] for d in "fb"])
    p = {k: math.nan for k in steptime.PARAMETERS} | TRUE | SLOWER | held
    p.update({k: p[k] * v for k, v in scale.items()})
    rng = np.random.default_rng(0)
    idle, limit = rng.uniform(80, 150, len(streams)), rng.uniform(300, 700, len(streams))
    each = [steptime.step(p, o, i, w) for o, i, w in zip(streams, idle, limit, strict=True)]
    got = np.column_stack(Steps(streams, idle, limit, held).evaluate(p))
    assert got == pytest.approx(np.array([e[:2] for e in each]), rel=1e-12)
    assert bound in {e[2] for e in each}  # the bound the parameters were set for is reached
