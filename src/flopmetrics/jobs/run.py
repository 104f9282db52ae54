"""Run one measurement job: any workload, every pass, time + energy + FLOPs + provenance.

A job holds its device in a :class:`~flopmetrics.jobs.session.Session` (meters, monitor, idle
baseline), builds each configuration's workload, counts FLOPs for exactly one iteration of each
measured pass, measures the passes by the protocol (:mod:`flopmetrics.jobs.protocol`), derives
the passes that cannot run alone, applies the plausibility gates and returns one row per pass
plus the raw power trace. Distributed ranks use the same steps (:func:`measure_configuration`).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
import torch

from ..contracts.experiments import BY_NAME
from ..energy import gates
from ..flops.models import resolve as resolve_model
from . import provenance
from .host_probe import host_op_us
from .protocol import Protocol, measure_passes, stderr_progress, workload_passes
from .rows import build_rows, label_trace
from .session import Session, check_launch
from .spec import JobSpec

Done = Callable[[int, pd.DataFrame, pd.DataFrame], None]


def run(spec: JobSpec, *, nvml=None, progress=None, measure=measure_passes):
    """Measure the one configuration ``spec`` describes. Returns ``(rows, trace)``; ``trace`` is
    empty without a sampler. ``nvml``: the NVML bindings module (the real ``pynvml`` when None);
    ``measure``: the protocol (:func:`~flopmetrics.jobs.protocol.measure_passes`; a benchmark
    may compare another).

    A target that names a GPU architecture (``h100``) fails unless the job got one.
    """
    return run_batch([spec], nvml=nvml, progress=progress, measure=measure)[0]


def run_batch(
    specs: list[JobSpec],
    *,
    nvml=None,
    progress=None,
    done: Done | None = None,
    measure=measure_passes,
) -> list[tuple]:
    """Measure several configurations of one experiment on one target, with the same measuring
    and energy settings, as one job: the meters are set up and the idle baseline measured once,
    and a causal LM is built once per precision and resized for each batch size and sequence
    length. Each configuration gets its own rows and its own slice of the trace, as if it
    had run alone. ``done(i, rows, trace)``, if given, is called as configuration ``i`` finishes
    (the workflow writes its files then, so an interrupted job keeps nothing half-written)."""
    _check_batch(specs)
    first = specs[0]
    say = progress or stderr_progress(first.name if len(specs) == 1 else _batch_name(specs))
    session = Session.open(first, nvml=nvml, progress=say, measure=measure)
    out, held = [], Held()
    with session.sampling():
        session.measure_idle(first)
        for i, spec in enumerate(specs):
            if len(specs) > 1:
                say(f"configuration {i + 1}/{len(specs)}: {spec.precision} {identity(spec)}")
            rows, trace = measure_spec(session, spec, held)
            if done:
                done(i, rows, trace)
            out.append((rows, trace))
    return out


@dataclass
class Held:
    """The workload the last configuration built, handed to the next (a causal LM that differs
    only in batch size and sequence length is resized, not built again); emptied while a
    configuration builds, so no optimizer state stays alive beside the next model."""

    workload: object = None

    def take(self):
        workload, self.workload = self.workload, None
        return workload


@dataclass
class Counts:
    """A configuration's FLOP counts per pass: PyTorch's counter, the closed form, the
    thesis's profiler (empty where not asked for)."""

    counted: dict
    analytic: dict = field(default_factory=dict)
    profiled: dict = field(default_factory=dict)


def measure_spec(session: Session, spec: JobSpec, held: Held):
    """One configuration of a single-device job: its rows (``oom`` rows where it does not fit)
    and its labelled trace."""
    check_launch(spec, session.device)  # (a worker's session was opened for another spec)
    began, say = session.begin(), session.progress
    base = {
        **identity(spec),
        **session.columns,
        **provenance.collect(session.device, spec_of(spec)),
    }
    try:
        start = time.perf_counter()
        workload = build(session, spec, held.take())
        built = time.perf_counter()
        with workload.precision_scope():
            counts = count(workload, spec)
            # what a configuration costs before its first window: where GPU time goes
            counted_s = time.perf_counter() - built
            say(f"workload built in {built - start:.1f} s, FLOPs counted in {counted_s:.1f} s")
            steps = workload.steps()
            passes = {p: steps[p] for p in workload.passes}
            rows, windows = measure_configuration(session, spec, workload, passes, counts, base)
    except OUT_OF_MEMORY as err:
        if not is_out_of_memory(err):
            raise
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        say(f"out of memory: {err}")
        measured = getattr(err, "measured", None)  # the passes measured before one did not fit
        if not measured:
            return _oom_rows(base, spec, err), pd.DataFrame()
        rows = configuration_rows(session, spec, workload, measured, counts, base)
        rows = pd.concat([rows, _oom_rows(base, spec, err, measured)], ignore_index=True)
        return rows, _trace(session, began, measured, rows)
    held.workload = workload
    return rows, _trace(session, began, windows, rows)


def build(session: Session, spec: JobSpec, previous=None):
    """The workload of ``spec`` on the session's device, by its experiment's builder
    (``previous``: see :class:`Held`)."""
    module, function = BY_NAME[spec.experiment].builder.split(":")
    builder = getattr(importlib.import_module(module), function)
    return builder(session.device, spec.precision, spec.workload, spec.measure.seed, previous)


def count(workload, spec: JobSpec) -> Counts:
    """Every FLOP count the job records for ``workload``."""
    profiled = workload.profiled() if spec.measure.profiler_flops else {}
    return Counts(workload.counted(), workload.analytic(), profiled)


def measure_configuration(
    session: Session, spec: JobSpec, workload, steps: dict, counts: Counts, base: dict
):
    """The windows of ``steps`` (pass name -> one iteration of ``workload``) by the protocol,
    and the configuration's gated rows; ``base``: its identity and provenance columns."""
    protocol = Protocol.of(spec.measure, session.guard_s)
    passes = workload_passes(workload, steps, spec.measure.launch)
    windows = session.measure(session.monitor, passes, protocol, session.progress)
    return configuration_rows(session, spec, workload, windows, counts, base), windows


def configuration_rows(
    session: Session, spec: JobSpec, workload, windows: dict, counts: Counts, base: dict
) -> pd.DataFrame:
    """The gated rows of the passes ``windows`` holds, and of those derived from them."""
    base = {
        **base,
        "other_processes": len(session.other_processes()),
        "host_op_us": host_op_us(session.device),  # the host's speed, beside the windows
    }
    rows = build_rows(workload, windows, counts, session.idle, spec.measure, base)
    rows = gates.apply(workload.finish_rows(rows))
    # when the measuring ended (timestamp_utc is when it started), on the same clock
    rows["finished_utc"] = pd.Timestamp.now(tz="UTC").isoformat(timespec="milliseconds")
    return rows


def spec_of(spec: JobSpec) -> dict:
    """What a row's ``config_hash`` is made of: the configuration's parameters and job name."""
    return spec.config()


def _trace(session: Session, began: float, windows: dict, rows: pd.DataFrame) -> pd.DataFrame:
    trace = session.trace_since(began)
    if trace.empty or not windows:
        return pd.DataFrame()
    trace = label_trace(trace, windows, session.idle.get("_window"))
    trace["config_hash"] = rows["config_hash"].iloc[0]
    return trace


def _check_batch(specs: list[JobSpec]) -> None:
    if not specs:
        raise ValueError("a job needs at least one configuration")
    shared = {(s.experiment, s.target, s.measure, s.energy, s.run_on_cpu) for s in specs}
    if len(shared) > 1:
        raise ValueError(
            "one job measures configurations of one experiment and target with the same "
            f"measuring and energy settings; got {len(shared)} different sets"
        )


def _batch_name(specs: list[JobSpec]) -> str:
    s = specs[0]
    precisions = "/".join(dict.fromkeys(x.precision for x in specs))
    return f"{s.experiment} {s.target} {precisions} ({len(specs)} configurations)"


def identity(spec: JobSpec) -> dict:
    """The columns that name ``spec``'s configuration (its experiment's axes; a model by its
    name, not its spec)."""
    axes = BY_NAME[spec.experiment].axes
    out = {"experiment": spec.experiment, "target": spec.target, "precision": spec.precision}
    for a in axes:
        if a.name in spec.workload:
            value = spec.workload[a.name]
            out[a.name] = resolve_model(value)[0] if a.models else value
    return {k: out[k] for k in ("experiment", *(a.name for a in axes)) if k in out}


# GPU: torch.cuda.OutOfMemoryError; CPU: PyTorch's allocator raises a plain RuntimeError,
# Python a MemoryError
OUT_OF_MEMORY = (torch.cuda.OutOfMemoryError, MemoryError, RuntimeError)
CPU_OOM_MESSAGES = (
    "DefaultCPUAllocator: can't allocate memory",
    "not enough memory",
    "out of memory",
)


def is_out_of_memory(err: BaseException) -> bool:
    return isinstance(err, (torch.cuda.OutOfMemoryError, MemoryError)) or any(
        m in str(err) for m in CPU_OOM_MESSAGES
    )


def _oom_rows(base: dict, spec: JobSpec, err: BaseException, measured=()) -> pd.DataFrame:
    """One row per pass the configuration would have measured and did not (not in
    ``measured``), status ``oom``: the sweep goes on and the gap is visible (every identity
    column filled in, so the merge keeps it)."""
    passes = spec.workload.get("passes") or BY_NAME[spec.experiment].passes
    rows = [
        {**base, "pass": p, "derived": False, "status": "oom", "error": str(err)[:500]}
        for p in passes
        if p not in measured
    ]
    return gates.apply(pd.DataFrame(rows))
