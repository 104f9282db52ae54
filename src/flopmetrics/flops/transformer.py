"""Closed-form FLOPs of a Llama-style decoder and of an AdamW step, per pass.

The same table serves a measured job (its ``flops_analytic`` columns) and a declared CO2e
workload (FLOPs of a configuration nobody measured).
"""

from __future__ import annotations


def transformer_forward(shape: dict, batch: int, seq: int) -> dict[str, int]:
    """Forward FLOPs of a Llama-style decoder (GEMMs and attention; no norms or activations).

    Per layer: q/k/v/o projections ``2*T*h*(2*h_q + 2*h_kv)`` with ``h_q = heads*head_dim``,
    ``h_kv = kv_heads*head_dim`` and ``T = batch*seq``; attention scores and weighted sum
    ``4*batch*heads*seq^2*head_dim`` (full score matrix); gated MLP ``3 * 2*T*h*intermediate``.
    Plus the LM head ``2*T*h*vocab``. Same conventions as FlopCounterMode, so they agree exactly,
    except for the rotary-frequency outer product (``head_dim * seq`` FLOPs, a bmm on CUDA that the
    counter books there; relative size ~1e-12 for Llama-3.2-1B), which is left out.
    """
    T = batch * seq
    h, hd = shape["hidden"], shape["head_dim"]
    h_q, h_kv = shape["heads"] * hd, shape["kv_heads"] * hd
    proj = 2 * T * h * (2 * h_q + 2 * h_kv)
    attention = 4 * batch * shape["heads"] * seq * seq * hd
    mlp = 3 * 2 * T * h * shape["intermediate"]
    head = 2 * T * h * shape["vocab"]
    layers = shape["layers"]
    return {"gemm": layers * (proj + mlp) + head, "attention": layers * attention}


def transformer_backward(shape: dict, batch: int, seq: int) -> dict[str, int]:
    """Backward: every GEMM twice (input and weight gradients), attention too (the gradients of
    its two products; a fused kernel's recomputation of the scores is not counted: the headline
    convention of :mod:`flopmetrics.flops.counted`)."""
    fwd = transformer_forward(shape, batch, seq)
    return {"gemm": 2 * fwd["gemm"], "attention": 2 * fwd["attention"]}


ADAMW_FLOPS_PER_PARAMETER = 14


def adamw_step(parameters: int) -> int:
    """AdamW update, 14 FLOPs per parameter: decoupled weight decay (2), first moment (3),
    second moment (4), sqrt and eps (2), scaled update (3). Bias corrections are scalars."""
    return ADAMW_FLOPS_PER_PARAMETER * parameters


def parameter_count(shape: dict, tied: bool = True) -> int:
    """Llama-style parameter count (embeddings, attention, gated MLP, RMSNorm weights)."""
    h, hd, layers = shape["hidden"], shape["head_dim"], shape["layers"]
    attn = h * shape["heads"] * hd * 2 + h * shape["kv_heads"] * hd * 2
    mlp = 3 * h * shape["intermediate"]
    per_layer = attn + mlp + 2 * h
    emb = shape["vocab"] * h
    return layers * per_layer + emb * (1 if tied else 2) + h


PASSES = ("forward", "forward_train", "backward", "forward_backward", "optimizer", "train_step")


def pass_flops(shape: dict, batch: int, seq: int, parameters: int) -> dict[str, dict[str, int]]:
    """Per pass: ``{"total": ..., "attention": ...}`` FLOPs of one iteration (full attention);
    ``parameters`` sizes the optimizer step."""
    f = transformer_forward(shape, batch, seq)
    b = transformer_backward(shape, batch, seq)
    opt = adamw_step(parameters)
    fwd = {"total": f["gemm"] + f["attention"], "attention": f["attention"]}
    bwd = {"total": b["gemm"] + b["attention"], "attention": b["attention"]}
    both = {k: fwd[k] + bwd[k] for k in fwd}
    return {
        "forward": fwd,
        "forward_train": dict(fwd),
        "backward": bwd,
        "forward_backward": both,
        "train_step": {"total": both["total"] + opt, "attention": both["attention"]},
        "optimizer": {"total": opt, "attention": 0},
    }
