"""Running whole iterations of a pass on a monitored device: for a time (synchronized, never
predicted from one iteration), as a leading guard until a late meter has stepped past an edge,
and as a warm-up until two iterations agree. The measuring protocol
(:mod:`flopmetrics.jobs.protocol`) is built from these."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from ..energy.windows import Monitor

Step = Callable[[], object]
Covered = Callable[[float], Callable[[], bool] | None]


def run_for(
    monitor: Monitor,
    step: Step,
    min_seconds: float,
    keep: dict | None = None,
    per_iteration_s: float | None = None,
    until: Callable[[], bool] | None = None,
) -> int:
    """Run whole iterations of ``step`` until ``min_seconds`` have elapsed; return how many.

    The decision is made on synchronized elapsed time, never predicted from one iteration:
    iterations are issued in batches, the device is synchronized after each batch and the
    clock read. With ``per_iteration_s`` (the rate just seen, e.g. in the guard) the first batch
    covers ``min_seconds`` at once, so the run holds one synchronization: every synchronization is
    a gap in the device's work, which lengthens the windows of a launch-bound pass. Without it
    the first batch is one iteration and each next one about half of the remaining time at the
    rate seen so far. ``until``, if given, is checked after each batch once ``min_seconds`` have
    passed; the run goes on in batches of about 20 ms until it holds. ``keep``, if given,
    receives the last iteration's return value under ``"last"``.
    """
    start = time.perf_counter()
    done, last = 0, None
    first = max(1, math.ceil(min_seconds / per_iteration_s)) if per_iteration_s else 1
    batch = int(monitor.agree(first))
    while True:
        for _ in range(batch):
            # drop the previous output first: a kept loss holds its whole autograd graph, and
            # two graphs alive at once can run a large model out of memory
            last = None
            last = step()
        done += batch
        monitor.synchronize()
        elapsed = time.perf_counter() - start
        finished = elapsed >= min_seconds and (until is None or until())
        if monitor.agree(float(finished), "min"):
            if keep is not None:
                keep["last"] = last
            return done
        batch = int(
            monitor.agree(_next_batch(elapsed / done, min_seconds - elapsed, per_iteration_s))
        )


def _next_batch(per_iteration: float, remaining: float, sized: float | None) -> int:
    if remaining <= 0:
        return max(1, math.ceil(0.02 / per_iteration))  # waiting on ``until``
    share = 1.0 if sized else 0.5
    return max(1, math.ceil(share * remaining / per_iteration))


def edge_covered(monitor: Monitor) -> Covered:
    """For an edge at ``t``, a check that every meter able to say so (``covers(t)``: the energy
    counter has stepped after ``t``) sees work past it; None where no meter can say."""
    covers = [m.covers for m in monitor.meters if hasattr(m, "covers")]

    def covered(t: float) -> Callable[[], bool] | None:
        return (lambda: all(c(t) for c in covers)) if covers else None

    return covered


def lead_in(monitor: Monitor, step: Step, guard_s: float, covered: Covered) -> float | None:
    """The leading guard: iterations of ``step`` for at least ``guard_s`` and until the edge at
    their start is covered; returns their rate (seconds per iteration), None without a guard."""
    if not guard_s:
        return None
    t = time.perf_counter()
    n = run_for(monitor, step, guard_s, until=covered(t))
    return (time.perf_counter() - t) / n


def warmed_lead_in(
    monitor: Monitor,
    step: Step,
    max_iterations: int,
    guard_s: float,
    tolerance: float = 0.1,
) -> float | None:
    """The warm-up and the leading guard in one; returns the lead-in's rate (seconds per
    iteration; None without a guard, after :func:`warm_up`).

    One iteration is timed, then leading guards (:func:`lead_in`) run until one's rate agrees
    with what ran just before it within ``tolerance``: the last warm-up iteration is the lead-in
    itself, one iteration less per pass than a warm-up followed by a lead-in. First use (kernel
    selection, the allocator's growth) is paid before: a job's FLOP count has run every pass
    once, a replayed pass's capture one eager iteration. At most ``max_iterations`` tries, the
    timed iteration included (none, and only a lead-in, where it is 0)."""
    if not guard_s:
        warm_up(monitor, step, max_iterations, tolerance)
        return None
    covered = edge_covered(monitor)
    previous = math.nan
    if max_iterations:
        monitor.synchronize()  # the restore queued before it is not its time
        previous = one_iteration_s(monitor, step)
    rate = None
    for _ in range(max(1, max_iterations - 1)):
        rate = lead_in(monitor, step, guard_s, covered)
        # NaN (no timed iteration) never agrees
        if monitor.agree(float(abs(rate - previous) <= tolerance * previous), "min"):
            break
        previous = rate
    return rate


def warm_up(monitor: Monitor, step: Step, max_iterations: int, tolerance: float = 0.1) -> int:
    """Run ``step`` until two consecutive iterations take the same time within ``tolerance`` (the
    first ones pay for kernel selection and memory growth), at least 2 and at most
    ``max_iterations`` times (fewer than 2 if that is fewer). Returns how many ran."""
    previous = math.inf
    for i in range(max_iterations):
        took = one_iteration_s(monitor, step)
        if monitor.agree(float(i >= 1 and abs(took - previous) <= tolerance * previous), "min"):
            return i + 1
        previous = took
    return max_iterations


def one_iteration_s(monitor: Monitor, step: Step) -> float:
    """Seconds from issuing one iteration of ``step`` to the device's having run it."""
    start = time.perf_counter()
    step()
    monitor.synchronize()
    return time.perf_counter() - start
