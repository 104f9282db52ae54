"""Replaying a pass from a CUDA graph (config ``launch: cuda_graph``).

An eager pass launches each kernel from Python. Where launching is slower than the GPU (a
1B-parameter model at batch 8 and 256 tokens in 16-bit), the GPU waits between kernels and the
pass's time and energy follow the host's speed, which varies between windows
(``benchmarks/host_jitter.py``, ``docs/benchmarks.md``). A graph replays the same kernels with
one launch, so what is measured is the GPU's own work.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch

WARMUP = 1  # eager iterations on a side stream before capture: first-use work (cuBLAS handles,
# the allocator's growth, lazily created optimizer and scaler state) must not be captured; the
# replay is then warmed up like an eager pass


@contextlib.contextmanager
def replayed(step: Callable[[], object], pool=None) -> Iterator[Callable[[], object]]:
    """Capture one iteration of ``step`` in a CUDA graph and yield a call that replays it and
    returns what the captured iteration returned (its tensors hold each replay's result). The
    graph and its memory pool are freed on exit. Graphs given one ``pool``
    (``torch.cuda.graph_pool_handle()``) share its memory: only for graphs never replayed at
    the same time whose results nobody keeps."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(WARMUP):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, pool=pool):
        out = step()

    def replay():
        graph.replay()
        return out

    try:
        yield replay
    finally:
        torch.cuda.synchronize()
        out = graph = None  # the replay closure's cells: the graph and its pool are freed


UNMASKED_SDPA = "flopmetrics_sdpa_unmasked"


@contextlib.contextmanager
def unmasked_sdpa(model) -> Iterator[None]:
    """While open, a Hugging Face model with ``attn_implementation='sdpa'`` calls SDPA with no
    mask and ``is_causal=True``, as it does eager on unpadded inputs.

    Eager, transformers checks on the host that the inputs hold no packed sequences and then
    lets SDPA apply causality itself. Under graph capture it cannot read a tensor, so it
    builds a mask instead, and other, slower kernels run (masked attention, mask copies;
    ``benchmarks/graph_kernels.py``). Our inputs
    are never padded or packed, so the unmasked call is the eager one."""
    # late: transformers takes seconds to import; workloads that are no HF model never need it
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if model.config._attn_implementation != "sdpa":
        yield
        return
    # registered without a mask function: transformers then creates no mask at all
    AttentionInterface.register(UNMASKED_SDPA, sdpa_attention_forward)
    model.set_attn_implementation(UNMASKED_SDPA)
    try:
        yield
    finally:
        model.set_attn_implementation("sdpa")


def capturable_optimizer(optimizer: torch.optim.Optimizer) -> None:
    """Let ``optimizer`` run inside a graph: its step count kept on the device (``capturable``),
    also for state it already has."""
    for group in optimizer.param_groups:
        group["capturable"] = True
        for p in group["params"]:
            state = optimizer.state.get(p, {})
            if "step" in state and state["step"].device != p.device:
                state["step"] = state["step"].to(p.device)
