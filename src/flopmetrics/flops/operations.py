"""Every PyTorch operation of a step gets one class, by what it computes: the ATen operator that
ran and whether the optimizer's step ran it, never the name of the kernel a library picked.

=================  ==========================================================================
``gemm``           matrix products: ``mm``, ``addmm``, ``bmm``, ``baddbmm``, ``matmul``,
                   ``linear``, ``_scaled_mm``, ``_grouped_mm`` (experts), ``mv``, ``addmv``,
                   ``dot``, convolutions
``attention``      attention, forward and backward: fused (``scaled_dot_product_*``,
                   ``_flash_attention_*``, ``_efficient_attention_*``, ``_cudnn_attention_*``)
                   or every operation a call of ``F.scaled_dot_product_attention`` runs (the
                   math path's batched products and softmax, as fp32 runs it)
``optimizer``      every operation the optimizer's step runs (its ``_foreach_*`` and fused
                   kernels, and the casts, copies and norms inside it)
``communication``  collectives (``c10d``, ``_c10d_functional``: all-reduce, all-gather,
                   reduce-scatter, broadcast)
``elementwise``    arithmetic that is not a matrix product: pointwise math, activations,
                   normalization, softmax and the loss, reductions
``other``          moving and creating data with no arithmetic: copies and casts, fills,
                   concatenation, indexing, embedding look-ups and their scatter, masks, RNG
=================  ==========================================================================

One classifier serves the executed FLOPs per class (the class captures of
:mod:`flopmetrics.ncu.capture`) and the energy per class, so the two always cut a step the same
way. An operator no rule names is
``elementwise`` (arithmetic), so nothing is dropped.
"""

from __future__ import annotations

import re

CLASSES = ("gemm", "attention", "elementwise", "optimizer", "communication", "other")

_RULES = (
    ("communication", r"^(c10d|_c10d_functional|c10d_functional)\."),
    ("attention", r"scaled_dot_product|_flash_attention|_efficient_attention|_cudnn_attention"),
    (
        "gemm",
        r"^(mm|addmm|bmm|baddbmm|addbmm|matmul|linear|_scaled_mm|mv|addmv|dot|vdot|"
        r"convolution|_convolution|cudnn_convolution\w*|convolution_backward|_int_mm|"
        r"_grouped_mm)$",
    ),
    (
        "other",
        r"^(copy_?|_to_copy|clone|contiguous|fill_?|zero_?|zeros(_like)?|ones(_like)?|"
        r"full(_like)?|empty\w*|new_\w+|cat|stack|index\w*|gather|scatter\w*|embedding\w*|"
        r"slice\w*|select\w*|masked_scatter\w*|triu_?|tril_?|arange|rand\w*|normal_|uniform_|"
        r"bernoulli_?|_unsafe_index\w*|narrow\w*|split\w*|unbind\w*|expand\w*|view\w*|"
        r"_unsafe_view|reshape|t|transpose\w*|permute|detach_?|alias|as_strided\w*|squeeze_?|"
        r"unsqueeze_?|flatten|lift_fresh|_local_scalar_dense|item|nonzero|set_)$",
    ),
)
_COMPILED = tuple((cls, re.compile(pattern)) for cls, pattern in _RULES)


def operator_name(op: object) -> str:
    """The operator's name without namespace or overload: ``aten.mm.default``, ``aten.mm`` and
    ``aten::mm`` are all ``mm``; a collective keeps its namespace (``c10d.allreduce_``)."""
    text = str(op).replace("::", ".")
    parts = text.split(".")
    if parts[0] in ("aten", "prims") and len(parts) > 1:
        return parts[1]
    return ".".join(parts[:2]) if len(parts) > 1 else text


def op_class(op: object, in_optimizer: bool = False, in_attention: bool = False) -> str:
    """The class of operator ``op`` (an ``OpOverload``, its packet, or its name); run inside the
    optimizer's step, or inside an attention call (``F.scaled_dot_product_attention``, forward
    or its backward), it belongs to that (see the table above)."""
    if in_optimizer:
        return "optimizer"
    if in_attention:
        return "attention"
    name = operator_name(op)
    for cls, pattern in _COMPILED:
        if pattern.search(name):
            return cls
    return "elementwise"


def by_class(flops_by_op: dict[str, float]) -> dict[str, float]:
    """FLOPs per operator (FlopCounterMode's ``by_op``) summed per class, every class present."""
    out = dict.fromkeys(CLASSES, 0)
    for op, flops in flops_by_op.items():
        out[op_class(op)] += flops
    return out


# operators that allocate or relabel memory without launching a kernel (views are told apart by
# their schema: OpOverload.is_view)
_NO_KERNEL = frozenset({"_unsafe_view", "empty", "empty_strided", "empty_like", "lift_fresh"})


def count_launching(fn) -> int:
    """How many operations ``fn`` runs that launch a kernel on a GPU: every ATen operation but
    views and allocations, counted as it dispatches (on the meta device too, so a model's count
    needs no GPU and no weights)."""
    from torch.utils._python_dispatch import TorchDispatchMode  # late: torch only when counting

    class _Count(TorchDispatchMode):
        n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if not func.is_view and operator_name(func) not in _NO_KERNEL:
                self.n += 1
            return func(*args, **(kwargs or {}))

    counter = _Count()
    with counter:
        fn()
    return counter.n
