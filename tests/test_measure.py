import math
import sys
import time

import pytest
from conftest import REPO

from flopmetrics.contracts.errors import WindowError
from flopmetrics.contracts.vocabulary import DerivedPass
from flopmetrics.energy.windows import Monitor
from flopmetrics.jobs.iterations import warmed_lead_in
from flopmetrics.jobs.protocol import PassSpec, Protocol, measure_passes, run_window
from flopmetrics.jobs.stats import Estimate, derive, estimate, per_iteration


def measure(monitor, specs, progress=None, **settings):
    """measure_passes with a protocol of these settings (unset: every window, no guard)."""
    protocol = Protocol(
        settings["repeats"],
        settings.get("min_repeats", settings["repeats"]),
        settings.get("target_rse", 0.0),
        settings["min_window_s"],
        settings["warmup_iterations"],
        settings.get("guard_s", 0.0),
    )
    return measure_passes(monitor, specs, protocol, progress)


class CountingMeter:
    """A meter whose reading is the number of steps seen between begin and end."""

    name = "count"

    def __init__(self):
        self.steps = 0
        self.calls = []

    def begin(self, t_start):
        self.calls.append("begin")
        self._start = self.steps

    def end(self, t_end):
        self.calls.append("end")
        return {"count": float(self.steps - self._start)}


def test_window_covers_the_work_inside_it():
    mon = Monitor("cpu")
    mon.begin_window("sleep")
    time.sleep(0.05)
    w = mon.end_window("sleep")
    assert 0.05 <= w.elapsed_s < 0.5
    assert w.wall_end - w.wall_start == pytest.approx(w.elapsed_s, abs=0.01)


def test_window_misuse_is_an_error():
    mon = Monitor("cpu")
    with pytest.raises(WindowError, match="never opened"):
        mon.end_window("x")
    mon.begin_window("x")
    with pytest.raises(WindowError, match="already open"):
        mon.begin_window("x")


def test_synchronize_runs_at_open_and_close():
    calls = []
    mon = Monitor("cpu")
    mon._sync = lambda: calls.append("sync")
    mon.begin_window("a")
    calls.append("work")
    mon.end_window("a")
    assert calls == ["sync", "work", "sync"]


def test_run_window_runs_whole_iterations_until_min_elapsed():
    meter = CountingMeter()
    mon = Monitor("cpu", meters=[meter])

    def step():
        meter.steps += 1
        time.sleep(0.002)

    w = run_window(mon, "p", step, min_seconds=0.1)
    assert w.elapsed_s >= 0.1
    assert w.readings["count"] == w.iterations  # the meter saw exactly the iterations counted
    # not stopped early (each iteration sleeps 2 ms; 20 ms allows a loaded machine's late wake-ups)
    assert w.iterations >= 0.1 / 0.02
    assert w.elapsed_s < 0.3  # batches sized to the remaining time: no large overshoot
    assert meter.calls == ["begin", "end"]


def test_guard_iterations_run_outside_the_window_and_before_the_meters_are_read():
    meter = CountingMeter()
    mon = Monitor("cpu", meters=[meter])
    times = []  # each step's (start, end)

    def step():
        meter.steps += 1
        t = time.perf_counter()
        time.sleep(0.002)
        times.append((t, time.perf_counter()))

    w = run_window(mon, "p", step, min_seconds=0.05, guard_s=0.03)
    before = [t for t, _ in times if t < w.start_s]
    after = [end for t, end in times if t > w.end_s]
    assert w.iterations == len(times) - len(before) - len(after)
    # each guard ran 30 ms of steps (the 1 ms: the guard reads its clock just after the step's)
    assert w.start_s - before[0] >= 0.03 - 0.001 and after[-1] - w.end_s >= 0.03 - 0.001
    # end() ran after the guard that follows the window: the meter saw those steps too
    assert w.readings["count"] == w.iterations + len(after)
    with pytest.raises(ValueError, match="guard_s"):
        run_window(mon, "p", step, 0.01, guard_s=-1)


def test_run_window_does_not_trust_the_first_iteration():
    # a first iteration 50x slower than the rest (a warm-up effect) must not end the window early
    state = {"i": 0}

    def step():
        time.sleep(0.05 if state["i"] == 0 else 0.001)
        state["i"] += 1

    w = run_window(Monitor("cpu"), "p", step, min_seconds=0.15)
    assert w.elapsed_s >= 0.15
    assert w.iterations > 20


def test_measure_passes_derives_one_pass_after_the_other():
    order = []
    specs = [
        PassSpec("a", lambda: (order.append("a"), time.sleep(0.002))),
        PassSpec("ab", lambda: (order.append("ab"), time.sleep(0.004))),
    ]
    windows = measure(Monitor("cpu"), specs, repeats=3, min_window_s=0.02, warmup_iterations=1)
    assert [len(v) for v in windows.values()] == [3, 3]
    est = derive({k: per_iteration(v) for k, v in windows.items()}, [DerivedPass("b", "ab", "a")])
    assert est["b"].mean == pytest.approx(est["ab"].mean - est["a"].mean)
    assert est["b"].sem == pytest.approx(math.hypot(est["ab"].sem, est["a"].sem))
    assert 0.001 < est["b"].mean < 0.01
    # every window of "a" (warm-up first) before any of "ab": a pass's windows run back to back
    first_ab = order.index("ab")
    assert set(order[:first_ab]) == {"a"} and set(order[first_ab:]) == {"ab"}
    assert windows["a"][-1].end_s <= windows["ab"][0].start_s


def test_the_fixed_protocol_of_the_benchmark_interleaves_the_passes():
    """benchmarks/protocol_compare.py compares the pipeline against the protocol of 2026-11-27,
    which it alone holds: passes warmed up first, then rounds of one window per pass."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from protocol_compare import fixed_protocol

    order = []
    specs = [
        PassSpec("a", lambda: (order.append("a"), time.sleep(0.002))),
        PassSpec("ab", lambda: (order.append("ab"), time.sleep(0.004))),
    ]
    windows = fixed_protocol(Monitor("cpu"), specs, Protocol(3, 3, 0.0, 0.02, 1, 0.0))
    assert [len(v) for v in windows.values()] == [3, 3]
    assert order[:2] == ["a", "ab"]  # warm-up of every pass first, then rounds
    assert windows["a"][1].start_s > windows["ab"][0].end_s  # round 2 of "a" after round 1 of "ab"


def test_one_guard_between_back_to_back_windows_frames_both_edges():
    """Between two windows of a pass run the restore and then one stretch of the pass's own
    iterations, lasting until the meter covers the edge: it is the trailing guard of one window
    and the leading guard of the next."""
    log = []

    class Meter:  # "covers" an edge 30 ms after it, like a counter that steps late
        name = "late"

        def begin(self, t):
            log.append(("begin", time.perf_counter()))

        def covers(self, t):
            return time.perf_counter() > t + 0.03

        def end(self, t):
            log.append(("read", time.perf_counter()))
            return {"energy_j": 1.0}

    def step():
        log.append(("it", time.perf_counter()))
        time.sleep(0.002)

    spec = PassSpec("p", step, prepare=lambda: log.append(("restore", time.perf_counter())))
    windows = measure(
        Monitor("cpu", [Meter()]),
        [spec],
        repeats=3,
        min_window_s=0.02,
        warmup_iterations=1,
        guard_s=0.005,
    )
    assert len(windows["p"]) == 3
    events = [e for e, _ in log]
    begins = [i for i, e in enumerate(events) if e == "begin"]
    reads = [i for i, e in enumerate(events) if e == "read"]
    assert events.count("restore") == 4  # before the first guard, and after each window
    for window, (read, next_begin) in enumerate(zip(reads, begins[1:], strict=False)):
        between = events[read + 1 : next_begin]
        assert between == [], (
            f"work between window {window}'s reading and the next window's start: {between}"
        )
        closed = windows["p"][window].end_s
        guard = [t for e, t in log[begins[window] : read] if e == "it" and t > closed]
        assert (
            guard and guard[-1] > closed + 0.03 - 0.003
        )  # the guard ran until the edge was covered


def test_windows_of_a_recording_meter_run_back_to_back_and_are_read_later():
    """A meter that keeps a record (the GPU counter, the trace) reads past windows: until the
    stopping rule needs a reading, the next window frames each edge, with no guard between."""
    log = []

    class Recorder:
        name = "recorder"

        def begin(self, t):
            self.t0 = t
            log.append(("begin", time.perf_counter()))

        def covers(self, t):
            return time.perf_counter() > t + 0.03

        def end(self, t):
            return self.read(self.t0, t)

        def read(self, t0, t1):
            assert time.perf_counter() > t1 + 0.03, "read before work had run past the edge"
            log.append(("read", time.perf_counter()))
            return {"energy_j": t1 - t0}

    def step():
        log.append(("it", time.perf_counter()))
        time.sleep(0.002)

    monitor = Monitor("cpu", [Recorder()])
    windows = measure(
        monitor,
        [PassSpec("p", step)],
        repeats=4,
        min_window_s=0.02,
        warmup_iterations=1,
        guard_s=0.005,
        min_repeats=3,
        target_rse=0.5,
    )
    w = windows["p"]
    assert len(w) == 3  # precise at the first decision
    assert all(x.readings["energy_j"] == pytest.approx(x.end_s - x.start_s) for x in w)
    events = [e for e, _ in log]
    begins = [i for i, e in enumerate(events) if e == "begin"]
    # nothing ran between window 1's close and window 2's start, nor between 2 and 3
    for k in (0, 1):
        its = [t for e, t in log[begins[k] : begins[k + 1]] if e == "it" and t > w[k].end_s]
        assert its == []
    # after the third window, a guard ran until its edge was covered, then all three were read
    # (read() asserts the covering; how close the last guard step came to it is the host's pace)
    assert events[-3:] == ["read"] * 3
    first_read = next(t for e, t in log if e == "read")
    trailing = [t for e, t in log if e == "it" and t > w[2].end_s]
    assert trailing and trailing[-1] < first_read


def test_each_pass_stops_once_it_is_precise():
    calls = {"n": 0}

    def step():
        calls["n"] += 1

    class Meter:  # pass "noisy" scatters by 50 % window to window, "steady" not at all
        name = "fake"

        def __init__(self):
            self.k = 0

        def begin(self, t):
            self.first = calls["n"]

        def end(self, t):
            self.k += 1
            scatter = 0.5 * (-1) ** self.k if monitor.current == "noisy" else 0.0
            return {"energy_j": (calls["n"] - self.first) * (1 + scatter)}

    monitor = Monitor("cpu", [Meter()])
    specs = []
    for name in ("steady", "noisy"):
        specs.append(
            PassSpec(name, step, prepare=lambda name=name: setattr(monitor, "current", name))
        )
    windows = measure(
        monitor,
        specs,
        repeats=8,
        min_window_s=0.005,
        warmup_iterations=1,
        min_repeats=3,
        target_rse=0.01,
    )
    assert len(windows["steady"]) == 3 and not windows["steady"][0].replaces
    # scattered, but 8 repeats cannot pay for 4 short windows and 3 twice as long: all 8 short
    assert len(windows["noisy"]) == 8 and not windows["noisy"][0].replaces


def test_estimate_mean_sem_cv():
    e = estimate([1.0, 2.0, 3.0, 4.0])
    assert e.mean == 2.5
    assert e.sem == pytest.approx(math.sqrt(5 / 3) / 2)
    assert e.cv == pytest.approx(math.sqrt(5 / 3) / 2.5)
    assert math.isnan(estimate([1.0]).sem)
    with pytest.raises(ValueError):
        estimate([])


def test_difference_propagates_in_quadrature():
    d = Estimate(10.0, 0.3, 5) - Estimate(4.0, 0.4, 5)
    assert (d.mean, d.sem) == (6.0, pytest.approx(0.5))
    assert Estimate(2.0, 0.1, 3).scale(-3).sem == pytest.approx(0.3)


def answered(ok: bool):
    """A numeric check's result call that holds no reference to what was checked."""
    return lambda: (ok, "")


def test_an_iteration_never_runs_while_the_previous_output_is_alive():
    # a kept loss holds its autograd graph: two alive at once doubled activation memory (Llama fp32
    # s768 ran out of memory on an 80 GB H100); the window keeps only the last output, for the check
    import gc
    import weakref

    class Output:
        pass

    previous = []

    def step():
        gc.collect()
        assert not previous or previous[-1]() is None, "previous iteration's output still alive"
        out = Output()
        previous.append(weakref.ref(out))
        return out

    w = run_window(
        Monitor("cpu"),
        "p",
        step,
        min_seconds=0.05,
        guard_s=0.01,
        check=lambda last: answered(isinstance(last, Output)),
    )
    assert w.iterations >= 1 and w.numerics == "finite"


def test_repeats_stop_once_every_pass_is_precise_enough():

    calls = {"n": 0}

    def step():
        calls["n"] += 1
        return sum(range(2000))

    class Meter:  # 1 J per iteration, alternately off by +-scatter: precision independent of timing
        name = "fake"

        def __init__(self, scatter):
            self.scatter, self.windows = scatter, 0

        def begin(self, t):
            self.first = calls["n"]

        def end(self, t):
            self.windows += 1
            # rounds alternate high and low (two passes per round)
            return {
                "energy_j": (calls["n"] - self.first)
                * (1 + self.scatter * (-1) ** (self.windows // 2))
            }

    def run(scatter, **kw):
        monitor = Monitor("cpu", [Meter(scatter)])
        specs = [PassSpec("a", step), PassSpec("b", step)]
        return measure(monitor, specs, repeats=8, min_window_s=0.01, warmup_iterations=1, **kw)

    steady = run(0.0, min_repeats=3, target_rse=0.05)
    assert {len(w) for w in steady.values()} == {3}  # precise at once: the minimum, then done
    noisy = run(0.5, min_repeats=3, target_rse=0.005)
    assert {len(w) for w in noisy.values()} == {8}  # never precise enough: the maximum
    fixed = run(0.0, min_repeats=3, target_rse=0.0)
    assert {len(w) for w in fixed.values()} == {8}  # no target: every repeat


def test_the_last_warm_up_iteration_is_the_lead_in(monkeypatch):
    """Before a pass's first window: one timed iteration, then leading guards until one's rate
    agrees with what ran before it (10 %); a steady pass pays two iterations, not three."""
    from types import SimpleNamespace

    from flopmetrics.jobs import iterations

    # a simulated clock that only the steps advance: a loaded machine's late wake-ups from
    # sleep would otherwise move a 20 ms iteration past the 10 % agreement (seen on CI)
    clock = SimpleNamespace(now=0.0)
    monkeypatch.setattr(iterations, "time", SimpleNamespace(perf_counter=lambda: clock.now))

    class Counter:  # covers an edge 5 ms after it, like a counter that steps late
        name = "late"

        def covers(self, t):
            return clock.now > t + 0.005

        def begin(self, t):
            pass

        def end(self, t):
            return {}

    def pre_window(durations, max_iterations):
        ran = []

        def step():
            clock.now += durations[min(len(ran), len(durations) - 1)]
            ran.append(1)

        monitor = Monitor("cpu", [Counter()])
        rate = warmed_lead_in(
            monitor,
            step,
            max_iterations,
            0.001,
        )
        return len(ran), rate

    n, rate = pre_window([0.02], 3)
    assert n == 2 and rate == pytest.approx(0.02, rel=0.3)
    n, rate = pre_window([0.08, 0.04, 0.02], 5)  # settling over two iterations: two more lead-ins
    assert n == 4 and rate == pytest.approx(0.02, rel=0.3)
    n, _ = pre_window(
        [0.08, 0.04, 0.02], 2
    )  # at most two tries: the timed iteration and one lead-in
    assert n == 2
    n, _ = pre_window([0.02], 0)  # no warm-up: the lead-in alone
    assert n == 1
    assert warmed_lead_in(Monitor("cpu"), lambda: None, 3, 0.0) is None


def test_launch_auto_replays_without_the_profiler_where_issuing_takes_most_of_the_iteration():
    """On a CPU 'device' the host's issue time is the whole iteration: the issue share alone
    decides (replayed), and the profiler is not asked (its GPU idle share stays NaN)."""
    from flopmetrics.jobs import launch

    specs = [
        PassSpec(p, lambda: time.sleep(0.002), replayed=lambda: None, auto=True)
        for p in ("forward_train", "forward")
    ]
    chosen = launch.choose(Monitor("cpu"), specs)
    assert all(s.replayed is not None for s in chosen)
    judged = {s.name: s.launch_check for s in chosen}
    assert judged["forward_train"] == {}  # the forward is judged, wherever it stands
    assert judged["forward"]["host_issue_share"] >= launch.AUTO_ISSUE
    assert math.isnan(judged["forward"]["gpu_idle_share"])


def test_scattered_windows_are_superseded_by_longer_ones():
    """Four windows that scatter more than twice the RSE target (as a power-capped card's
    regulation does over ~1 s windows) are measured again in windows twice as long; the short
    ones stay in the trace under their own name."""
    import pandas as pd

    from flopmetrics.jobs.rows import label_trace

    calls = {"n": 0}

    def step():
        calls["n"] += 1
        return sum(range(2000))

    class Meter:  # 1 J per iteration, alternately off by 4 % in short windows, 0.5 % in long ones
        name = "fake"

        def __init__(self):
            self.k = 0

        def begin(self, t):
            self.first, self.t0 = calls["n"], t

        def end(self, t):
            self.k += 1
            scatter = 0.04 if t - self.t0 < 0.04 else 0.005
            return {"energy_j": (calls["n"] - self.first) * (1 + scatter * (-1) ** self.k)}

    monitor = Monitor("cpu", [Meter()])
    said = []
    windows = measure(
        monitor,
        [PassSpec("p", step)],
        repeats=10,
        min_window_s=0.02,
        warmup_iterations=1,
        min_repeats=3,
        target_rse=0.005,
        progress=said.append,
    )
    kept = windows["p"]
    assert len(kept[0].replaces) == 4 and all(w.elapsed_s < 0.04 for w in kept[0].replaces)
    assert len(kept) == 3 and all(w.elapsed_s >= 0.04 for w in kept)  # 4 + 2 x 3 = all 10 repeats
    assert any("measured again in windows of 0.04 s" in line for line in said)

    ends = [w.end_s for w in kept[0].replaces + kept]
    trace = pd.DataFrame({"t": [t - 1e-4 for t in ends]})
    labelled = label_trace(trace, windows, None)
    assert list(labelled["window"]) == ["p (superseded)"] * 4 + ["p"] * 3
    assert list(labelled["repeat"]) == [0, 1, 2, 3, 0, 1, 2]
