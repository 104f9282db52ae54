"""The step-time model (:func:`flopmetrics.analysis.steptime.step`) on many steps at once, for
the fit's search: what of each operation stream no fitted parameter changes is summed once per
stream (kernels by kind, bytes by kind of memory-bound kernel, operations by issuing phase), so
that one evaluation of every row is a few array operations. A search evaluates its rows
thousands of times; :func:`~flopmetrics.analysis.steptime.step`, kernel by kernel, took about
0.4 ms a row each time (``docs/benchmarks.md``).

Only the matrix products keep a term each (``max(F / R, B / BW)`` is not linear in the
parameters); identical ones are kept once, with their count.
"""

from __future__ import annotations

import numpy as np

from .steptime import (
    ENERGIES,
    HOSTS,
    SLOW,
    SPEEDS,
    filled,
    kernel_kinds,
    memory_factors,
    memory_kinds,
    products,
    rate_kinds,
)
from .steptime_attention import measured_by, table_of

_KEY = "_steptime_batch"  # where a stream keeps its sums, per attention table


class Steps:
    """Operation streams, each with its idle power and power limit, priced together."""

    def __init__(self, streams: list[dict], idle_w, limit_w, held: dict | None = None):
        sums = [_sums(ops, held or {}) for ops in streams]
        self.idle_w = np.asarray(idle_w, float)
        self.headroom = np.maximum(np.asarray(limit_w, float) - self.idle_w, 1e-9)
        self.fixed = np.array([s["fixed"] for s in sums])  # (kernels, measured s, measured J)
        self.hosts = np.array([s["hosts"] for s in sums])
        self.time_bytes = np.array([s["time_bytes"] for s in sums])
        self.energy_bytes = np.array([s["energy_bytes"] for s in sums])
        self.kind_flops = np.array([s["kind_flops"] for s in sums])
        gemms = [s["gemms"] for s in sums]
        self.row = np.concatenate([np.full(len(g), i) for i, g in enumerate(gemms)])
        self.gemms = np.concatenate(gemms)
        self.rates = sums[0]["rates"]  # the same names for every stream

    def evaluate(self, p: dict) -> tuple[np.ndarray, np.ndarray]:
        """Each step's (energy J, time s) per :func:`~flopmetrics.analysis.steptime.step`."""
        p = filled(p)
        kind, flops, moved, count = self.gemms.T
        rate = np.array([p[n] for n in self.rates])[kind.astype(int)]
        each = np.maximum(flops / rate, moved / p["bandwidth"]) * count
        speeds = memory_factors(p, SPEEDS)
        gpu = np.bincount(self.row, each, minlength=len(self.fixed))
        gpu += self.time_bytes @ (1.0 / (p["bandwidth"] * speeds))
        gpu += self.fixed[:, 0] * p["tau_s"] + self.fixed[:, 1]
        host = self.hosts @ np.array([p[f"host_{name}_s"] for _, name in HOSTS])
        per_flop = np.array([p["e_flop_j"], *(p[SLOW[k][1]] for k in _KINDS)])
        dynamic = p["e_byte_j"] * (self.energy_bytes @ memory_factors(p, ENERGIES))
        dynamic += self.fixed[:, 2]
        dynamic += self.kind_flops @ per_flop
        time = np.maximum(np.maximum(gpu, host), dynamic / self.headroom)
        return self.idle_w * time + dynamic, time


def _sums(ops: dict, held: dict) -> dict:
    """One stream's sums (kept in ``ops`` per attention table: a fit prices the same streams
    many times, and a left-out fit a part of them)."""
    cache = ops.setdefault(_KEY, {})
    table = table_of(held)
    if table not in cache:
        cache[table] = _summed(ops, held)
    return cache[table]


def _summed(ops: dict, held: dict) -> dict:
    seconds, joules = measured_by(held, ops)
    priced = np.isfinite(seconds)  # measured whole: time and dynamic energy, bytes with it
    product, memory = products(ops), memory_kinds(ops)
    rates, rate = rate_kinds(ops)
    gemm = product & ~priced
    gemms, count = np.unique(
        np.column_stack([rate[gemm], ops["flops"][gemm], ops["bytes"][gemm]]),
        axis=0,
        return_counts=True,
    )
    kinds = kernel_kinds(ops)
    fast = gemm & ~np.any([kinds[k] for k in _KINDS], axis=0)
    by_memory = lambda where: [  # noqa: E731
        float(ops["bytes"][where & (memory == i)].sum()) for i in range(len(SPEEDS) + 1)
    ]
    return {
        "fixed": (len(ops["cls"]), float(seconds[priced].sum()), float(joules[priced].sum())),
        "hosts": [int(np.sum(ops["phase"] == ph)) for ph, _ in HOSTS],
        "time_bytes": by_memory(~priced & ~product),
        "energy_bytes": by_memory(~priced),
        "kind_flops": [
            float(ops["flops"][w].sum()) for w in (fast, *(gemm & kinds[k] for k in _KINDS))
        ],
        "gemms": np.column_stack([gemms, count]).reshape(-1, 4),
        "rates": rates,
    }


_KINDS = tuple(SLOW)  # each slower kind's energy per FLOP, in this order
