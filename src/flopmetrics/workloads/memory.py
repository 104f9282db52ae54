"""One memory-bound kernel of the access patterns a causal LM's step runs outside its matrix
products, so that the step-time model (:mod:`flopmetrics.analysis.steptime`) can price each
pattern's bytes at the speed a GPU moves them (issue 32). PyTorch runs an elementwise operation
in one of three (``pattern``):

==============  =============================================================================
``vectorized``  every operand contiguous and of the output's shape and dtype:
                ``vectorized_elementwise_kernel`` (``x + y``)
``strided``     an operand broadcast or not contiguous: the generic ``elementwise_kernel``
                (rotary embedding's ``q * cos`` on the heads' transposed view, a norm's weight)
``cat``         ``torch.cat``'s batched copy (rotary embedding's ``rotate_half``)
==============  =============================================================================

Each moves ``mib`` MiB into its output; its bytes are counted as the operation stream counts an
operation's (:mod:`flopmetrics.flops.opstream`: every operand and the output once), so that
``bytes_moved / time`` is the bandwidth the step-time model prices that kind at.
"""

from __future__ import annotations

import math

import torch

from ..energy import datasheet
from ..flops.counted import count_flops
from ..flops.kernel_facts import nbytes
from .base import Workload, finite_check, release

PATTERNS = ("vectorized", "strided", "cat")
HEAD = 64  # elements of a rotary head: the reference model's (Llama-3.2-1B)
HEADS = 16


def build(device: str, precision: str, workload: dict, seed: int, previous=None) -> MemoryWorkload:
    """The kernel of one configuration (``workload``: ``pattern``, ``mib``)."""
    del previous  # never reused
    release()
    return MemoryWorkload(device, precision, workload["pattern"], workload["mib"], seed)


class MemoryWorkload(Workload):
    """One memory-bound kernel (see the module docstring), its output ``mib`` MiB."""

    passes = ("forward",)

    def __init__(self, device: str, precision: str, pattern: str, mib: int, seed: int = 0):
        super().__init__(device, precision)
        if pattern not in PATTERNS:
            raise ValueError(f"memory pattern {pattern!r} is not one of {', '.join(PATTERNS)}")
        dtype = self.precision.dtype if not self.mixed else torch.float32
        size = torch.empty((), dtype=dtype).element_size()
        # (positions, heads, head) as a step holds its queries: mib MiB of them
        positions = max(1, math.ceil(mib * 2**20 / (HEADS * HEAD * size)))
        gen = torch.Generator(device=device).manual_seed(seed)
        draw = lambda *shape: torch.randn(*shape, generator=gen, device=device).to(dtype)  # noqa: E731
        self.pattern, self.mib, self.parameters = pattern, mib, 0
        self.x = draw(positions, HEADS, HEAD)
        self.y = draw(positions, HEADS, HEAD) if pattern == "vectorized" else None
        self.cos = draw(positions, 1, HEAD) if pattern == "strided" else None

    def _operation(self):
        if self.pattern == "vectorized":
            return self.x + self.y
        q = self.x.transpose(0, 1)  # (heads, positions, head): the attention's layout
        if self.pattern == "strided":
            return q * self.cos.transpose(0, 1)  # broadcast over the heads
        half = HEAD // 2
        return torch.cat((q[..., half:], q[..., :half]), dim=-1)

    def steps(self):
        def forward():
            with self.context():
                return self._operation()

        return {"forward": forward}

    def bytes_moved(self) -> int:
        """Bytes of one iteration: each operand and the output (the size of ``x``), once, as
        the operation stream counts them (:func:`flopmetrics.flops.kernel_facts.nbytes`)."""
        operands = {
            "vectorized": (self.x, self.y),
            "strided": (self.x, self.cos),
            "cat": (self.x,),  # its two halves: the whole tensor
        }[self.pattern]
        return nbytes(operands) + nbytes(self.x)

    def counted(self):
        return {"forward": count_flops(self.steps()["forward"])}

    def describe(self):
        return {"pattern": self.pattern, "mib": self.mib, "tokens": int(self.x.shape[0])}

    def profiled(self):
        return {}

    def health(self, name, output):
        return finite_check([self.x, output], ["input x", f"output of {name}"])

    def finish_rows(self, rows):
        """The bytes each iteration moved, the rate it moved them at, and the fraction of the
        datasheet's memory bandwidth that is (gated <= 1)."""
        rows = rows.copy()
        bandwidth = datasheet.job_bandwidth(rows)
        rows["bytes_moved"] = self.bytes_moved()
        rows["bytes_per_s"] = rows["bytes_moved"] / rows["time_per_iter_s"]
        rows["hbm_bytes_per_s"] = bandwidth
        rows["bandwidth_fraction"] = rows["bytes_per_s"] / bandwidth
        return rows
