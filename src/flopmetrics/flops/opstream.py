"""Every kernel-launching operation of one causal-LM step, recorded on the meta device (no GPU,
no weights, about a second per pass): its class (:func:`flopmetrics.flops.operations.op_class`),
its FLOPs (FlopCounterMode's formulas, grouped GEMMs' too), the bytes it moves, and the phase that
issued it (``f`` forward, ``b`` backward, ``o`` optimizer). A step-time model
(:mod:`flopmetrics.analysis.steptime`) reads a step from this stream.

What the meta device cannot show is put in explicitly:

- attention runs as the fused kernel a GPU runs (``F.scaled_dot_product_attention`` on meta
  would take its math path and write the score matrix);
- attention's FLOPs are those a causal fused kernel executes: the tiles on and below the
  diagonal (the headline count books the full score matrix); given a mask (ALiBi, a sliding
  window), every tile and the mask's bytes (``masked``); at the head size of the kernel that
  runs (64, 128 or 256: a head of 80 computes as one of 128);
- ``*-mixed`` precisions: autocast does not act on meta, so its rules are applied above
  autograd (:class:`_Autocast`): fp32 weights, the inputs of matrix products cast to 16 bits
  (a weight once per forward), norms, softmax and the loss computed in fp32; the casts and their
  gradients are recorded like any other kernel;
- GEMMs with a dimension that is not a multiple of 8 elements are marked (``unaligned``):
  cuBLAS runs other, slower kernels for them, whose rate a step-time model fits apart; those
  whose dimensions are all even are marked too (``align2``): cuBLAS's kernels that load two
  elements at a time run them, faster than the one-element kernels an odd dimension takes;
- elementwise and copy operations PyTorch cannot vectorize (an operand broadcast or not
  contiguous) are marked (``strided``), and ``torch.cat`` (``cat``): their kernels move bytes
  slower, at speeds the memory experiment measures;
- a fused attention kernel given dropout (GPT-2's ``attn_pdrop`` while training) is marked
  (``dropout``): it draws a random number for every score and runs slower.
"""

from __future__ import annotations

import contextlib
import json
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry, shape_wrapper

from .counted import MAPPING
from .kernel_facts import (
    ALIGN,
    ALIGN_PAIR,
    causal_share,
    dropout_p,
    fused_key,
    fused_query,
    gemm_dims,
    head_padding,
    is_fp32,
    kernel_head,
    more_kernels,
    nbytes,
    strided_operands,
)
from .meta import on_meta
from .models import build_causal_lm, counting_attention, kept_on_disk, source_digest
from .operations import _NO_KERNEL, op_class, operator_name

_GEMMS = frozenset({"mm", "addmm", "bmm", "baddbmm"})
_STRIDED_CLASSES = frozenset({"elementwise", "other"})  # TensorIterator's kernels


def _recorder():
    formulas = {**flop_registry, **{k: shape_wrapper(v) for k, v in MAPPING.items()}}

    class Recorder(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops, self.unaligned = [], []
            self.phase, self.in_attention = "f", False

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            name = operator_name(func)
            if func.is_view or name in _NO_KERNEL:
                return out
            formula = formulas.get(func.overloadpacket)
            flops = int(formula(*args, out_val=out, **(kwargs or {}))) if formula else 0
            if "flash_attention" in name:
                flops = int(flops * causal_share(args, name))
            if "_attention" in name:  # the fused kernels: flash, and efficient (given a mask)
                flops = int(flops * head_padding(args, name))
            cls = op_class(func, self.phase == "o", self.in_attention)
            dims = gemm_dims(args) if name in _GEMMS and self.phase != "o" else ()
            unaligned = any(d % ALIGN for d in dims)
            align2 = unaligned and not any(d % ALIGN_PAIR for d in dims)
            masked = "efficient_attention" in name  # only :func:`_masked` books this kernel
            cat = name == "cat"  # PyTorch's batched copy, slower than other elementwise kernels
            fp32 = bool(dims) and is_fp32(args)  # on CUDA cores, not tensor cores
            grouped = name == "_grouped_mm"  # a mixture of experts' experts
            strided = cls in _STRIDED_CLASSES and not cat and strided_operands(args, out)
            dropout = "_attention" in name and dropout_p(func, args, kwargs or {}) > 0
            moved = nbytes(args) + nbytes(out)
            flags = (unaligned, masked, cat, fp32, grouped, strided, dropout, align2)  # FLAGS
            shape = self.attention_shape(args, name) if "_attention" in name and flops else (0,) * 4
            self.ops.append((cls, flops, moved, self.phase, *flags, *shape))
            for extra, strided in more_kernels(name, args, kwargs or {}, out):
                kind = "elementwise" if cls == "gemm" else cls  # a GEMM's extra is a copy
                flags = [False] * len(FLAGS)
                flags[FLAGS.index("strided")] = strided
                self.ops.append((kind, 0, extra, self.phase, *flags, *(0,) * 4))
            if unaligned:
                self.unaligned.append([*dims, flops])
            return out

        def attention_shape(self, args, name: str) -> tuple[int, int, int, int]:
            """A fused attention kernel's :data:`SHAPE`: its kernel's head size, its queries'
            length, batch x heads, and the query heads per key/value head it was handed."""
            batch, heads, seq = fused_query(args, name).shape[:3]
            groups = heads // fused_key(args, name).shape[1]  # flash takes K and V unexpanded
            return kernel_head(args, name), int(seq), int(batch * heads), int(groups)

    return Recorder()


_LOW = (F.linear, torch.matmul, torch.mm, torch.bmm, torch.addmm, torch.baddbmm)
_LOW_METHODS = ("matmul", "__matmul__", "mm", "bmm")
_FP32 = (F.layer_norm, F.group_norm, F.softmax, F.log_softmax, F.cross_entropy, F.nll_loss)
_FP32_NAMES = ("softmax", "log_softmax", "exp", "log", "rsqrt", "pow", "sum", "cumsum")


class _Autocast(TorchFunctionMode):
    """CUDA autocast's rules where it cannot act (the meta device), applied above autograd so
    that the casts' gradients are recorded too: matrix products in ``dtype`` (an fp32 parameter
    cast once while the mode is on), the ops autocast runs in fp32 given fp32 inputs."""

    def __init__(self, dtype):
        super().__init__()
        self.dtype, self.cache = dtype, {}
        self.low = {*_LOW, *(getattr(torch.Tensor, m) for m in _LOW_METHODS)}
        named = (getattr(o, n) for o in (torch, torch.Tensor) for n in _FP32_NAMES if hasattr(o, n))
        self.fp32 = {*_FP32, *named}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self.low:
            args, kwargs = torch.utils._pytree.tree_map(self.lowered, (args, kwargs))
        elif func in self.fp32:
            args, kwargs = torch.utils._pytree.tree_map(_widened, (args, kwargs))
        return func(*args, **kwargs)

    def lowered(self, x):
        if not (isinstance(x, torch.Tensor) and x.dtype == torch.float32):
            return x
        if isinstance(x, torch.nn.Parameter):  # autocast keeps one cast of a weight
            return self.cache.setdefault(id(x), x.to(self.dtype))
        return x.to(self.dtype)


def _widened(x):
    low = (torch.bfloat16, torch.float16)
    return x.float() if isinstance(x, torch.Tensor) and x.dtype in low else x


@contextlib.contextmanager
def _fused_attention(recorder, dtype=None):
    """``F.scaled_dot_product_attention`` as the kernels a GPU runs: flash, :func:`_masked`
    given a mask, or :func:`_math` given fewer key and value heads than query heads without
    ``enable_gqa`` (with it, PyTorch hands flash K and V unexpanded, and the masked kernel K and
    V expanded to the query's heads); every operation booked to attention; under autocast
    (``dtype``) its inputs cast to it; a V head smaller than Q's (multi-head latent attention)
    padded to it, the output cut back."""
    original = F.scaled_dot_product_attention

    def fused(q, k, v, attn_mask=None, dropout_p=0.0, **options):
        is_causal, scale = options.get("is_causal", False), options.get("scale")
        recorder.in_attention = True
        try:
            if dtype is not None:
                q, k, v = (x.to(dtype) if x.dtype == torch.float32 else x for x in (q, k, v))
            if v.shape[-1] < q.shape[-1]:  # a smaller V head (MLA): padded, as for flash-attn
                padded = F.pad(v, (0, q.shape[-1] - v.shape[-1]))
                return fused(q, k, padded, attn_mask, dropout_p, **options)[..., : v.shape[-1]]
            if k.shape[1] != q.shape[1] and not options.get("enable_gqa", False):
                return _math((q, k, v), attn_mask, dropout_p, options)
            if attn_mask is not None and not is_causal:
                # the masked kernel takes as many key and value heads as query heads
                k, v = (x.repeat_interleave(q.shape[1] // x.shape[1], dim=1) for x in (k, v))
                return _masked(q, k, v, attn_mask, dropout_p, scale)
            # flash reads each key and value head for its group of query heads: nothing expanded
            flash = torch.ops.aten._scaled_dot_product_flash_attention
            return flash(q, k, v, dropout_p, True, scale=scale)[0]
        finally:
            recorder.in_attention = False

    F.scaled_dot_product_attention = fused
    try:
        yield
    finally:
        F.scaled_dot_product_attention = original


def _math(qkv, mask, dropout_p, options):
    """Attention given fewer key and value heads than query heads, broadcast (Falcon's
    multi-query attention in transformers 5.17): the fused kernels need as many heads, so
    PyTorch runs its math backend, on fp32 copies of 16-bit inputs (its products on CUDA
    cores; ``benchmarks/results/kernel_time_by_class_falcon_h200_2026-12-04.json``)."""
    math_attention = torch.ops.aten._scaled_dot_product_attention_math
    is_causal, scale = options.get("is_causal", False), options.get("scale")
    return math_attention(*qkv, mask, dropout_p, is_causal, scale=scale)[0]


def _masked(q, k, v, mask, dropout_p, scale):
    """Attention given a mask (ALiBi's bias, a sliding window's band): the fused kernel then
    computes every tile (it cannot skip the masked ones) and reads the mask, as an additive bias
    (a boolean mask is made into one first, as PyTorch does). On an H200 that is 2.2-4.1x the
    causal kernel's time (``benchmarks/masked_attention_kernel.py``). Booked as PyTorch's
    memory-efficient kernel, which the meta device runs, and flagged ``masked``."""
    if mask.dtype == torch.bool:
        mask = torch.zeros(mask.shape, dtype=q.dtype, device=q.device).masked_fill(~mask, -math.inf)
    grad = torch.is_grad_enabled() and any(x.requires_grad for x in (q, k, v))
    efficient = torch.ops.aten._scaled_dot_product_efficient_attention
    return efficient(q, k, v, mask.to(q.dtype), grad, dropout_p, False, scale=scale)[0]


def _record(fields: dict, batch: int, seq: int, mixed: bool, pass_name: str) -> dict:
    # fp32: a mixed step's master weights
    model = build_causal_lm(fields, counting_attention(fields), "meta")
    if not mixed:
        model = model.to(torch.bfloat16)
    model.train()
    ids = torch.zeros(batch, seq, dtype=torch.long, device="meta")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5, foreach=True)  # as on a GPU
    recorder = _recorder()
    low = torch.bfloat16 if mixed else None
    autocast = _Autocast(torch.bfloat16) if mixed else contextlib.nullcontext()
    with on_meta(fields), _fused_attention(recorder, low), recorder:
        if pass_name == "forward":
            with torch.no_grad(), autocast:
                model(input_ids=ids)
        else:
            with autocast:
                loss = model(input_ids=ids, labels=ids).loss
            recorder.phase = "b"
            loss.backward()
            recorder.phase = "o"
            optimizer.step()
    return {"ops": [list(op) for op in recorder.ops], "unaligned": recorder.unaligned}


# each kernel's, after its phase
FLAGS = ("unaligned", "masked", "cat", "fp32", "grouped", "strided", "dropout", "align2")
# each fused attention kernel's shape, after its flags (0 on every other kernel)
SHAPE = ("head", "seq", "rows", "groups")
RECORDED = ("forward", "train_step")  # every direct pass is one of these or a part of one
STREAMED = ("bf16", "bf16-mixed")  # the precisions recorded


def step_ops(fields: dict, batch: int, seq: int, precision: str, pass_name: str) -> dict:
    """The operations of one iteration of ``pass_name`` (``forward``, ``forward_backward`` or
    ``train_step``) as arrays ``cls``, ``flops``, ``bytes``, ``phase``, ``unaligned`` (a GEMM
    with a dimension cuBLAS cannot align), ``masked`` (attention given a mask), ``cat``
    (``torch.cat``'s copy kernel), ``fp32`` (a GEMM on fp32 operands), ``grouped`` (a
    grouped GEMM: experts), ``strided`` (an elementwise or copy kernel PyTorch cannot
    vectorize), ``dropout`` (a fused attention kernel given dropout) and ``align2`` (an
    unaligned GEMM whose dimensions are all even); a fused attention kernel's :data:`SHAPE`
    (``head``: its kernel's head size, :func:`~flopmetrics.flops.kernel_facts.kernel_head`;
    ``seq``: its queries' length; ``rows``: batch x heads; ``groups``: query heads per key/value
    head), 0 on every other kernel; and ``unaligned_gemms``: each unaligned
    GEMM's (M, N, K, FLOPs). Kept on disk per model, size and pass."""
    recorded = "forward" if pass_name == "forward" else "train_step"
    if pass_name not in (*RECORDED, "forward_backward"):
        raise ValueError(f"no operation stream for pass {pass_name!r}")
    if precision not in STREAMED:
        raise ValueError(f"no operation stream for precision {precision!r} ({', '.join(STREAMED)})")
    blob, mixed = json.dumps(fields, sort_keys=True), precision.endswith("-mixed")
    raw = kept_on_disk(
        "opstream",
        [blob, int(batch), int(seq), mixed, recorded, _CODE],
        lambda: _record(json.loads(blob), int(batch), int(seq), mixed, recorded),
    )
    ops = [op for op in raw["ops"] if pass_name != "forward_backward" or op[3] != "o"]
    return {
        "cls": np.array([op[0] for op in ops]),
        "flops": np.array([op[1] for op in ops], float),
        "bytes": np.array([op[2] for op in ops], float),
        "phase": np.array([op[3] for op in ops]),
        **{flag: np.array([op[4 + i] for op in ops], bool) for i, flag in enumerate(FLAGS)},
        **{k: np.array([op[4 + len(FLAGS) + i] for op in ops], float) for i, k in enumerate(SHAPE)},
        "unaligned_gemms": raw["unaligned"],
    }


_CODE = source_digest("opstream.py", "kernel_facts.py", "operations.py", "counted.py", "meta.py")
