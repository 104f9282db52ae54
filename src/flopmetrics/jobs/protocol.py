"""The measuring protocol, in one place: how every pass is measured, by profiling jobs, by
distributed ranks and by :func:`flopmetrics.measure` alike.

A pass is warmed up and led in (:func:`~flopmetrics.jobs.iterations.warmed_lead_in`), then its
windows of whole iterations run back to back, each issued as one batch sized by the rate seen
just before it, between that leading guard and a trailing one of the same iterations. Where the
meters read past windows from their record (the GPU counter and trace), a window is the next
one's guard and is read later; a guard runs only where the stopping rule needs a reading (after
``min_repeats`` windows). Windows are added until the pass's per-iteration energy (time where no
meter reads energy) has ``target_rse`` relative standard error, at most ``repeats``; four or
more windows that scatter over ``SPREAD`` x ``target_rse`` are superseded by windows twice as
long, each spending two repeats. Before every window the pass's ``prepare`` runs (outside it),
and at its close what it computed is checked finite. A pass replayed from a CUDA graph holds its
graph only while it is measured.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..energy.windows import Monitor, Window
from . import launch
from .iterations import edge_covered, run_for, warmed_lead_in
from .stats import relative_error

# Windows whose CV exceeds SPREAD x target_rse (what the RSE target allows at 4 windows) are too
# short to be worth adding to (a power-capped card regulates over about a second); 4 or more of
# them are superseded by windows twice as long where the repeats left pay for ``min_repeats``.
SPREAD = 2.0


@dataclass(frozen=True)
class Protocol:
    """How a pass's windows are measured (a job's ``measure`` settings and its energy block's
    ``guard_s``; their meaning and defaults: the config schema and config/README.md)."""

    repeats: int  # at most this many windows per pass (a window k times as long spends k)
    min_repeats: int  # at least this many (or ``repeats``, if fewer)
    target_rse: float  # stop once the estimate has this relative standard error (0: never early)
    min_window_s: float  # each window runs whole iterations for at least this long
    warmup_iterations: int  # at most this many tries before the first window
    guard_s: float  # same-pass iterations framing each window's edges (0: none)

    def __post_init__(self):
        if not isinstance(self.repeats, int) or self.repeats < 1:
            raise ValueError(f"repeats must be a positive integer, got {self.repeats!r}")
        if self.min_window_s < 0 or self.guard_s < 0:
            raise ValueError(
                f"min_window_s and guard_s must be >= 0, got {self.min_window_s} and {self.guard_s}"
            )

    @classmethod
    def of(cls, measure, guard_s: float) -> Protocol:
        """A job's protocol: its ``MeasureSettings`` and guard."""
        return cls(
            measure.repeats,
            measure.min_repeats,
            measure.target_rse,
            measure.min_window_s,
            measure.warmup_iterations,
            guard_s,
        )

    @classmethod
    def one_window(cls, min_seconds: float, guard_s: float = 0.0) -> Protocol:
        """A single window of at least ``min_seconds``, with guards around it and no warm-up."""
        return cls(1, 1, 0.0, min_seconds, 0, guard_s)


@dataclass
class PassSpec:
    """One directly measured pass: ``step`` runs exactly one iteration of it; ``prepare`` runs
    before each of its windows (outside them: the workload's starting weights back); ``check``
    queues the numeric-health check of an iteration's output and returns a call that gives
    ``(finite, first non-finite tensor)``; ``replayed``, if given, is a context manager that
    captures ``step`` in a CUDA graph and yields a call that replays it (config ``launch:
    cuda_graph``): the pass's windows then run the replay. With ``auto`` (config ``launch:
    auto``) the replay is kept only if the pass's configuration is launch-bound
    (:mod:`.launch`), and ``launch_check`` holds what was measured to decide."""

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


Progress = Callable[[str], None] | None


def measure_passes(
    monitor: Monitor, passes: Sequence[PassSpec], protocol: Protocol, progress: Progress = None
) -> dict[str, list[Window]]:
    """The windows of every pass, one pass after the other (:func:`measure_pass`); with ``auto``
    passes, first whether the configuration is launch-bound (:func:`.launch.choose`). An error
    in a pass carries the windows of those before it (``err.measured``)."""
    if any(spec.auto and spec.replayed for spec in passes):  # none replayable: nothing to choose
        passes = launch.choose(monitor, list(passes), progress)
    out = {}
    for spec in passes:
        try:
            out[spec.name] = measure_pass(monitor, spec, protocol, progress)
        except Exception as err:
            # the passes measured before it stay usable (a train step that does not fit beside
            # a forward that did): the caller finds them on the error
            err.measured = out
            raise
    return out


def measure_pass(
    monitor: Monitor, spec: PassSpec, protocol: Protocol, progress: Progress = None
) -> list[Window]:
    """The windows of one pass, measured as the module says."""
    with spec.replayed() if spec.replayed else contextlib.nullcontext(spec.step) as step:
        return _PassWindows(monitor, spec, step, protocol, progress).run()


def run_window(
    monitor: Monitor,
    name: str,
    step: Callable[[], object],
    min_seconds: float,
    guard_s: float = 0.0,
    check: Callable[[object], Callable[[], tuple[bool, str]]] | None = None,
) -> Window:
    """One window of whole iterations of ``step`` lasting at least ``min_seconds``, framed by at
    least ``guard_s`` of the same iterations (and, where a meter says when an edge is covered,
    until it is): the protocol with one window and no warm-up."""
    spec = PassSpec(name, step, check=check)
    return measure_pass(monitor, spec, Protocol.one_window(min_seconds, guard_s))[0]


class _PassWindows:
    """The back-to-back windows of one pass (its state: the windows so far, those superseded,
    the window length in units of ``min_window_s`` and the repeats spent)."""

    def __init__(self, monitor, spec, step, protocol: Protocol, progress: Progress):
        self.monitor, self.spec, self.step, self.p, self.progress = (
            monitor,
            spec,
            step,
            protocol,
            progress,
        )
        self.min_repeats = min(protocol.min_repeats, protocol.repeats)
        self.covered = edge_covered(monitor)
        # windows whose meters read the past need no guard between them: the next window frames
        # the edge, and they are read once a guard has run past a later edge
        late = any(hasattr(m, "covers") for m in monitor.meters)
        self.defer = bool(protocol.guard_s) and late and monitor.can_defer()
        self.windows: list[Window] = []
        self.short: list[Window] = []  # superseded: too short to hold the windows' spread
        self.k = self.spent = self.count = (
            0  # window length (in min_window_s), repeats spent, windows
        )
        self.rate = None

    def run(self) -> list[Window]:
        if self.spec.prepare:
            self.spec.prepare()
        p = self.p
        self.rate = warmed_lead_in(self.monitor, self.step, p.warmup_iterations, p.guard_s)
        self.k = 1
        while self.spent + self.k <= p.repeats:
            last, decide = self._window()
            if decide and self._enough(last):
                break
        self.windows[0].replaces = self.short  # kept for the trace, which labels them
        return self.windows

    def _window(self) -> tuple[bool, bool]:
        """One window; returns (it was the last the repeats allow, the stopping rule applies)."""
        p, spec, kept = self.p, self.spec, {}
        self.spent += self.k
        self.count += 1
        last = self.spent + self.k > p.repeats
        # a window after which the stopping rule is applied (or the last) is read at once
        decide = last or (len(self.windows) + 1 >= self.min_repeats and p.target_rse > 0)
        self.monitor.begin_window(spec.name)
        done = run_for(
            self.monitor, self.step, self.k * p.min_window_s, keep=kept, per_iteration_s=self.rate
        )
        w = self.monitor.end_window(
            spec.name,
            settle=lambda: self._settle(kept, guard=decide or not self.defer),
            defer=self.defer and not decide,
        )
        w.iterations, w.launch, w.launch_check = done, spec.launch, spec.launch_check
        if spec.check:
            finite, first = kept["result"]()
            w.numerics, w.first_nonfinite = ("finite" if finite else "non_finite"), first
        self.windows.append(w)
        self.rate = w.elapsed_s / done
        if decide:
            for earlier in self.windows:
                if not earlier.readings:
                    self.monitor.read(earlier)
        self._report(w)
        return last, decide

    def _settle(self, kept: dict, guard: bool) -> None:
        """The trailing guard, and the next window's leading one."""
        if self.spec.check:  # queued before the guard overwrites what the window computed
            kept["result"] = self.spec.check(kept.pop("last"))
        if self.spec.prepare:
            self.spec.prepare()
        if self.p.guard_s and guard:
            until = self.covered(self.monitor.last_close_s)
            run_for(self.monitor, self.step, self.p.guard_s, per_iteration_s=self.rate, until=until)

    def _enough(self, last: bool) -> bool:
        """Whether the pass is measured: precise enough, or (windows superseded) not yet."""
        p, n = self.p, len(self.windows)
        if n < self.min_repeats or p.target_rse <= 0:
            return False
        worst = worst_rse(self.monitor, [self.windows])
        cv = worst * math.sqrt(n)
        scattered = n >= 4 and math.isfinite(cv) and cv > SPREAD * p.target_rse
        if scattered and p.repeats - self.spent >= 2 * self.k * self.min_repeats:
            self._say(
                f"{self.spec.name}: {n} windows of {self.k * p.min_window_s:g} s scatter "
                f"{100 * cv:.2f} % (over {100 * SPREAD * p.target_rse:g} %): measured again in "
                f"windows of {2 * self.k * p.min_window_s:g} s"
            )
            self.short, self.windows, self.k = self.short + self.windows, [], 2 * self.k
            return False
        return precise(worst, p.target_rse, n, None if last else self.progress, self.spec.name)

    def _report(self, w: Window) -> None:
        health = "" if w.numerics == "unknown" else f", {w.numerics}"
        bad = f" ({w.first_nonfinite})" if w.first_nonfinite else ""
        graph = ", CUDA graph" if w.launch == "cuda_graph" else ""
        self._say(
            f"repeat {self.count}/{self.p.repeats} {w.name}: {w.iterations} it in "
            f"{w.elapsed_s:.3f} s{graph}{health}{bad}"
        )

    def _say(self, message: str) -> None:
        if self.progress:
            self.progress(message)


def worst_rse(monitor: Monitor, window_lists: Sequence[Sequence[Window]]) -> float:
    """The largest relative standard error over the lists, agreed over ranks (all decide alike)."""
    return monitor.agree(max(relative_error(ws) for ws in window_lists))


def precise(worst: float, target_rse: float, n: int, progress: Progress, what: str) -> bool:
    """Whether ``worst`` has reached ``target_rse``; says so to ``progress`` if given."""
    if worst <= target_rse and progress:
        progress(
            f"{what} within {100 * target_rse:g} % relative standard error after {n} repeats "
            f"(worst {100 * worst:.2f} %): done"
        )
    return worst <= target_rse


def workload_passes(workload, steps: dict[str, Callable[[], object]], launch_mode: str) -> list:
    """The :class:`PassSpec` of each of ``steps`` (pass name -> one iteration) of ``workload``:
    its starting state put back before every window, what each window computed checked finite.
    With ``launch_mode`` ``cuda_graph`` every pass the workload can capture
    (:meth:`~flopmetrics.workloads.base.Workload.graph_blocker`) is replayed from a CUDA graph;
    with ``auto`` only where the configuration is launch-bound; the others run eager."""
    graphs = launch_mode in ("cuda_graph", "auto")
    return [
        PassSpec(
            p,
            step,
            prepare=workload.restore,
            check=lambda out, p=p: workload.health(p, out),
            replayed=(lambda p=p, step=step: workload.replayed(p, step))
            if graphs and not workload.graph_blocker(p)
            else None,
            auto=launch_mode == "auto",
        )
        for p, step in steps.items()
    ]


def stderr_progress(prefix: str) -> Callable[[str], None]:
    """A progress callback printing ``[prefix] message`` lines to stderr (the job's log)."""

    def say(message: str) -> None:
        print(f"[{prefix}] {message}", file=sys.stderr, flush=True)

    return say
