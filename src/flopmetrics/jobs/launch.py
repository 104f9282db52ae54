"""``launch: auto``: replay a configuration's passes from CUDA graphs only where eager launching
holds the GPU up.

An eager pass is launch-bound when the host issues its kernels more slowly than the GPU runs
them: the GPU then idles between kernels and the pass's time and energy follow the host's speed
from window to window, at an unchanged SM clock. A GPU-bound pass loses nothing eager, and its
graph would cost a capture. (The measurements behind every threshold here: ``docs/benchmarks.md``,
"`launch: auto`".)

A training configuration is judged by its forward, its cheapest pass to check (the other passes
of a configuration idle about as much as its forward); a serving configuration's passes, prefill
and decode, each on its own (:func:`choose`). Cheaply first: after one iteration from a
synchronized, idle GPU, the GPU can have idled at most while the host was still issuing, so
where issuing took at most ``AUTO_IDLE`` of the iteration the configuration is GPU-bound.
Otherwise two back-to-back iterations under ``torch.profiler`` say how much of the time no
kernel ran. Above ``AUTO_IDLE`` every pass that can be captured is replayed, so the derived
passes (``backward`` = ``forward_backward`` - ``forward_train``) subtract like from like.

Where issuing took at least ``AUTO_ISSUE`` (half) of the iteration, the passes are replayed
without the profiler (every forward issued that slowly was found idle for a large share of its
time), and a replay that was not needed costs only its capture, for it runs eager's kernels
(``tests/test_gpu_real.py``). The profiler's first start in a job costs seconds.

``AUTO_IDLE`` is 3 %: passes that idle more than that scatter over 1 % (CV) between 1 s windows,
the target of the thesis sweep, and those idling less do not.
"""

from __future__ import annotations

import dataclasses
import math
import time

from ..contracts.vocabulary import SERVING_PASSES
from .kernels import profile

AUTO_IDLE = 0.03
AUTO_ISSUE = 0.5
PROFILED_ITERATIONS = 2


def idle_shares(monitor, step, device: str, what: str) -> dict[str, float]:
    """``host_issue_share`` (time to issue one iteration over its time, from an idle GPU: an
    upper bound of the GPU's idle share) and ``gpu_idle_share`` (profiled; NaN where the issue
    share decides alone: at most ``AUTO_IDLE``, or at least ``AUTO_ISSUE``) of an eager ``step``."""
    monitor.synchronize()
    start = time.perf_counter()
    step()
    issued = time.perf_counter()
    monitor.synchronize()
    share = (issued - start) / (time.perf_counter() - start)
    if share <= AUTO_IDLE or share >= AUTO_ISSUE:
        return {"host_issue_share": share, "gpu_idle_share": math.nan}
    try:
        p = profile(step, PROFILED_ITERATIONS, device, what)
    except RuntimeError as err:  # e.g. a profiler that sees no kernels: say what to do instead
        raise RuntimeError(
            f"launch auto could not measure how long the GPU idles in {what} ({err}); "
            "set launch to eager or cuda_graph for this job"
        ) from err
    return {"host_issue_share": share, "gpu_idle_share": max(0.0, 1 - p["busy_ms"] / p["wall_ms"])}


def choose(monitor, specs: list, progress=None) -> list:
    """``specs`` of one configuration with ``replayed`` kept only where launch-bound. A
    training configuration is judged as a whole, by its forward, else its first pass (its
    derived passes subtract like from like); serving passes each on their own (a prompt's
    prefill is bound by compute where the same batch's decode waits on the host). A judged pass
    gets its shares in ``launch_check``."""
    if all(s.name in SERVING_PASSES for s in specs):
        return [_judged([s], s, monitor, progress)[0] for s in specs]
    judged = next((s for s in specs if s.name == "forward"), specs[0])
    return _judged(specs, judged, monitor, progress)


def _judged(specs: list, judged, monitor, progress) -> list:
    """``specs`` replayed if ``judged`` (one of them) is launch-bound, else eager."""
    # no first-use iteration here: the job's FLOP count has run every pass once; where a first use
    # still inflates the issue time, the profiled iterations that follow decide
    start = time.perf_counter()
    check = idle_shares(monitor, judged.step, monitor.device, judged.name)
    bound = (
        check["host_issue_share"] >= AUTO_ISSUE or check["gpu_idle_share"] > AUTO_IDLE
    )  # NaN is not
    if progress:
        verdict = "launch-bound, replayed from CUDA graphs" if bound else "eager"
        took = time.perf_counter() - start
        progress(
            f"launch auto: {judged.name} host issue {_pct(check['host_issue_share'])} %, "
            f"GPU idle {_pct(check['gpu_idle_share'])} % (checked in {took:.1f} s): {verdict}"
        )
    return [
        dataclasses.replace(
            s, replayed=s.replayed if bound else None, launch_check=check if s is judged else {}
        )
        for s in specs
    ]


def _pct(share: float) -> str:
    return "-" if math.isnan(share) else f"{100 * share:.0f}"
