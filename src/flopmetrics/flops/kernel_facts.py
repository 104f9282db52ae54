"""What the kernel of one ATen operation does, read from its operands on the meta device: the
bytes it moves, a GEMM's dimensions and operand type, whether PyTorch can vectorize an
elementwise kernel on its operands, how much a fused attention kernel computes, and the further
kernels a GPU runs for an operation booked as one. The operation stream
(:mod:`flopmetrics.flops.opstream`) books each operation with these facts."""

from __future__ import annotations

import math

import torch

TILE = 128  # query and key rows per tile of the fused attention kernels
ALIGN = 8  # elements: 16 bytes of a 16-bit type, the alignment cuBLAS's fast kernels need
ALIGN_PAIR = 2  # elements: 4 bytes, what cuBLAS's "align2" kernels load at a time


def nbytes(tree) -> int:
    leaves = torch.utils._pytree.tree_leaves(tree)
    return sum(t.numel() * t.element_size() for t in leaves if isinstance(t, torch.Tensor))


def _gemm_operands(args) -> list:
    """A GEMM's two matrix operands (``addmm``'s bias comes first)."""
    return [x for x in args if hasattr(x, "shape") and x.dim() >= 2][-2:]


def gemm_dims(args) -> tuple[int, ...]:
    """(M, N, K) of a GEMM's two matrix operands (the last two of each)."""
    a, b = _gemm_operands(args)
    return int(a.shape[-2]), int(b.shape[-1]), int(a.shape[-1])


def strided_operands(args, out) -> bool:
    """Whether PyTorch's elementwise kernels cannot run vectorized on these operands: one is
    not contiguous or is broadcast to the output's shape (a norm's weight, a rotary table), or
    they differ in dtype. Such an operation runs the generic ``elementwise_kernel`` (or the
    ``unrolled`` one, casting), which moves its bytes slower than the vectorized kernel
    (``benchmarks/results/kernel_time_by_class_other_h200_2026-12-04.json``). A reduction
    (an operand larger than the output) runs kernels of its own: not flagged."""
    leaves = torch.utils._pytree.tree_leaves((args, out))
    tensors = [t for t in leaves if isinstance(t, torch.Tensor) and t.dim() > 0]
    outs = [t for t in torch.utils._pytree.tree_leaves(out) if isinstance(t, torch.Tensor)]
    if not tensors or not outs:
        return False
    shape, dtype = outs[0].shape, outs[0].dtype
    if any(t.numel() > outs[0].numel() for t in tensors):
        return False  # a reduction: its own kernels
    return any(t.shape != shape or t.dtype != dtype or not t.is_contiguous() for t in tensors)


def more_kernels(name: str, args, kwargs, out) -> list[tuple[int, bool]]:
    """(bytes, strided) of each further kernel a GPU runs for an operation the meta device books
    as one: ``_safe_softmax`` (math attention's) adds a test for ``-inf``, a row-wise ``all`` and
    a ``where`` (``benchmarks/results/kernel_time_by_class_falcon_h200_2026-12-04.json``);
    ``baddbmm`` given a ``beta`` copies its input into its output before the GEMM adds to it, a
    strided copy where the input is broadcast (ALiBi's bias in BLOOM:
    ``benchmarks/results/kernel_time_by_class_eager_h100_2026-12-06.json``)."""
    if name == "baddbmm":
        return _baddbmm_copy(args, kwargs, out)
    if name != "_safe_softmax":
        return []
    n, size = out.numel(), out.element_size()
    rows = n // max(int(out.shape[-1]), 1)
    return [(n * size + n, False), (n + rows, False), (rows + 2 * n * size, False)]


def _baddbmm_copy(args, kwargs, out) -> list[tuple[int, bool]]:
    """CUDA's ``baddbmm`` copies its input into the output unless ``beta`` is 0 (then the GEMM
    alone writes it)."""
    if kwargs.get("beta", 1) == 0:
        return []
    bias = args[0]
    return [(nbytes((bias, out)), strided_operands((bias,), out))]


def is_fp32(args) -> bool:
    """Whether a GEMM's matrix operands are fp32: in a 16-bit step PyTorch's math attention (the
    operation stream's), a model's own fp32 attention scores (GPT-J's) and a rotary table's
    product make such GEMMs."""
    a, b = _gemm_operands(args)
    return a.dtype == b.dtype == torch.float32


def fused_query(args, name: str):
    """A fused attention kernel's query: its first input, its second in the backward (after
    the output's gradient)."""
    return args[1] if name.endswith("backward") else args[0]


def fused_key(args, name: str):
    """A fused attention kernel's key: the input after its query."""
    return args[2] if name.endswith("backward") else args[1]


def kernel_head(args, name: str) -> int:
    """The head size of the fused attention kernel that runs a query's heads: the H200's
    kernels come in head sizes 64, 128 and 256, and a head of 80 runs the kernel of 128
    (``benchmarks/results/kernel_time_by_class_long_h200_2026-12-04.json``)."""
    return padded_head(int(fused_query(args, name).shape[-1]))


def padded_head(head: int) -> int:
    """The head size of the fused attention kernel that runs heads of ``head`` (see
    :func:`kernel_head`)."""
    return max(64, 2 ** math.ceil(math.log2(head))) if head <= 256 else head


def head_padding(args, name: str) -> float:
    """How much more a fused attention kernel computes than its head size asks
    (:func:`kernel_head`)."""
    return kernel_head(args, name) / int(fused_query(args, name).shape[-1])


def causal_share(args, name: str) -> float:
    """The share of the full score matrix a causal fused kernel computes: the tiles on and
    below the diagonal, ``(n + 1) / 2n`` of ``n x n`` tiles."""
    n = -(-int(fused_query(args, name).shape[-2]) // TILE)
    return (n + 1) / (2 * n)


def dropout_p(func, args, kwargs) -> float:
    """The dropout probability an operation is given (its ``dropout_p`` argument, by the
    operator's schema), 0 where it takes none: a fused attention kernel with dropout draws
    random numbers for every score and runs slower."""
    names = [a.name for a in func._schema.arguments]
    if "dropout_p" not in names:
        return 0.0
    i = names.index("dropout_p")
    value = kwargs.get("dropout_p", args[i] if i < len(args) else 0.0)
    return float(value or 0.0)
