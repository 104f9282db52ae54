"""Every kernel-launching operation of one causal-LM step, recorded on the meta device (no GPU,
no weights, about a second per pass): its class (:func:`flopmetrics.flops.operations.op_class`),
its FLOPs (PyTorch's FlopCounterMode formulas), the bytes it reads and writes, and the phase that
issued it (``f`` forward, ``b`` backward, ``o`` optimizer). A step-time model
(:mod:`flopmetrics.analysis.steptime`) reads a step from this stream.

What the meta device cannot show is put in explicitly:

- attention runs as the fused kernel a GPU runs (``F.scaled_dot_product_attention`` on meta
  would take its math path and write the score matrix);
- ``*-mixed`` precisions: autocast does not act on meta, so the step is recorded in 16 bits and
  each weight a GEMM reads is given its fp32 -> 16-bit cast (6 bytes per element), again for
  its gradient in backward; the optimizer moves fp32 master weights and states (twice the
  bytes);
- GEMMs with a dimension that is not a multiple of 8 elements are listed (``unaligned``): cuBLAS
  runs other, slower kernels for them, which a model fitted on aligned shapes has not seen.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry, shape_wrapper

from .counted import ATTENTION_MAPPING
from .models import build_causal_lm, kept_on_disk
from .operations import _NO_KERNEL, op_class, operator_name

_GEMMS = frozenset({"mm", "addmm", "bmm", "baddbmm"})
_ALIGN = 8  # elements: 16 bytes of a 16-bit type, the alignment cuBLAS's fast kernels need


def _nbytes(tree) -> int:
    leaves = torch.utils._pytree.tree_leaves(tree)
    return sum(t.numel() * t.element_size() for t in leaves if isinstance(t, torch.Tensor))


def _gemm_dims(args) -> tuple[int, ...]:
    """(M, N, K) of a GEMM's two matrix operands (the last two of each)."""
    a, b = [x for x in args if hasattr(x, "shape") and x.dim() >= 2][-2:]
    return int(a.shape[-2]), int(b.shape[-1]), int(a.shape[-1])


def _recorder(params):
    formulas = {**flop_registry, **{k: shape_wrapper(v) for k, v in ATTENTION_MAPPING.items()}}

    class Recorder(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops, self.casts, self.unaligned = [], [], []
            self.phase, self.in_attention = "f", False
            self.weights = {id(p) for p in params}
            self._alive = list(params)  # ids stay unique while the tensors live

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            tensors = [a for a in args if isinstance(a, torch.Tensor)]
            if func.is_view:
                if any(id(a) in self.weights for a in tensors):
                    self.weights.add(id(out))
                    self._alive.append(out)
                return out
            name = operator_name(func)
            if name in _NO_KERNEL:
                return out
            formula = formulas.get(func.overloadpacket)
            flops = int(formula(*args, out_val=out, **(kwargs or {}))) if formula else 0
            cls = op_class(func, self.phase == "o", self.in_attention)
            self.ops.append((cls, flops, _nbytes(args) + _nbytes(out), self.phase))
            if name in _GEMMS and self.phase != "o":
                self._gemm(args, tensors, flops)
            return out

        def _gemm(self, args, tensors, flops):
            weight = [a for a in tensors if id(a) in self.weights]
            if weight and self.phase == "f":
                self.casts.append(weight[0].numel())
            dims = _gemm_dims(args)
            if any(d % _ALIGN for d in dims):
                self.unaligned.append([*dims, flops])

    return Recorder()


@contextlib.contextmanager
def _fused_attention(recorder):
    """``F.scaled_dot_product_attention`` as the fused kernel (flash) a GPU runs, K and V
    expanded to the query's heads (grouped-query attention), every operation booked to attention."""
    original = F.scaled_dot_product_attention

    def fused(q, k, v, attn_mask=None, dropout_p=0.0, **options):
        is_causal, scale = options.get("is_causal", False), options.get("scale")
        recorder.in_attention = True
        try:
            if k.shape[1] != q.shape[1]:
                k, v = (x.repeat_interleave(q.shape[1] // x.shape[1], dim=1) for x in (k, v))
            flash = torch.ops.aten._scaled_dot_product_flash_attention
            return flash(q, k, v, dropout_p, is_causal or attn_mask is None, scale=scale)[0]
        finally:
            recorder.in_attention = False

    F.scaled_dot_product_attention = fused
    try:
        yield
    finally:
        F.scaled_dot_product_attention = original


def _record(fields: dict, batch: int, seq: int, dtype, pass_name: str):
    model = build_causal_lm(fields, "sdpa", "meta").to(dtype)
    model.train()
    ids = torch.zeros(batch, seq, dtype=torch.long, device="meta")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5, foreach=True)  # as on a GPU
    recorder = _recorder(params)
    with _fused_attention(recorder), recorder:
        if pass_name == "forward":
            with torch.no_grad():
                model(input_ids=ids)
        else:
            loss = model(input_ids=ids, labels=ids).loss
            recorder.phase = "b"
            loss.backward()
            recorder.phase = "o"
            optimizer.step()
    return recorder


def _stream(blob: str, batch: int, seq: int, pass_name: str) -> dict:
    r = _record(json.loads(blob), batch, seq, torch.bfloat16, pass_name)
    return {
        "ops": [list(op) for op in r.ops],
        "casts": r.casts,
        "unaligned": r.unaligned,
    }


RECORDED = ("forward", "train_step")  # every direct pass is one of these or a part of one


def step_ops(fields: dict, batch: int, seq: int, precision: str, pass_name: str) -> dict:
    """The operations of one iteration of ``pass_name`` (``forward``, ``forward_backward`` or
    ``train_step``) as arrays ``cls``, ``flops``, ``bytes``, ``phase``, and ``unaligned``: the
    (M, N, K, FLOPs) of each GEMM with a dimension cuBLAS cannot align. Kept on disk per model,
    size and pass."""
    recorded = "forward" if pass_name == "forward" else "train_step"
    if pass_name not in (*RECORDED, "forward_backward"):
        raise ValueError(f"no operation stream for pass {pass_name!r}")
    blob = json.dumps(fields, sort_keys=True)
    raw = kept_on_disk(
        "opstream",
        [blob, int(batch), int(seq), recorded, _CODE],
        lambda: _stream(blob, int(batch), int(seq), recorded),
    )
    ops = [op for op in raw["ops"] if pass_name != "forward_backward" or op[3] != "o"]
    if precision.endswith("-mixed"):
        ops = _autocast(ops, raw["casts"], train=pass_name != "forward")
    return {
        "cls": np.array([op[0] for op in ops]),
        "flops": np.array([op[1] for op in ops], float),
        "bytes": np.array([op[2] for op in ops], float),
        "phase": np.array([op[3] for op in ops]),
        "unaligned": raw["unaligned"],
    }


def _autocast(ops: list, casts: list, train: bool) -> list:
    """The 16-bit stream as autocast over fp32 master weights runs it (module docstring)."""
    out = [[c, f, b * 2 if c == "optimizer" else b, p] for c, f, b, p in ops]
    out += [["other", 0, 6 * n, "f"] for n in casts]
    if train:
        out += [["other", 0, 6 * n, "b"] for n in casts]
    return out


def _code_digest() -> str:
    here = Path(__file__).parent
    text = b"".join((here / f).read_bytes() for f in ("opstream.py", "operations.py"))
    return hashlib.sha256(text).hexdigest()[:16]


_CODE = _code_digest()
