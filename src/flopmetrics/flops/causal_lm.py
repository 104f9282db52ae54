"""FLOPs of any Hugging Face causal LM, per pass, counted by PyTorch's ``FlopCounterMode`` on
the meta device (no memory, no weights, no arithmetic: about a second for a 1B model), in the
conventions of a measured job's headline FLOPs (full attention; AdamW 14 FLOPs per parameter),
for configurations nobody measured and architectures with no closed form here.

Attention backward is booked at twice its forward in every precision, as the GPU jobs' counter
books it (:mod:`flopmetrics.flops.counted`), so the precision no longer changes the count.
"""

from __future__ import annotations

import json
from functools import lru_cache

import torch

from . import transformer
from .counted import count_flops
from .meta import on_meta
from .models import build_causal_lm, counting_attention, kept_on_disk, source_digest, summary

PASSES = ("forward", "forward_train", "backward", "forward_backward", "optimizer", "train_step")


@lru_cache(maxsize=64)
def _counted(blob: str, batch: int, seq: int) -> tuple[int, int, int, int]:
    """(forward, forward+backward, parameters, forward attention), kept on disk per model, size
    and the counting code (a co2e table or an estimate then needs no model build)."""
    key = [blob, batch, seq, _COUNTING_CODE]
    return tuple(kept_on_disk("flops", key, lambda: _count(blob, batch, seq)))


def _count(blob: str, batch: int, seq: int) -> list[int]:
    fields = json.loads(blob)
    # bf16: the FLOPs are those of every precision, and grouped GEMMs (experts) take no other
    model = build_causal_lm(fields, counting_attention(fields), "meta").to(torch.bfloat16)
    ids = torch.zeros(batch, seq, dtype=torch.long, device="meta")
    with on_meta(fields):
        forward = count_flops(lambda: model(input_ids=ids, labels=ids).loss)
        both = count_flops(lambda: model(input_ids=ids, labels=ids).loss.backward())
    # the meta device runs attention on the math path (batched products) or a fused operator
    attention = sum(
        v for op, v in forward.by_op.items() if "bmm" in op or "scaled_dot_product" in op
    )
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return [forward.total, both.total, params, attention]


# the source of the code that counts: an edit to it makes every count kept on disk stale
_COUNTING_CODE = source_digest("causal_lm.py", "counted.py", "meta.py")


def _key(fields: dict) -> str:
    return json.dumps(fields, sort_keys=True)


def parameters(fields: dict) -> int:
    """Parameters of the model ``fields`` builds (tied weights once), from its meta-device build."""
    return summary(fields)["parameters"]


def attention_forward(fields: dict, batch: int, seq: int) -> int:
    """The forward pass's attention FLOPs (scores and weighted sum, full matrix)."""
    return _counted(_key(fields), int(batch), int(seq))[3]


def pass_flops(fields: dict, batch: int, seq: int) -> dict[str, int]:
    """FLOPs of one iteration of each pass at ``batch`` x ``seq`` tokens (the same in every
    precision: one attention convention)."""
    forward, both, params, _ = _counted(_key(fields), int(batch), int(seq))
    optimizer = transformer.adamw_step(params)
    return {
        "forward": forward,
        "forward_train": forward,
        "backward": both - forward,
        "forward_backward": both,
        "optimizer": optimizer,
        "train_step": both + optimizer,
    }
