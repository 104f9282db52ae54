"""FLOPs of any Hugging Face causal LM, per pass, counted by PyTorch's ``FlopCounterMode`` on
the meta device (no memory, no weights, no arithmetic: about a second for a 1B model): the count
and conventions of a measured job's headline FLOPs (full attention; AdamW 14 FLOPs per
parameter), for configurations nobody measured and architectures with no closed form here."""

from __future__ import annotations

import json
from functools import lru_cache

from . import transformer

PASSES = ("forward", "forward_train", "backward", "forward_backward", "optimizer", "train_step")


@lru_cache(maxsize=64)
def _counted(blob: str, batch: int, seq: int) -> tuple[int, int, int, int]:
    import torch

    from ..workloads.models import build_causal_lm
    from .counted import count_flops

    model = build_causal_lm(json.loads(blob), "sdpa", "meta")
    ids = torch.zeros(batch, seq, dtype=torch.long, device="meta")
    forward = count_flops(lambda: model(input_ids=ids, labels=ids).loss)
    both = count_flops(lambda: model(input_ids=ids, labels=ids).loss.backward())
    # on the meta device attention runs the math path (batched matmuls: backward 2x forward);
    # a measured job runs fused kernels, which the counter books at 2.5x (the recomputation):
    # book it so here too
    attention = sum(v for op, v in forward.by_op.items() if "bmm" in op or "scaled_dot_product" in op)
    fused = any("scaled_dot_product" in op for op in both.by_op)
    extra = 0 if fused else attention // 2
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return forward.total, both.total + extra, params, attention


def parameters(fields: dict) -> int:
    """Trainable parameters of the model ``fields`` builds (tied weights once)."""
    return _counted(json.dumps(fields, sort_keys=True), 1, 1)[2]


def pass_flops(fields: dict, batch: int, seq: int) -> dict[str, int]:
    """FLOPs of one iteration of each pass at ``batch`` x ``seq`` tokens."""
    forward, both, params, _ = _counted(json.dumps(fields, sort_keys=True), batch, seq)
    optimizer = transformer.adamw_step(params)
    return {"forward": forward, "forward_train": forward, "backward": both - forward, "forward_backward": both,
            "optimizer": optimizer, "train_step": both + optimizer}


def attention_forward(fields: dict, batch: int, seq: int) -> int:
    """The forward pass's attention FLOPs (scores and weighted sum, full matrix)."""
    return _counted(json.dumps(fields, sort_keys=True), batch, seq)[3]
