"""Operation classes (flopmetrics.flops.operations) and a step recorded and replayed one class at a
time (flopmetrics.workloads.optape), on a small Llama on this CPU: the classes cut the step
without loss or overlap, and what each replays is what the step ran."""

from __future__ import annotations

import pytest
import torch

from flopmetrics.flops.counted import count_flops
from flopmetrics.flops.models import build_causal_lm, resolve
from flopmetrics.flops.operations import CLASSES, by_class, op_class, operator_name
from flopmetrics.workloads import optape

aten = torch.ops.aten


@pytest.mark.parametrize(
    ("op", "cls"),
    [
        (aten.mm.default, "gemm"),
        ("aten::addmm", "gemm"),
        (aten.bmm.default, "gemm"),
        (aten._scaled_dot_product_flash_attention_for_cpu_backward.default, "attention"),
        ("aten._efficient_attention_backward", "attention"),
        (aten.silu.default, "elementwise"),
        (aten._log_softmax.default, "elementwise"),
        (aten.native_layer_norm.default, "elementwise"),
        (aten.embedding.default, "other"),
        (aten._to_copy.default, "other"),
        (aten.cat.default, "other"),
        ("c10d.allreduce_.default", "communication"),
        ("_c10d_functional.all_gather_into_tensor", "communication"),
    ],
)
def test_each_operator_has_the_class_of_what_it_computes(op, cls):
    assert op_class(op) == cls
    # inside the optimizer's step or an attention call, the context decides
    assert op_class(op, in_optimizer=True) == "optimizer"
    assert op_class(op, in_attention=True) == "attention"


def test_operator_names_drop_namespace_and_overload():
    assert operator_name(aten.mm.default) == operator_name("aten::mm") == "mm"
    assert operator_name("c10d.allreduce_.default") == "c10d.allreduce_"
    assert by_class({"aten.mm": 6, "aten.bmm": 4, "aten.mul": 1}) == {
        **dict.fromkeys(CLASSES, 0),
        "gemm": 10,
        "elementwise": 1,
    }


def small_llama():
    _, fields = resolve("llama-3.2-1b")
    fields = {
        **fields,
        "num_hidden_layers": 2,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "vocab_size": 256,
    }
    torch.manual_seed(0)
    model = build_causal_lm(fields, "sdpa", "cpu")
    return model, torch.optim.AdamW(model.parameters(), lr=1e-5)


def train_step(model, optimizer, backend=None):
    ids = torch.randint(0, 256, (2, 24), generator=torch.Generator().manual_seed(1))

    def step():
        model.zero_grad(set_to_none=True)
        if backend is None:
            loss = model(input_ids=ids, labels=ids).loss
        else:
            with torch.nn.attention.sdpa_kernel(backend):
                loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        return loss

    step()  # the optimizer's state exists before the recording
    return step


@pytest.mark.parametrize("math_path", [False, True], ids=["fused attention", "math path"])
def test_the_classes_replay_exactly_the_steps_counted_flops(math_path):
    model, optimizer = small_llama()
    backend = torch.nn.attention.SDPBackend.MATH if math_path else None
    step = train_step(model, optimizer, backend)
    whole = count_flops(step)
    tape = optape.record(step, "cpu", optimizer)
    replays = tape.replays()
    assert set(replays) == {"gemm", "attention", "elementwise", "optimizer", "other"}
    counted = {c: count_flops(fn).total for c, fn in replays.items()}
    # every product the step ran is replayed once, in its class: nothing lost, nothing twice
    assert sum(counted.values()) == whole.total
    assert counted["elementwise"] == counted["optimizer"] == counted["other"] == 0
    # attention is attention whichever kernels run it: on the math path its batched products
    # (forward 2, backward 4) are attention's, not gemm's
    batched = sum(v for op, v in whole.by_op.items() if "bmm" in op)
    if math_path:
        assert counted["attention"] == batched > 0
        assert tape.counts()["attention"] > 6  # softmax, masks and copies inside the call too
    else:
        assert counted["attention"] == whole.attention > 0
    # the optimizer's operations are all the optimizer's: AdamW touches every parameter
    ops = tape.classes()["optimizer"]
    params = {p.data_ptr() for p in model.parameters()}
    touched = {t.data_ptr() for op in ops for t in op.args[0:1] if isinstance(t, torch.Tensor)} | {
        t.data_ptr()
        for op in ops
        for arg in op.args[0:1]
        if isinstance(arg, (list, tuple))
        for t in arg
    }
    assert params <= touched


def test_a_replay_runs_the_same_operations_again_and_host_reads_are_left_out():
    model, optimizer = small_llama()
    step = train_step(model, optimizer)
    tape = optape.record(step, "cpu", optimizer)
    replays = tape.replays()
    first = count_flops(replays["gemm"]).by_op
    assert count_flops(replays["gemm"]).by_op == first  # repeatable: windows of it can be metered
    for fn in replays.values():
        fn()
    assert all(torch.isfinite(p).all() for p in model.parameters())
    # nothing the step ran on the host (a scalar read) is in any class
    names = {operator_name(op.func) for op in tape.ops}
    assert not names & optape.HOST_READS


def _state(model, optimizer) -> list[torch.Tensor]:
    """The tensors a train step moves, in place: a snapshot's copies can be put back into them
    without replacing the tensors the tape holds."""
    moments = [t for s in optimizer.state.values() for t in s.values() if torch.is_tensor(t)]
    return [*model.parameters(), *moments]


def test_replaying_the_whole_tape_is_the_step_again_reading_what_it_just_computed():
    """Each operation of a replay reads what its producer wrote in the same replay: two replays
    train as two steps do. A replay reading the recorded inputs would apply the first step's
    gradients twice (and read cold memory where the step reads warm). SGD: AdamW on the CPU
    corrects its moments by a step count read on the host, which a replay cannot move."""
    model, _ = small_llama()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)  # gradients that move
    step = train_step(model, optimizer)
    state = _state(model, optimizer)
    start = [t.clone() for t in state]
    tape = optape.record(step, "cpu", optimizer)
    bound = sum(s is not None for op in tape.ops for s in op.sources)
    assert bound > len(tape.ops)  # most inputs were written by an earlier operation of the step

    def twice(fn) -> list[torch.Tensor]:
        with torch.no_grad():
            torch._foreach_copy_(state, start)
        fn()
        fn()
        return [t.clone() for t in state]

    stepped, replayed = twice(step), twice(tape.replay())
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(stepped, replayed, strict=True))
    # the test can fail: replaying the recorded inputs (no dataflow) trains otherwise

    def recorded():
        with torch.no_grad():
            for op in tape.ops:
                op()

    stale = twice(recorded)
    assert not all(torch.allclose(a, b, atol=1e-6) for a, b in zip(stepped, stale, strict=True))


def test_the_ncu_capture_runs_the_step_then_each_class_and_records_their_counts():
    from flopmetrics.ncu.capture import llm_class_passes

    record = {}
    passes = llm_class_passes("tiny-llama:0:2:16", "fp32", "cpu", record)
    assert list(passes)[0] == "train_step"
    assert [p.removeprefix("class:") for p in list(passes)[1:]] == list(record["operations"])
    counted = record["counted_by_class"]
    assert sum(counted.values()) == sum(record["flop_counter"].values()) > 0
    assert record["parameters"] > 0 and "_local_scalar_dense" not in record["operations"]
