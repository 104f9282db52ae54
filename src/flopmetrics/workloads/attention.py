"""The fused causal attention kernel alone, as a causal LM's step runs it, so that the step-time
model (:mod:`flopmetrics.analysis.steptime`) can price attention at the rate and energy it has
at each head size and length rather than at one rate (issue 32): steps profiled by class showed
it at 69-598 TFLOP/s on one H200, rising with the length and the head size.

One configuration is ``F.scaled_dot_product_attention(q, k, v, is_causal=True)`` on
``(batch_size, heads, seq_len, head_dim)`` queries and ``heads / groups`` key and value heads
(``groups`` > 1: grouped-query attention, handed to the kernel with ``enable_gqa`` as
transformers does). Its FLOPs are those the operation stream books for the kernel: PyTorch's
counter's, times the share of the score matrix a causal fused kernel computes
(:func:`flopmetrics.flops.kernel_facts.causal_share`) and the head size's padding to the kernel's
(:func:`~flopmetrics.flops.kernel_facts.head_padding`); ``backward`` is derived
(``forward_backward - forward_train``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..flops.counted import count_flops
from ..flops.kernel_facts import causal_share, head_padding
from .base import Workload, finite_check, release

_FLASH = "_scaled_dot_product_flash_attention"


def build(device: str, precision: str, workload: dict, seed: int, previous=None):
    """The kernel of one configuration (``workload``: ``head_dim``, ``heads``, ``groups``,
    ``batch_size``, ``seq_len``)."""
    del previous  # never reused
    release()
    shape = {k: workload[k] for k in ("head_dim", "heads", "groups", "batch_size", "seq_len")}
    return AttentionWorkload(device, precision, seed=seed, **shape)


class AttentionWorkload(Workload):
    """Causal SDPA on one shape (see the module docstring)."""

    passes = ("forward", "forward_train", "forward_backward")
    headline = "analytic"  # the causal tiles' FLOPs, as the operation stream counts them

    def __init__(self, device: str, precision: str, *, seed: int = 0, **shape):
        super().__init__(device, precision)
        self.shape = shape
        dtype = self.precision.dtype if not self.mixed else torch.float32
        gen = torch.Generator(device=device).manual_seed(seed)
        b, h, s, d = (shape[k] for k in ("batch_size", "heads", "seq_len", "head_dim"))
        kv = h // shape["groups"]

        def draw(heads):
            x = torch.randn(b, heads, s, d, generator=gen, device=device).to(dtype)
            return x.requires_grad_()

        self.q, self.k, self.v = draw(h), draw(kv), draw(kv)
        self.grad = torch.randn(b, h, s, d, generator=gen, device=device).to(dtype)
        self.parameters = 0

    def _attend(self):
        gqa = self.shape["groups"] > 1
        with self.context():
            return F.scaled_dot_product_attention(
                self.q, self.k, self.v, is_causal=True, enable_gqa=gqa
            )

    def steps(self):
        def forward():
            with torch.no_grad():
                return self._attend()

        def forward_backward():
            for x in (self.q, self.k, self.v):
                x.grad = None
            out = self._attend()
            out.backward(self.grad)
            return out.detach()

        return {
            "forward": forward,
            "forward_train": self._attend,
            "forward_backward": forward_backward,
        }

    def executed_share(self) -> float:
        """What the kernel computes of the counter's FLOPs, as the operation stream books it:
        the causal tiles, times the head size's padding to its kernel's."""
        args = (self.q,)  # a fused kernel's query, whose length and head size set both
        return causal_share(args, _FLASH) * head_padding(args, _FLASH)

    def counted(self):
        if not hasattr(self, "_counted"):  # each pass run once under the counter
            self._counted = {name: count_flops(step) for name, step in self.steps().items()}
        return self._counted

    def analytic(self):
        share = self.executed_share()
        out = {name: count.total * share for name, count in self.counted().items()}
        out["backward"] = out["forward_backward"] - out["forward_train"]
        return {name: {"flops_analytic": flops} for name, flops in out.items()}

    def describe(self):
        s = self.shape
        return {
            **s,
            "kv_heads": s["heads"] // s["groups"],
            "tokens": s["batch_size"] * s["seq_len"],
        }

    def profiled(self):
        return {}

    def health(self, name, output):
        names = ["query", "key", "value", f"output of {name}"]
        return finite_check(
            [self.q.detach(), self.k.detach(), self.v.detach(), output.detach()], names
        )
