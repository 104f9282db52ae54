"""The fused causal attention kernel's time and dynamic energy at each shape, as the attention
experiment (:mod:`flopmetrics.workloads.attention`) measured it alone on a GPU, for the step-time
model (:mod:`flopmetrics.analysis.steptime`) to price each attention kernel of a step at: its
rate runs from about 70 to 600 TFLOP/s on one H200 with the length, the batch x heads and the
head size, which no single rate holds.

A calibration holds the measurements as :data:`ATTENTION_TABLE` (JSON, from
:func:`flopmetrics.analysis.steptime_measured.attention_kernels`). A kernel is priced from the
entries of its direction (``f``: the forward kernel, ``b``: the backward), its kernel's head size
and the measured query heads per key/value head nearest its own: seconds and joules per FLOP
interpolated linearly in the logarithms of its batch x heads and length, each held at the
measured range's end beyond it. A kernel whose head size was not measured is not priced here
(NaN), and the model prices it at its rate.
"""

from __future__ import annotations

import functools
import json
import math

import numpy as np
from scipy.interpolate import RegularGridInterpolator

ATTENTION_TABLE = "attention_kernels"  # the calibration's column, and the held parameter


def table_of(p: dict) -> str:
    """The attention table a calibration or fit holds (:data:`ATTENTION_TABLE`), "" if none."""
    table = p.get(ATTENTION_TABLE)
    return table if isinstance(table, str) else ""


def measured_by(p: dict, ops: dict) -> tuple[np.ndarray, np.ndarray]:
    """:func:`measured` per the table ``p`` holds (:func:`table_of`); NaN everywhere if none."""
    table = table_of(p)
    if table:
        return measured(table, ops)
    none = np.full(len(ops["cls"]), math.nan)
    return none, none


def measured(table: str, ops: dict) -> tuple[np.ndarray, np.ndarray]:
    """Each kernel's (seconds, dynamic joules) per :data:`ATTENTION_TABLE` ``table``: NaN but for
    the fused causal attention kernels (``ops``' ``head`` > 0, neither masked nor given dropout)
    of a head size measured. Kept in ``ops`` per table: a fit prices the same steps many times."""
    cache = ops.setdefault("_attention_measured", {})
    if table not in cache:
        cache[table] = _priced(_surfaces(table), ops)
    return cache[table]


def _priced(surfaces: dict, ops: dict) -> tuple[np.ndarray, np.ndarray]:
    n = len(ops["cls"])
    seconds, joules = np.full(n, math.nan), np.full(n, math.nan)
    head = ops.get("head", np.zeros(n))
    # the kernel the experiment measures: neither masked nor given dropout (each slower)
    causal = (head > 0) & (ops["flops"] > 0)
    for flag in ("masked", "dropout"):
        causal &= ~ops.get(flag, np.zeros(n, bool))
    for i in np.flatnonzero(causal):
        key = (str(ops["phase"][i]), int(head[i]))  # its issuing phase is its direction
        if key not in surfaces:
            continue
        by_groups = surfaces[key]
        groups = min(by_groups, key=lambda g: abs(math.log(g / max(ops["groups"][i], 1))))
        s, j = by_groups[groups](ops["rows"][i], ops["seq"][i])
        seconds[i], joules[i] = s * ops["flops"][i], j * ops["flops"][i]
    return seconds, joules


@functools.lru_cache(maxsize=8)
def _surfaces(table: str) -> dict:
    """(direction, head) -> groups -> a surface of (seconds, joules) per FLOP over (batch x
    heads, length)."""
    out: dict = {}
    for direction, head, groups, rows, seq, s, j in json.loads(table) if table else []:
        points = out.setdefault((direction, head), {}).setdefault(groups, {})
        points.setdefault((rows, seq), []).append((s, j))
    # heads that run the same kernel (80 and 96: the kernel of 128) measured at one shape: the
    # same kernel measured twice, each kept in their mean
    mean = lambda values: tuple(np.mean(values, axis=0))  # noqa: E731
    return {
        k: {g: _surface({x: mean(v) for x, v in p.items()}) for g, p in v.items()}
        for k, v in out.items()
    }


def _surface(points: dict):
    """Linear in the logarithms of the axes that vary, each clipped to its measured range; the
    nearest point where the measured shapes are not a full grid."""
    rows = sorted({r for r, _ in points})
    seqs = sorted({s for _, s in points})
    if len(points) < len(rows) * len(seqs):
        return _nearest(points)
    values = np.array([[points[(r, s)] for s in seqs] for r in rows])  # rows x seqs x 2
    axes = [(k, np.log(a)) for k, a in enumerate((rows, seqs)) if len(a) > 1]
    grid = values.reshape([len(a) for _, a in axes] + [2]) if axes else values.reshape(2)
    if not axes:
        return lambda r, s: tuple(grid)
    interpolate = RegularGridInterpolator(tuple(a for _, a in axes), grid)

    def at(r: float, s: float) -> tuple[float, float]:
        x = np.log([r, s])
        point = [np.clip(x[k], a[0], a[-1]) for k, a in axes]
        return tuple(interpolate(point)[0])

    return at


def _nearest(points: dict):
    keys = list(points)
    logs = np.log(np.array(keys, float))

    def at(r: float, s: float) -> tuple[float, float]:
        i = int(np.argmin(((logs - np.log([r, s])) ** 2).sum(axis=1)))
        return points[keys[i]]

    return at
