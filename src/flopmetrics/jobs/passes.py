"""Measure named passes as repeated synchronized windows, and derive passes by difference."""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..contracts.vocabulary import DerivedPass
from ..energy.windows import Monitor, Window, edge_covered, lead_in, run_for, run_window
from . import launch
from .stats import Estimate, estimate


@dataclass
class PassSpec:
    """One directly measured pass: ``step`` runs exactly one iteration of it; ``prepare`` runs
    before each of its windows (outside them: the workload's starting weights back); ``check``
    queues the numeric-health check of an iteration's output (see
    :func:`flopmetrics.energy.windows.run_window`); ``replayed``, if given, is a context manager
    that captures ``step`` in a CUDA graph and yields a call that replays it (config ``launch:
    cuda_graph``): the pass's windows then run the replay. With ``auto`` (config ``launch: auto``)
    the replay is kept only if the pass's configuration is launch-bound (:mod:`.launch`), and
    ``launch_check`` holds what was measured to decide."""

    name: str
    step: Callable[[], object]
    prepare: Callable[[], None] | None = None
    check: Callable[[object], Callable[[], tuple[bool, str]]] | None = None
    replayed: Callable[[], contextlib.AbstractContextManager] | None = None
    auto: bool = False
    launch_check: dict = field(default_factory=dict)

    @property
    def launch(self) -> str:
        return "cuda_graph" if self.replayed else "eager"


def measure_passes(
    monitor: Monitor,
    specs: Sequence[PassSpec],
    *,
    repeats: int,
    min_window_s: float,
    warmup_iterations: int,
    guard_s: float = 0.0,
    progress: Callable[[str], None] | None = None,
    min_repeats: int | None = None,
    target_rse: float = 0.0,
    sized: bool = True,
) -> dict[str, list[Window]]:
    """Windows of every pass: at least ``min_repeats`` (all ``repeats`` when None), at most
    ``repeats``, stopping once the pass's per-iteration estimate (energy where a meter reads it,
    else time) has a relative standard error of at most ``target_rse``: repeats that buy no
    precision are not paid for. Four or more windows whose spread (CV) exceeds ``SPREAD`` x
    ``target_rse`` are superseded by windows twice as long, each spending two repeats (the
    superseded ones kept in the first long one's ``replaces``).

    With ``sized`` (the default) one pass is measured after the other: it is warmed up and led in
    by :func:`warmed_lead_in` (at most ``warmup_iterations`` tries), then its windows run back to
    back between that leading guard and a trailing one of the same iterations (see
    :func:`flopmetrics.energy.windows.run_window`); each window is issued as one batch sized by
    the rate seen just before it. Where the meters read past windows from their record (the GPU
    counter and trace), a window is the next one's guard and is read later; a guard runs only
    where the stopping rule needs a reading (after ``min_repeats`` windows). Other meters are
    read at each window's close, after a guard that also leads into the next window. Where a
    pass is replayed from a CUDA graph, the graph lives only while that pass is measured. ``sized=False`` is the protocol of
    2026-11-27: every pass warmed up first, then rounds of one window per pass interleaved
    (f, b, f, b, ...), each window with guards of its own, stopping once every pass is precise.
    """
    if not sized:
        return _interleaved(
            monitor,
            specs,
            repeats,
            min_window_s,
            warmup_iterations,
            guard_s,
            progress,
            min_repeats,
            target_rse,
        )
    if any(
        spec.auto and spec.replayed for spec in specs
    ):  # none can be replayed: nothing to choose
        specs = launch.choose(monitor, list(specs), progress)
    out: dict[str, list[Window]] = {}
    for spec in specs:
        with spec.replayed() if spec.replayed else contextlib.nullcontext(spec.step) as step:
            out[spec.name] = _back_to_back(
                monitor,
                spec,
                step,
                repeats,
                min(min_repeats or repeats, repeats),
                min_window_s,
                warmup_iterations,
                guard_s,
                target_rse,
                progress,
            )
    return out


def _back_to_back(
    monitor,
    spec,
    step,
    repeats,
    min_repeats,
    min_window_s,
    warmup_iterations,
    guard_s,
    target_rse,
    progress,
):
    covered = edge_covered(monitor)
    # windows whose meters read the past need no guard between them: the next window frames the
    # edge, and they are read once a guard has run past a later edge
    defer = (
        bool(guard_s) and any(hasattr(m, "covers") for m in monitor.meters) and monitor.can_defer()
    )
    if spec.prepare:
        spec.prepare()
    rate = warmed_lead_in(monitor, step, warmup_iterations, guard_s, covered)
    windows: list[Window] = []
    short: list[Window] = []  # superseded: too short to hold the windows' spread
    # a window of length k x min_window_s spends k of the ``repeats``: longer windows cost no more
    # measuring time than the maximum already allowed
    k, spent, r = 1, 0, -1
    while spent + k <= repeats:
        r, spent, kept = r + 1, spent + k, {}
        last = spent + k > repeats
        # a window after which the stopping rule is applied (or the last) is read at once
        decide = last or (len(windows) + 1 >= min_repeats and target_rse > 0)
        monitor.begin_window(spec.name)
        done = run_for(monitor, step, k * min_window_s, keep=kept, per_iteration_s=rate)

        def settle():  # the trailing guard, and the next window's leading one
            if spec.check:
                kept["result"] = spec.check(
                    kept.pop("last")
                )  # queued before the guard overwrites the state
            if spec.prepare:
                spec.prepare()
            if guard_s and (decide or not defer):
                run_for(
                    monitor,
                    step,
                    guard_s,
                    per_iteration_s=rate,
                    until=covered(monitor.last_close_s),
                )

        w = monitor.end_window(spec.name, settle=settle, defer=defer and not decide)
        w.iterations, w.launch, w.launch_check = done, spec.launch, spec.launch_check
        if spec.check:
            finite, first = kept["result"]()
            w.numerics, w.first_nonfinite = ("finite" if finite else "non_finite"), first
        windows.append(w)
        rate = w.elapsed_s / done
        if decide:
            for earlier in windows:
                if not earlier.readings:
                    monitor.read(earlier)
        _report(progress, r, repeats, spec.name, w)
        if not decide or len(windows) < min_repeats or target_rse <= 0:
            continue
        worst = _worst_rse(monitor, [windows])
        cv = worst * math.sqrt(len(windows))
        scattered = len(windows) >= 4 and math.isfinite(cv) and cv > SPREAD * target_rse
        if scattered and repeats - spent >= 2 * k * min_repeats:
            if progress:
                progress(
                    f"{spec.name}: {len(windows)} windows of {k * min_window_s:g} s scatter {100 * cv:.2f} % "
                    f"(over {100 * SPREAD * target_rse:g} %): measured again in windows of "
                    f"{2 * k * min_window_s:g} s"
                )
            short, windows, k = short + windows, [], 2 * k
            continue
        if _precise(worst, target_rse, len(windows), not last, progress, spec.name):
            break
    windows[0].replaces = short  # kept for the trace, which labels them
    return windows


# The windows' CV may reach SPREAD x target_rse: what the RSE target allows at 4 windows. Windows
# that scatter more (a power-capped card's regulation over ~1 s) are too short to be worth adding
# to; 4 or more of them are superseded by windows twice as long where the repeats left pay for
# ``min_repeats`` of them (a window twice as long spends two repeats).
SPREAD = 2.0


def _worst_rse(monitor, window_lists) -> float:
    """The largest relative standard error over the lists, agreed over ranks (all decide alike)."""
    return monitor.agree(max(relative_error(ws) for ws in window_lists))


def _precise(worst, target_rse, n, more, progress, what) -> bool:
    """Whether ``worst`` has reached ``target_rse``; says so where ``more`` repeats were allowed."""
    if worst <= target_rse and progress and more:
        progress(
            f"{what} within {100 * target_rse:g} % relative standard error after {n} repeats "
            f"(worst {100 * worst:.2f} %): done"
        )
    return worst <= target_rse


def _report(progress, r, repeats, name, w) -> None:
    if progress:
        health = "" if w.numerics == "unknown" else f", {w.numerics}"
        bad = f" ({w.first_nonfinite})" if w.first_nonfinite else ""
        graph = ", CUDA graph" if w.launch == "cuda_graph" else ""
        progress(
            f"repeat {r + 1}/{repeats} {name}: {w.iterations} it in {w.elapsed_s:.3f} s{graph}{health}{bad}"
        )


def _interleaved(
    monitor,
    specs,
    repeats,
    min_window_s,
    warmup_iterations,
    guard_s,
    progress,
    min_repeats,
    target_rse,
) -> dict[str, list[Window]]:
    if any(spec.replayed for spec in specs):
        raise ValueError(
            "CUDA-graph replay (launch cuda_graph or auto) needs the back-to-back protocol (sized=True)"
        )
    for spec in specs:
        warm_up(monitor, spec.step, warmup_iterations)
    windows: dict[str, list[Window]] = {spec.name: [] for spec in specs}
    for r in range(repeats):
        for spec in specs:
            if spec.prepare:
                spec.prepare()
            w = run_window(
                monitor, spec.name, spec.step, min_window_s, guard_s, check=spec.check, sized=False
            )
            windows[spec.name].append(w)
            _report(progress, r, repeats, spec.name, w)
        if (
            r + 1 >= min(min_repeats or repeats, repeats)
            and target_rse > 0
            and _precise(
                _worst_rse(monitor, list(windows.values())),
                target_rse,
                r + 1,
                r + 1 < repeats,
                progress,
                "every pass",
            )
        ):
            break
    return windows


def measure_workload(
    monitor: Monitor,
    workload,
    steps: dict[str, Callable[[], object]],
    measure,
    *,
    guard_s: float,
    progress: Callable[[str], None] | None = None,
    sized: bool = True,
) -> dict[str, list[Window]]:
    """``steps`` (pass name -> one iteration) of ``workload`` measured by :func:`measure_passes`
    with a job's measuring settings (``measure``: its ``MeasureSettings``): the workload's starting
    state is put back before every window, and what each window computed is checked finite. With ``launch:
    cuda_graph`` every pass the workload can capture (:meth:`~flopmetrics.workloads.base.Workload.
    graph_blocker`) is replayed from a CUDA graph; the others run eager, and their windows say so.
    With ``launch: auto`` they are replayed only where the configuration is launch-bound."""
    graphs = measure.launch in ("cuda_graph", "auto")
    specs = [
        PassSpec(
            p,
            step,
            prepare=workload.restore,
            check=lambda out, p=p: workload.health(p, out),
            replayed=(lambda p=p, step=step: workload.replayed(p, step))
            if graphs and not workload.graph_blocker(p)
            else None,
            auto=measure.launch == "auto",
        )
        for p, step in steps.items()
    ]
    return measure_passes(
        monitor,
        specs,
        repeats=measure.repeats,
        min_window_s=measure.min_window_s,
        warmup_iterations=measure.warmup_iterations,
        guard_s=guard_s,
        progress=progress,
        min_repeats=measure.min_repeats,
        target_rse=measure.target_rse,
        sized=sized,
    )


def warmed_lead_in(
    monitor: Monitor,
    step: Callable[[], object],
    max_iterations: int,
    guard_s: float,
    covered,
    tolerance: float = 0.1,
) -> float | None:
    """The warm-up and the leading guard in one; returns the lead-in's rate (seconds per
    iteration; None without a guard, after :func:`warm_up`).

    One iteration is timed, then leading guards (:func:`~flopmetrics.energy.windows.lead_in`) run
    until one's rate agrees with what ran just before it within ``tolerance``: the last warm-up
    iteration is the lead-in itself, one iteration less per pass than a warm-up followed by a lead-in.
    First use (kernel selection,
    the allocator's growth) is paid before: a job's FLOP count has run every pass once, a
    replayed pass's capture one eager iteration. At most ``max_iterations`` tries, the timed
    iteration included (none, and only a lead-in, where it is 0)."""
    if not guard_s:
        warm_up(monitor, step, max_iterations, tolerance)
        return None
    previous = math.nan
    if max_iterations:
        monitor.synchronize()  # the restore queued before it is not its time
        previous = _one_iteration_s(monitor, step)
    for _ in range(max(1, max_iterations - 1)):
        rate = lead_in(monitor, step, guard_s, covered)
        if monitor.agree(
            float(abs(rate - previous) <= tolerance * previous), "min"
        ):  # NaN: no timed iteration
            break
        previous = rate
    return rate


def warm_up(
    monitor: Monitor, step: Callable[[], object], max_iterations: int, tolerance: float = 0.1
) -> int:
    """Run ``step`` until two consecutive iterations take the same time within ``tolerance`` (the
    first ones pay for kernel selection and memory growth), at least 2 and at most
    ``max_iterations`` times (fewer than 2 if that is fewer). Returns how many ran."""
    previous = math.inf
    for i in range(max_iterations):
        took = _one_iteration_s(monitor, step)
        if monitor.agree(float(i >= 1 and abs(took - previous) <= tolerance * previous), "min"):
            return i + 1
        previous = took
    return max_iterations


def _one_iteration_s(monitor: Monitor, step: Callable[[], object]) -> float:
    """Seconds from issuing one iteration of ``step`` to the device's having run it."""
    start = time.perf_counter()
    step()
    monitor.synchronize()
    return time.perf_counter() - start


def relative_error(windows: Sequence[Window]) -> float:
    """SEM / mean of the per-iteration energy (time where no meter reads energy); inf for one window."""
    energies = [w.readings.get("energy_j", math.nan) for w in windows]
    key = "energy_j" if all(math.isfinite(e) for e in energies) else None
    est = per_iteration(windows, key)
    return est.sem / abs(est.mean) if est.count > 1 and est.mean else math.inf


def per_iteration(windows: Sequence[Window], key: str | None = None) -> Estimate:
    """Per-iteration time (``key=None``) or per-iteration reading ``key`` over windows."""
    if key is None:
        return estimate([w.elapsed_s / w.iterations for w in windows])
    return estimate([w.readings[key] / w.iterations for w in windows])


def derive(estimates: dict[str, Estimate], derived: Sequence[DerivedPass]) -> dict[str, Estimate]:
    """Add derived passes to ``estimates`` (errors propagated in quadrature)."""
    out = dict(estimates)
    for dp in derived:
        out[dp.name] = out[dp.minuend] - out[dp.subtrahend]
    return out


def stderr_progress(prefix: str) -> Callable[[str], None]:
    def _p(msg: str) -> None:
        print(f"[{prefix}] {msg}", file=sys.stderr, flush=True)

    return _p
