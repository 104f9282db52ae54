"""``launch: auto``: replay a configuration's passes from CUDA graphs only where eager launching
holds the GPU up.

An eager pass is launch-bound when the host issues its kernels more slowly than the GPU runs
them: the GPU then idles between kernels and the pass's time and energy follow the host's speed
from window to window (on one H200 host an eager bf16 forward at 256 tokens took 12.4 to 20.7 ms
at an unchanged SM clock, 4.7 % energy CV over 1 s windows; replayed, 0.6 %). A GPU-bound pass
loses nothing eager, and its graph would cost a capture.

Per pass, cheaply first: after one iteration from a synchronized, idle GPU, the GPU can have
idled at most while the host was still issuing, so where issuing took at most ``AUTO_IDLE`` of
the iteration the pass is GPU-bound. Otherwise two back-to-back iterations under
``torch.profiler`` say how much of the time no kernel ran. If any pass of the configuration
idles more than ``AUTO_IDLE``, every pass that can be captured is replayed: the derived passes
(``backward`` = ``forward_backward`` - ``forward_train``) then subtract like from like.
"""

from __future__ import annotations

import dataclasses
import math
import time

from .kernels import profile

AUTO_IDLE = 0.10
PROFILED_ITERATIONS = 2


def idle_shares(monitor, step, device: str, what: str) -> dict[str, float]:
    """``host_issue_share`` (time to issue one iteration over its time, from an idle GPU: an
    upper bound of the GPU's idle share) and ``gpu_idle_share`` (profiled, NaN where the bound
    already clears the pass) of an eager ``step``, whose first use has been paid for."""
    monitor.synchronize()
    start = time.perf_counter()
    step()
    issued = time.perf_counter()
    monitor.synchronize()
    share = (issued - start) / (time.perf_counter() - start)
    if share <= AUTO_IDLE:
        return {"host_issue_share": share, "gpu_idle_share": math.nan}
    p = profile(step, PROFILED_ITERATIONS, device, what)
    return {"host_issue_share": share, "gpu_idle_share": max(0.0, 1 - p["busy_ms"] / p["wall_ms"])}


def choose(monitor, specs: list, progress=None) -> list:
    """``specs`` of one configuration with ``replayed`` kept only if the configuration is
    launch-bound, each with its shares in ``launch_check``."""
    checks = {}
    for spec in specs:
        spec.step()  # first use: kernel selection, allocator growth
        checks[spec.name] = idle_shares(monitor, spec.step, monitor.device, spec.name)
    worst = max((c["gpu_idle_share"] for c in checks.values() if not math.isnan(c["gpu_idle_share"])),
                default=0.0)
    bound = worst > AUTO_IDLE
    if progress:
        shares = ", ".join(f"{n} {_pct(c['host_issue_share'])}/{_pct(c['gpu_idle_share'])}" for n, c in checks.items())
        verdict = "launch-bound, replayed from CUDA graphs" if bound else "eager"
        progress(f"launch auto: host issue / GPU idle % {shares}: {verdict}")
    return [dataclasses.replace(s, replayed=s.replayed if bound else None, launch_check=checks[s.name])
            for s in specs]


def _pct(share: float) -> str:
    return "-" if math.isnan(share) else f"{100 * share:.0f}"
