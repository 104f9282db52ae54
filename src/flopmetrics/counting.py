"""FLOPs counted by PyTorch, behind one function each so later fixes land in one place.

``count_flops`` uses ``torch.utils.flop_counter.FlopCounterMode``: it counts matrix products
(mm, addmm, bmm, convolutions, attention) at ``2*M*N*K`` and nothing elementwise.
``profiler_flops`` reproduces the thesis's ``torch.profiler(with_flops=True)`` count for
comparison only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch.utils.flop_counter import FlopCounterMode


@dataclass
class FlopCount:
    total: int
    by_op: dict[str, int] = field(default_factory=dict)


def count_flops(fn: Callable[[], object]) -> FlopCount:
    """Run ``fn`` once under FlopCounterMode and return the FLOPs it executed."""
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    by_op = {str(op): int(v) for op, v in counter.get_flop_counts().get("Global", {}).items()}
    return FlopCount(total=int(counter.get_total_flops()), by_op=by_op)


def profiler_flops(fn: Callable[[], object]) -> int:
    """FLOPs reported by ``torch.profiler`` with ``with_flops=True`` (the thesis's counter)."""
    import torch.profiler as tp

    activities = [tp.ProfilerActivity.CPU]
    if torch.cuda.is_available():
        activities.append(tp.ProfilerActivity.CUDA)
    with tp.profile(activities=activities, with_flops=True) as prof:
        fn()
    return int(sum(evt.flops or 0 for evt in prof.key_averages()))
