"""The serving workload (prefill and decode from a static KV cache) and its per-token rows."""

from __future__ import annotations

import math
import time

import pandas as pd
import pytest
import torch
from conftest import job_spec

from flopmetrics.contracts.errors import ModelConfigError
from flopmetrics.energy import gates
from flopmetrics.jobs import launch
from flopmetrics.jobs.protocol import PassSpec
from flopmetrics.jobs.run import run
from flopmetrics.workloads.inference import build

SERVING = {"batch_size": 2, "prompt_len": 12, "output_len": 6, "passes": ["prefill", "decode"]}


@pytest.mark.parametrize("model", ["tiny-llama", "tiny-qwen2", "tiny-gpt2"])
def test_prefill_and_decode_compute_what_a_full_forward_does(model):
    """The cache is written where it should be and attention reads the positions it should:
    a decode step's logits are those of the whole sequence run at once, window after window."""
    w = build("cpu", "fp32", {"model": model, **SERVING}, seed=0)
    steps, c = w.steps(), w.config
    first, again = steps["decode"](), steps["decode"]()
    prompt_logits = steps["prefill"]()
    sequence = [w.prompt_ids, *[w.next_ids] * (c.context_len - c.prompt_len + 1)]
    w.model.set_attn_implementation("eager")  # the reference: no cache, no slicing
    with torch.no_grad():
        whole = w.model(input_ids=torch.cat(sequence, dim=1)).logits[:, -1:]
        prompt = w.model(input_ids=w.prompt_ids).logits[:, -1:]
    assert torch.equal(first, again)  # every iteration does the same work
    assert torch.allclose(first, whole, atol=1e-5)
    assert torch.allclose(prompt_logits, prompt, atol=1e-5)


def test_a_model_with_sliding_window_attention_is_refused_naming_it():
    mistral = {
        "name": "tiny-mistral",
        "model_type": "mistral",
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 256,
        "sliding_window": 8,
    }
    with pytest.raises(ModelConfigError, match=r"'tiny-mistral': layers \[0, 1\] .*sliding"):
        build("cpu", "fp32", {"model": mistral, **SERVING}, seed=0)


def test_a_serving_job_writes_per_token_rows():
    rows, _ = run(job_spec("inference", {"model": "tiny-llama", **SERVING}))
    rows = rows.set_index("pass")
    b, p, c = 2, 12, 12 + 6 // 2
    assert rows.loc["prefill", "tokens"] == b * p and rows.loc["decode", "tokens"] == b
    assert rows.loc["decode", "context_len"] == c
    # a causal prompt attends to about half its scores; a decode step to all it reads
    assert rows.loc["prefill", "flops"] < rows.loc["prefill", "flops_counted"]
    assert rows.loc["decode", "flops"] == rows.loc["decode", "flops_counted"]
    # bytes from the config alone: tied fp32 weights, keys and values of 2 layers x 2 heads x 16
    weights = 4 * (256 * 64 + 2 * (4 * 64 * 64 // 2 + 2 * 64 * 16 * 2 + 3 * 64 * 128 + 2 * 64) + 64)
    kv = 2 * 2 * 2 * 16 * 4
    assert rows.loc["decode", "bytes_per_token"] == (weights + b * (c + 1) * kv) / b
    assert rows.loc["prefill", "bytes_per_token"] == (weights + b * p * kv) / (b * p)
    expected = rows["tokens"] / rows["time_per_iter_s"]
    assert rows["tokens_per_s"].tolist() == pytest.approx(expected.tolist())
    assert math.isnan(rows.loc["prefill", "time_per_output_token_s"])
    assert rows["numerics"].eq("finite").all() and rows["gates_passed"].all()


def test_the_bandwidth_gate_fails_a_pass_faster_than_memory_allows():
    rows = pd.DataFrame({"status": "ok", "bandwidth_fraction": [0.4, 1.3, math.nan]})
    assert gates.apply(rows)["gate_bandwidth"].tolist() == [True, False, True]


class HostAndDevice:
    """The edge a launch check reads: work queued on a 'device' that a synchronize waits for."""

    device, queued = "cpu", 0.0

    def synchronize(self):
        time.sleep(self.queued)
        self.queued = 0.0


def test_serving_passes_are_judged_for_graphs_each_on_its_own():
    monitor = HostAndDevice()

    def prefill():  # queues long device work at once: bound by the device
        monitor.queued = 0.2

    def decode():  # the host issues slowly, the device keeps up: launch-bound
        time.sleep(0.2)

    specs = [
        PassSpec(n, s, replayed=lambda: None, auto=True)
        for n, s in (("prefill", prefill), ("decode", decode))
    ]
    chosen = {s.name: s.replayed is not None for s in launch.choose(monitor, specs)}
    assert chosen == {"prefill": False, "decode": True}
