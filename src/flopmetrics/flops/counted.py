"""FLOPs counted by PyTorch, behind one function each so later fixes land in one place.

``count_flops`` uses ``torch.utils.flop_counter.FlopCounterMode``: it counts matrix products
(mm, addmm, bmm, convolutions, attention) at ``2*M*N*K`` and nothing elementwise. Two fixes
are applied through its ``custom_mapping``:

* **GQA-safe attention.** Older PyTorch (e.g. 2.11) asserts when key/value have fewer heads
  than the query (grouped-query attention, as in Llama 3). The kernels broadcast each KV head
  to its query group, so we count with KV heads expanded to the query's head count.
* **CPU attention is counted.** ``aten._scaled_dot_product_flash_attention_for_cpu`` (and its
  backward) has no formula upstream, so attention FLOPs vanished on CPU.

* **One attention convention for every precision.** Attention is counted in full (all
  ``s_q x s_k`` scores) and its backward at twice its forward (four products against two): what
  the algorithm needs, whichever kernel runs it. Upstream books the fused kernels' backward
  (flash, memory-efficient, cuDNN: what fp16 and bf16 run) at 2.5x, the products its
  recomputation of the scores adds, while the math path (fp32) is booked at 2x from its batched
  products, so the same step had two counts. What a kernel executed, recomputation included, is
  Nsight Compute's to say (``flopmetrics.ncu``).

* **Grouped GEMMs are counted.** ``aten._grouped_mm`` (a mixture of experts' experts, as
  transformers runs them: every token's rows against its experts' weights) has no formula
  upstream, so the experts' FLOPs vanished, in a GPU job's count as on the meta device. Each
  row of a group meets one matrix, so the FLOPs are ``2*M*N*K`` summed over the groups: the
  routed tokens times their experts, whichever experts the router picked.

The ``causal`` convention halves the attention part (a causal mask skips about half of the score
matrix). The attention share is reported separately so either convention can be applied.

``profiler_flops`` reproduces the thesis's ``torch.profiler(with_flops=True)`` count for
comparison only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.profiler as tp
from torch.utils import flop_counter as fc
from torch.utils.flop_counter import FlopCounterMode

from ..contracts.vocabulary import ATTENTION_BACKWARD_PER_FORWARD

aten = torch.ops.aten

ATTENTION_FLOPS = ("full", "causal")  # config llm.attention_flops


def _expand_kv(query_shape, key_shape, value_shape):
    h_q, h_kv = query_shape[1], key_shape[1]
    if h_kv != h_q and h_kv > 0 and h_q % h_kv == 0:
        key_shape = (key_shape[0], h_q, *key_shape[2:])
        value_shape = (value_shape[0], h_q, *value_shape[2:])
    return key_shape, value_shape


# FlopCounterMode wraps custom formulas so they receive shapes, not tensors
def _gqa_sdpa(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    key_shape, value_shape = _expand_kv(query_shape, key_shape, value_shape)
    return fc.sdpa_flop_count(query_shape, key_shape, value_shape)


def _gqa_sdpa_backward(
    grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs
) -> int:
    # twice the forward: the gradients of the two products, no recomputation (module docstring)
    return ATTENTION_BACKWARD_PER_FORWARD * _gqa_sdpa(query_shape, key_shape, value_shape)


def _attention_mapping() -> dict:
    forward_ops = [
        "_scaled_dot_product_efficient_attention",
        "_scaled_dot_product_flash_attention",
        "_scaled_dot_product_cudnn_attention",
        "_scaled_dot_product_flash_attention_for_cpu",
    ]
    backward_ops = [f"{name}_backward" for name in forward_ops]
    mapping = {}
    for names, formula in ((forward_ops, _gqa_sdpa), (backward_ops, _gqa_sdpa_backward)):
        for name in names:
            if hasattr(aten, name):
                mapping[getattr(aten, name)] = formula
    return mapping


ATTENTION_MAPPING = _attention_mapping()


def _grouped_mm(a_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
    """FLOPs of a grouped GEMM: 2D x 2D (the groups split the shared dimension K, as a weight's
    gradient does) ``2*M*K*N``; any other pairing ``2 * out * K``, each output element one
    dot product of K."""
    if len(a_shape) == len(b_shape) == 2:
        return 2 * a_shape[0] * a_shape[1] * b_shape[1]
    return 2 * math.prod(out_shape) * a_shape[-1]


GROUPED_MAPPING = {aten._grouped_mm: _grouped_mm} if hasattr(aten, "_grouped_mm") else {}
MAPPING = {**ATTENTION_MAPPING, **GROUPED_MAPPING}  # FlopCounterMode's custom formulas
ATTENTION_OPS = {str(op) for op in ATTENTION_MAPPING} | {
    "aten._flash_attention_forward",
    "aten._efficient_attention_forward",
    "aten._flash_attention_backward",
    "aten._efficient_attention_backward",
}


@dataclass
class FlopCount:
    total: int
    by_op: dict[str, int] = field(default_factory=dict)

    @property
    def attention(self) -> int:
        return sum(v for op, v in self.by_op.items() if op in ATTENTION_OPS)

    def __add__(self, other: FlopCount) -> FlopCount:
        """The FLOPs of both (op by op)."""
        ops = {
            op: self.by_op.get(op, 0) + other.by_op.get(op, 0)
            for op in set(self.by_op) | set(other.by_op)
        }
        return FlopCount(total=self.total + other.total, by_op=ops)

    def __sub__(self, other: FlopCount) -> FlopCount:
        """The FLOPs of what ``self`` ran beyond ``other`` (op by op; ops at zero dropped)."""
        ops = {
            op: self.by_op.get(op, 0) - other.by_op.get(op, 0)
            for op in set(self.by_op) | set(other.by_op)
        }
        return FlopCount(
            total=self.total - other.total, by_op={op: v for op, v in ops.items() if v}
        )

    def with_attention(self, attention_flops: str = "full") -> int:
        """Total FLOPs with attention counted ``full`` or ``causal`` (attention halved)."""
        if attention_flops not in ATTENTION_FLOPS:
            raise ValueError(
                f"unknown attention_flops {attention_flops!r}; expected one of {ATTENTION_FLOPS}"
            )
        return self.total if attention_flops == "full" else self.total - self.attention // 2


def count_flops(fn: Callable[[], object]) -> FlopCount:
    """Run ``fn`` once under FlopCounterMode (with the fixes above); the FLOPs it executed."""
    counter = FlopCounterMode(display=False, custom_mapping=MAPPING)
    with counter:
        fn()
    by_op = {str(op): int(v) for op, v in counter.get_flop_counts().get("Global", {}).items()}
    return FlopCount(total=int(counter.get_total_flops()), by_op=by_op)


def profiler_flops(fn: Callable[[], object]) -> int:
    """FLOPs reported by ``torch.profiler`` with ``with_flops=True`` (the thesis's counter)."""
    activities = [tp.ProfilerActivity.CPU]
    if torch.cuda.is_available():
        activities.append(tp.ProfilerActivity.CUDA)
    with tp.profile(activities=activities, with_flops=True) as prof:
        fn()
    return int(sum(evt.flops or 0 for evt in prof.key_averages()))
