"""A fixed measure of the host's speed at issuing work, taken beside every configuration's
windows: where a pass is bound by the host (the GPU idles between kernels), its time follows this
speed, which differs from machine to machine of the same GPU (issue 32: the step-time model's
host-bound misses differ from one measuring host to the next).

The probe issues the same tiny elementwise kernel (``torch.add`` on 16 elements, into a buffer)
from Python, in rounds, and times the issuing alone: no synchronization inside a round, the
device synchronized between rounds (so the launch queue never fills). Its result, the median
round's time per operation, is the column ``host_op_us``.
"""

from __future__ import annotations

import statistics
import time

import torch

from ..energy.windows import synchronizer

ROUNDS = 7
OPERATIONS = 400  # per round: well under CUDA's launch queue, so issuing never waits on the GPU
WARMUP = 200


def host_op_us(device: str) -> float:
    """The host's time to issue one small kernel on ``device`` (µs): the median of
    :data:`ROUNDS` rounds of :data:`OPERATIONS` issued back to back."""
    sync = synchronizer(device)
    a, b = torch.ones(16, device=device), torch.ones(16, device=device)
    out = torch.empty_like(a)
    for _ in range(WARMUP):  # the first launches load the kernel and allocate
        torch.add(a, b, out=out)
    rounds = []
    for _ in range(ROUNDS):
        sync()
        start = time.perf_counter()
        for _ in range(OPERATIONS):
            torch.add(a, b, out=out)
        rounds.append((time.perf_counter() - start) / OPERATIONS)
    sync()
    return 1e6 * statistics.median(rounds)
