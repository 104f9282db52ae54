"""What a step-time model (:mod:`flopmetrics.analysis.steptime`) holds rather than fits,
read from the reference folders beside its rows: the rate and dynamic energy per FLOP of GEMMs on
fp32 operands (the matmul experiment), the speeds of the memory-bound kernels PyTorch cannot
vectorize (the memory experiment) and the fused causal attention kernel's time and dynamic
energy per FLOP at each shape measured (the attention experiment), on the same GPU label."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from ..flops.kernel_facts import padded_head
from .merge import read_job_table
from .spread import LOW_DUTY, duty
from .steptime import ENERGIES, SPEEDS
from .steptime_attention import ATTENTION_TABLE


def fp32_files(dirs: list) -> list[Path]:
    """The fp32 matrix products of the matmul experiment below each of ``dirs``, in order."""
    return [f for d in dirs for f in sorted(Path(d).glob("raw/matmul/**/fp32/*.parquet"))]


def memory_files(dirs: list) -> list[Path]:
    """The memory experiment's kernels below each of ``dirs``, in order."""
    return [f for d in dirs for f in sorted(Path(d).glob("raw/memory/**/*.parquet"))]


def attention_files(dirs: list) -> list[Path]:
    """The attention experiment's kernels below each of ``dirs``, in order."""
    return [f for d in dirs for f in sorted(Path(d).glob("raw/attention/**/*.parquet"))]


# the attention experiment's pass each issuing phase of a step's kernels is priced at
_DIRECTIONS = {"forward": "f", "backward": "b"}


def attention_kernels(dirs: list, label: str, precision: str) -> dict:
    """The fused causal attention kernel as the attention experiment below ``dirs`` measured it
    on a GPU label (gated; in ``precision`` where measured in it, else in the first precision
    measured, by name): :data:`~flopmetrics.analysis.steptime_attention.ATTENTION_TABLE`,
    one entry per configuration and direction (``f``: its ``forward`` pass, ``b``: its derived
    ``backward``) of the kernel's head size, query heads per key/value head, batch x heads,
    length, seconds and dynamic joules per FLOP, as JSON ("" where none was measured), and the
    files. A pass whose windows drew less than :data:`~flopmetrics.analysis.spread.LOW_DUTY` of
    the power the cap allows above idle (a backward: either pass it is derived from) timed the
    host's launching, not the kernel, and is left out."""
    t = _precision_rows(_gated_rows(attention_files(dirs), label), precision)
    t = t[t["pass"].isin(_DIRECTIONS) & (t["flops"] > 0) & _kernel_bound(t)] if not t.empty else t
    if t.empty:
        return {ATTENTION_TABLE: "", "attention_from": ""}
    entries = [
        [
            _DIRECTIONS[r["pass"]],
            padded_head(int(r["head_dim"])),
            int(r["groups"]),
            int(r["batch_size"]) * int(r["heads"]),
            int(r["seq_len"]),
            float(r["time_per_iter_s"]) / float(r["flops"]),
            float(r["dynamic_energy_j_per_iter"]) / float(r["flops"]),
        ]
        for _, r in t.iterrows()
    ]
    files = ",".join(sorted(set(t["file"])))
    return {ATTENTION_TABLE: json.dumps(sorted(entries)), "attention_from": files}


def fp32_products(dirs: list, label: str) -> dict:
    """The measured rate and dynamic energy per FLOP of GEMMs on fp32 operands of a GPU label
    (``r_fp32``, ``e_fp32_j``, their relative standard errors and the file): the largest fp32
    matrix product of the pipeline's matmul experiment below ``dirs``
    (``raw/matmul/**/fp32/*.parquet``), gated; NaN where there is none."""
    none = dict.fromkeys(("r_fp32", "e_fp32_j", "r_fp32_rse", "e_fp32_j_rse"), math.nan)
    t = _gated_rows(fp32_files(dirs), label)
    if t.empty:
        return none
    r = t.loc[t["flops"].idxmax()]
    dynamic = float(r["dynamic_energy_j_per_iter"])
    return {
        "r_fp32": float(r["flops"]) / float(r["time_per_iter_s"]),
        "e_fp32_j": dynamic / float(r["flops"]),
        "r_fp32_rse": float(r["time_per_iter_sem_s"]) / float(r["time_per_iter_s"]),
        "e_fp32_j_rse": float(r["dynamic_energy_j_per_iter_sem"]) / dynamic,
        "fp32_from": r["file"],
    }


# the measured passes a pass of the attention experiment is timed by (its derived backward: both)
_MEASURED_BY = {"forward": ("forward",), "backward": ("forward_train", "forward_backward")}


def _kernel_bound(t: pd.DataFrame) -> pd.Series:
    """Whether each row's pass kept the GPU busy: no pass it was measured by drew less than
    :data:`~flopmetrics.analysis.spread.LOW_DUTY` of the power the cap allows above idle."""
    duties = t.assign(duty=duty(t)).set_index(["file", "pass"])["duty"]
    low = {k for k, d in duties.items() if d < LOW_DUTY}  # NaN (no power read: a CPU) is kept
    return pd.Series(
        [
            all((f, m) not in low for m in _MEASURED_BY.get(p, (p,)))
            for f, p in zip(t["file"], t["pass"], strict=True)
        ],
        index=t.index,
    )


def _gated_rows(files: list[Path], label: str) -> pd.DataFrame:
    """The rows of job tables ``files`` measured on a GPU label that ran and passed every gate,
    each with its ``file``; empty where there are none."""
    tables = [read_job_table(f).assign(file=str(f)) for f in files]
    if not tables:
        return pd.DataFrame()
    t = pd.concat(tables, ignore_index=True)
    return t[(t["gpu_label"] == label) & (t["status"] == "ok") & t["gates_passed"].astype(bool)]


def memory_speeds(dirs: list, label: str, precision: str) -> dict:
    """Each kind of :data:`~flopmetrics.analysis.steptime.SPEEDS`' bandwidth over the vectorized
    kernel's, and its dynamic energy per byte over the vectorized kernel's
    (:data:`~flopmetrics.analysis.steptime.ENERGIES`), of the largest kernels of the memory
    experiment below ``dirs`` (``raw/memory/**/*.parquet``) on a GPU label, gated, in
    ``precision`` where it was measured in it (else in the first precision measured, by name);
    the vectorized kernel's bandwidth (``memory_bandwidth``) and the files. NaN where a kind was
    not measured."""
    t = _memory_rows(dirs, label, precision)
    largest = {} if t.empty else {k: g.loc[g["mib"].idxmax()] for k, g in t.groupby("pattern")}
    if "vectorized" not in largest:
        none = dict.fromkeys([*SPEEDS.values(), *ENERGIES.values(), "memory_bandwidth"], math.nan)
        return {**none, "memory_from": ""}
    return {
        **{name: _over_vectorized(largest, k, _bytes_per_s) for k, name in SPEEDS.items()},
        **{name: _over_vectorized(largest, k, _joules_per_byte) for k, name in ENERGIES.items()},
        "memory_bandwidth": _bytes_per_s(largest["vectorized"]),
        "memory_from": ",".join(r["file"] for r in largest.values()),
    }


def _bytes_per_s(row) -> float:
    return float(row["bytes_per_s"])


def _joules_per_byte(row) -> float:
    return float(row["dynamic_energy_j_per_iter"]) / float(row["bytes_moved"])


def _over_vectorized(largest: dict, kind: str, of) -> float:
    """``of`` a kind's largest kernel over the vectorized kernel's, NaN where not measured."""
    return of(largest[kind]) / of(largest["vectorized"]) if kind in largest else math.nan


def _memory_rows(dirs: list, label: str, precision: str) -> pd.DataFrame:
    """The memory experiment's gated rows of a GPU label below ``dirs``, of one precision (see
    :func:`memory_speeds`), each with its ``file``."""
    return _precision_rows(_gated_rows(memory_files(dirs), label), precision)


def _precision_rows(t: pd.DataFrame, precision: str) -> pd.DataFrame:
    """Rows ``t`` of ``precision`` where it was measured, else of the first precision measured."""
    if t.empty:
        return t
    measured = set(t["precision"])
    return t[t["precision"] == (precision if precision in measured else min(measured))]


def describe_speeds(speeds: dict) -> str:
    """The measured speeds in words, for the log."""
    if not math.isfinite(speeds["memory_bandwidth"]):
        return "no memory kernels measured: every kind at the vectorized kernel's bandwidth"
    said = ", ".join(f"{k} {speeds[v]:.2f}" for k, v in SPEEDS.items())
    said = f"memory kernels' speeds {said} of {speeds['memory_bandwidth'] / 1e12:.2f} TB/s"
    if not any(math.isfinite(speeds.get(v, math.nan)) for v in ENERGIES.values()):
        return f"{said}; every kind at the one fitted energy per byte"
    cost = ", ".join(f"{k} {speeds.get(v, math.nan):.2f}" for k, v in ENERGIES.items())
    return f"{said}, their energy per byte {cost} of the vectorized kernel's"
