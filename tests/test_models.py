"""Any Hugging Face causal LM: a GPT-2 and a Qwen2 (GQA) preset run as jobs on the CPU, and their
FLOPs and parameters come from the built model, not from a Llama formula."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import job_spec

from flopmetrics.analysis.co2e import estimate, workload_flops
from flopmetrics.contracts.errors import ModelConfigError
from flopmetrics.flops import causal_lm as model_flops
from flopmetrics.flops import transformer
from flopmetrics.flops.models import counting_attention, resolve, summary, transformer_shape
from flopmetrics.jobs import run as job


@pytest.mark.parametrize("preset", ["tiny-gpt2", "tiny-qwen2"])
def test_a_non_llama_model_runs_as_a_job_and_its_flops_are_counted(preset):
    spec = job_spec(
        "llm",
        {
            "model": preset,
            "batch_size": 2,
            "seq_len": 16,
            "passes": ["forward", "forward_train", "forward_backward", "train_step"],
            "attn_implementation": "sdpa",
            "attention_flops": "full",
        },
        measure={"repeats": 2, "min_window_s": 0.05},
        energy={"meter": "none", "idle_baseline_s": 0.0},
    )
    rows, _ = job.run(spec, progress=lambda m: None)
    rows = rows.set_index("pass")
    assert (rows["status"] == "ok").all()
    # the job's headline FLOPs are what the meta-device count gives for a configuration nobody ran
    fields = resolve(preset)[1]
    table = model_flops.pass_flops(fields, 2, 16)
    assert rows.loc["forward", "flops"] == table["forward"]
    # backward attention at 2x its forward whichever path ran it: the math path (GPT-2's masked
    # attention on this CPU, fp32 on GPUs) or a fused kernel (Qwen2 on this CPU)
    for p in ("forward_backward", "train_step", "backward"):
        assert rows.loc[p, "flops"] == table[p], p
    assert rows.loc["forward", "parameters"] == model_flops.parameters(resolve(preset)[1])


def test_gpt2_and_qwen_presets_give_their_published_sizes_and_co2e():
    # published parameter counts: GPT-2 small 124,439,808; Qwen2.5-0.5B 494,032,768 (tied
    # embeddings)
    assert summary(resolve("gpt2")[1])["parameters"] == 124_439_808
    assert model_flops.parameters(resolve("qwen2.5-0.5b")[1]) == 494_032_768
    f = workload_flops("gpt2", 8, 1024, "forward")
    # every GEMM of GPT-2 at 8 x 1024 tokens, and full attention: an independent closed form
    T, h, L, V = 8 * 1024, 768, 12, 50257
    gemm = L * (2 * T * h * 3 * h + 2 * T * h * h + 2 * 2 * T * h * 4 * h) + 2 * T * h * V
    attention = L * 4 * 8 * 12 * 1024 * 1024 * 64
    assert f == gemm + attention
    out = estimate(
        [
            {
                "name": "gpt2",
                "model": "gpt2",
                "tokens": 1e9,
                "batch_size": 8,
                "seq_len": 1024,
                "target": "h100_sxm",
                "precision": "bf16",
                "pass": "train_step",
            }
        ],
        pd.DataFrame(
            columns=["gpu_label", "precision", "pass", "ee_flops_per_j", "ee_lo", "ee_hi"]
        ),
        1.58,
        480,
    ).iloc[0]
    assert out["flops"] > 0 and out["energy_j_datasheet_bound"] > 0  # no KeyError 'hidden_size'


def test_an_architecture_without_sdpa_is_counted_on_its_eager_attention():
    """BLOOM has no sdpa in transformers: its count (and `flopmetrics estimate`, which needs it)
    raised transformers' ValueError. Counted on eager attention, the score matrix is booked
    full: 4 b s^2 h per layer forward, backward twice the forward."""
    bloom = {"model_type": "bloom", "hidden_size": 32, "n_layer": 2, "n_head": 2, "vocab_size": 64}
    assert counting_attention(bloom) == "eager"
    assert counting_attention(resolve("llama-3.2-1b")[1]) == "sdpa"
    forward, both, _, attention = model_flops._counted(model_flops._key(bloom), 2, 16)
    assert attention == 2 * 4 * 2 * 16**2 * 32
    assert both > 2 * forward


def test_llama_counted_on_meta_equals_the_closed_form_forward():
    fields = resolve("llama-3.2-1b")[1]
    shape = transformer_shape(fields)
    closed = transformer.pass_flops(shape, 8, 1024, summary(fields)["parameters"])
    counted = model_flops.pass_flops(fields, 8, 1024)
    assert counted["forward"] == closed["forward"]["total"]
    # backward: attention at 2x its forward, as the counter books it on the GPU and the CPU (one
    # convention) and as the closed form has it
    assert counted["backward"] == closed["backward"]["total"]
    assert counted["train_step"] == closed["train_step"]["total"]


@pytest.mark.parametrize("experiment", ["llm", "mlp"])
def test_the_backward_count_is_what_a_backward_alone_counts(experiment):
    """counted() books the backward as forward_backward minus forward_train; counting a backward
    on its own (one more forward and backward per configuration) gives the same, op by op."""
    import torch

    from flopmetrics.flops.counted import count_flops
    from flopmetrics.workloads import causal_lm, mlp

    work = (
        {
            "model": "tiny-llama",
            "batch_size": 2,
            "seq_len": 32,
            "attn_implementation": "sdpa",
            "attention_flops": "full",
            "passes": ["forward", "forward_train", "forward_backward"],
        }
        if experiment == "llm"
        else {"n": 3, "d": 64, "m": 16}
    )
    wl = {"llm": causal_lm.build, "mlp": mlp.build}[experiment]("cpu", "fp32", work, 0)
    counted = wl.counted()
    with wl.context():
        loss = wl.loss()
    alone = count_flops(loss.backward)
    assert counted["backward"].total == alone.total > 0
    assert counted["backward"].by_op == {op: v for op, v in alone.by_op.items() if v}
    assert counted["forward_backward"].total == counted["forward_train"].total + alone.total
    assert torch.isfinite(loss)


def test_a_models_size_is_kept_on_disk_and_read_without_importing_torch(tmp_path):
    """Every Snakemake start checks the configured models; a size built once is read back from
    the cache (per config and transformers and torch version) without torch or transformers."""
    import json
    import os
    import subprocess
    import sys

    probe = (
        "import sys, json; from flopmetrics.flops.models import resolve, summary; "
        "size = summary(resolve('tiny-llama')[1]); "
        "print(json.dumps([size, 'torch' in sys.modules, 'transformers' in sys.modules]))"
    )
    env = {**os.environ, "FLOPMETRICS_CACHE_DIR": str(tmp_path)}

    def run():
        out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True)
        return json.loads(out.stdout)

    built, built_torch, _ = run()
    read, read_torch, read_transformers = run()
    assert built == read == summary(resolve("tiny-llama")[1]) and built["parameters"] > 0
    assert built_torch and not read_torch and not read_transformers
    assert len(list(tmp_path.glob("models/*.json"))) == 1
    # a different model is a different entry, built
    other = dict(resolve("tiny-llama")[1], num_hidden_layers=3)
    assert summary(other)["parameters"] > built["parameters"]


def test_rows_written_before_one_attention_convention_are_read_in_it():
    """A reference row of 2026-11 booked fused attention's backward at 2.5x its forward (bf16)
    where fp32's math path booked 2x; read now, the same configuration has one count in both,
    the closed form agrees, and efficiency follows the corrected FLOPs."""
    from flopmetrics.analysis.attention import COLUMN, one_convention
    from flopmetrics.analysis.merge import read_job_table

    ref = Path(__file__).resolve().parents[1] / "resources/reference/h200/raw/llm/h200/llama-3.2-1b"
    raw = {
        p: pd.read_parquet(ref / p / "b8_s1024.parquet").set_index("pass") for p in ("bf16", "fp32")
    }
    read = {p: read_job_table(ref / p / "b8_s1024.parquet").set_index("pass") for p in raw}
    assert COLUMN not in raw["bf16"]  # written before the convention
    attention = raw["bf16"].loc["forward", "flops_counted_attention"]
    assert raw["bf16"].loc["backward", "flops_counted_attention"] == 2.5 * attention
    for p in ("backward", "forward_backward", "train_step"):
        assert read["bf16"].loc[p, "flops"] == raw["bf16"].loc[p, "flops"] - attention / 2
        assert read["bf16"].loc[p, "flops"] == read["fp32"].loc[p, "flops"]
        # the closed form moved by as much (they differ by the rotary product alone, as before)
        gap = read["bf16"].loc[p, "flops"] - read["bf16"].loc[p, "flops_analytic"]
        assert gap == raw["bf16"].loc[p, "flops"] - raw["bf16"].loc[p, "flops_analytic"]
        assert read["bf16"].loc[p, "flops_per_j"] == pytest.approx(
            read["bf16"].loc[p, "flops"] / raw["bf16"].loc[p, "energy_j_per_iter"]
        )
    assert read["bf16"].loc["backward", "flops_counted_attention"] == 2 * attention
    for p in ("forward", "optimizer"):
        assert read["bf16"].loc[p, "flops"] == raw["bf16"].loc[p, "flops"]
    # a row in today's convention is left as it is; a causal headline loses half the excess
    again = one_convention(read["bf16"].reset_index())
    assert again["flops"].tolist() == read["bf16"]["flops"].tolist()
    causal = raw["bf16"].reset_index()
    causal["flops_source"] = causal["flops_source"].str.replace("full", "causal")
    causal = one_convention(causal).set_index("pass")
    assert causal.loc["backward", "flops"] == raw["bf16"].loc["backward", "flops"] - attention / 4


# a mixture of experts and the same model with one MLP of the experts' width
MOE = {
    "model_type": "mixtral",
    "hidden_size": 64,
    "intermediate_size": 96,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "num_local_experts": 4,
    "num_experts_per_tok": 2,
    "vocab_size": 128,
}


def test_a_mixture_of_experts_counts_the_experts_each_token_is_routed_to():
    """transformers runs the experts as grouped GEMMs (``torch._grouped_mm``), which PyTorch's
    counter has no formula for: their FLOPs vanished (and the fp32 meta build refused them). A
    token routed to k experts runs k MLPs (3 products of h x i) and the router (h x experts)."""
    dense = {**MOE, "model_type": "mistral"}
    b, s, (h, i, layers, experts, k) = 2, 16, (64, 96, 2, 4, 2)
    moe, one = model_flops.pass_flops(MOE, b, s), model_flops.pass_flops(dense, b, s)
    extra = layers * b * s * (2 * 3 * h * i * (k - 1) + 2 * h * experts)
    assert moe["forward"] - one["forward"] == extra
    assert moe["backward"] - one["backward"] == 2 * extra


def test_a_model_that_cannot_be_built_or_run_without_weights_is_named_in_the_error():
    """Such failures came out as torch's words alone (``Tensor.item() cannot be called on meta
    tensors``) or as a traceback; now the model type and what flopmetrics was doing."""
    xlm = {"model_type": "xlm", "emb_dim": 32, "n_layers": 1, "n_heads": 2, "vocab_size": 64}
    with pytest.raises(ModelConfigError, match="'xlm' code fails on the meta device.*item"):
        model_flops.pass_flops(xlm, 2, 16)
    unbuildable = {"model_type": "nemotron", "hidden_size": 64, "num_attention_heads": 4}
    with pytest.raises(ModelConfigError, match="cannot build a causal LM.*TypeError"):
        model_flops.pass_flops({**unbuildable, "num_hidden_layers": 1, "vocab_size": 64}, 2, 16)


def test_a_size_the_config_leaves_unset_is_counted_only_not_a_crash():
    """GPT-Neo's config holds ``intermediate_size: None`` (its code makes the MLP 4 x hidden):
    the closed form, reading None as a size, stopped the GPU job with a TypeError. Such a model
    is counted only, like one whose config lacks the field; its workload has no analytic rows."""
    from flopmetrics.workloads.causal_lm import CausalLMWorkload, LMConfig

    neo = {"model_type": "gpt_neo", "hidden_size": 64, "num_layers": 2, "num_heads": 4}
    neo |= {"vocab_size": 128, "max_position_embeddings": 64, "attention_types": [[["global"], 2]]}
    with pytest.raises(ModelConfigError, match="gpt_neo leaves intermediate unset"):
        transformer_shape(neo)
    config = LMConfig.of(
        {"model": {"name": "neo", **neo}, "batch_size": 2, "seq_len": 16, "passes": ["forward"]}
        | {"attn_implementation": "eager"}
    )
    assert CausalLMWorkload("cpu", "fp32", config).analytic() == {}


def test_a_mask_a_model_builds_itself_is_all_ones_on_the_meta_device():
    """BioGPT (and BART's decoder, Pegasus, ...) build an all-ones padding mask where none is
    given; transformers' test of it read its values, which the meta device has none of, so no
    FLOPs could be counted. A weightless pass has no padding: counted as the closed form says
    (QKV, output, two MLP products, the full score matrix, the LM head)."""
    bio = {"model_type": "biogpt", "hidden_size": 64, "intermediate_size": 96}
    bio |= {"num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 128}
    b, s, (h, i, layers, vocab) = 2, 16, (64, 96, 2, 128)
    tokens = b * s
    layer = 2 * tokens * h * 4 * h + 2 * 2 * tokens * h * i + 4 * b * s * s * h
    assert model_flops.pass_flops(bio, b, s)["forward"] == layers * layer + 2 * tokens * h * vocab


def test_the_workload_a_job_built_before_is_freed_before_the_next_model_is_built():
    """A worker measures configuration after configuration, handing each workload to the next
    job (:class:`flopmetrics.jobs.run.Held`). A workload sits in reference cycles, so dropping
    its last reference left its weights and optimizer state alive beside the next model until
    Python's collector happened to run (on a GPU: an `oom` row for a model that fits)."""
    import gc
    import weakref

    from flopmetrics.workloads import causal_lm

    def work(model):
        return {"model": model, "batch_size": 2, "seq_len": 16, "passes": ["train_step"]}

    collecting = gc.isenabled()
    gc.disable()  # what the collector might do by chance is not what is tested
    try:
        first = causal_lm.build("cpu", "fp32", work({"name": "tiny-moe", **MOE}), 0)
        first.steps()["train_step"]()  # the optimizer's state exists
        alive = weakref.ref(first)
        held = [first]  # as the worker holds it: the only reference, handed over
        del first
        causal_lm.build("cpu", "fp32", work("tiny-llama"), 0, held.pop())
        assert alive() is None
    finally:
        if collecting:
            gc.enable()
