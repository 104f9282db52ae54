"""A training workload's energy per step from the step-time model
(:mod:`flopmetrics.analysis.steptime`) of its GPU and precision, with the basis and interval
an estimate states."""

from __future__ import annotations

import math
from importlib import metadata

import numpy as np
import pandas as pd

from ..flops.models import resolve
from ..flops.opstream import step_ops
from .steptime import FALLBACK, HOSTS, PASSES, SLOW, predict, table_of
from .steptime_attention import measured
from .steptime_words import KIND_WORDS


def step_energy(w: dict, label: str, table: pd.DataFrame | None) -> dict:
    """A training workload's energy per step from the step-time model of its GPU and precision
    (``{}`` where there is none; ``{"status": why}`` where it cannot answer), in the shape
    :func:`flopmetrics.analysis.step_energy.energy` gives."""
    if table is None or table.empty or w["pass"] not in PASSES:
        return {}
    launch = w.get("launch") or "eager"
    if w.get("world_size", 1) != 1 or launch not in LAUNCHES:
        return {}
    hit = table[(table["gpu_label"] == label) & (table["precision"] == w["precision"])]
    if hit.empty:
        return {}
    c = LAUNCHES[launch](hit.iloc[0].to_dict())
    name, fields = resolve(w["model"])
    try:
        ops = step_ops(fields, w["batch_size"], w["seq_len"], w["precision"], w["pass"])
    except (RuntimeError, TypeError, ValueError, NotImplementedError) as err:
        # an architecture whose step the meta device cannot run: say so, as a refusal
        return {"status": f"step-time model: {name}'s step could not be recorded ({err})"}
    est = predict(c, ops)
    if "status" in est:
        return {"status": f"step-time model: {est['status']}"}
    basis = (
        f"step-time model (bound by the {BOUND_WORDS[est['bound']]}), fitted on "
        f"{_models(c['models'])} at batch {c['batch_sizes']}, lengths {c['seq_lens']}"
    )
    basis += HOST_NOTE if est["bound"] == "host" else ""
    basis += REPLAYED_NOTE if launch == "cuda_graph" else ""
    beyond = _beyond(c, ops)
    if beyond:  # a larger step than any fitted: its left-out misses are of smaller ones
        basis = f"extrapolated: {basis}; the step's {beyond} the largest fitted"
    attention, measured_whole = _attention_note(c, ops)
    unfitted = _unfitted_note(c, est, ("attention",) if measured_whole else ())
    basis += _version_note(str(c.get("transformers_measured") or "")) + unfitted + attention
    cards = int(c.get("cards", 1))
    slow = " and ".join(KIND_WORDS[k][1] for k in est["slow"] if _fitted(c, k))
    like = f" (of its steps with {slow}, where larger)" if slow else ""
    others = ""
    if c.get("heldout_n", 0) > 0:
        # a table older than the column holds NaN there, which is truthy
        which = (
            "of fits that each left one held-out folder out, on that folder's steps, of models "
            "those fits never saw"
            if c.get("heldout_pooled") in (True,)
            else "on measured steps of models it was not fitted on"
        )
        others = (
            f", and of its misses {which} ({int(c['heldout_n'])} steps; "
            f"{_models(c['heldout_models'])}; of those bound by the "
            f"{BOUND_WORDS[est['bound']]} like it, where larger)"
        )
    return {
        "basis": basis,
        "interval": f"95 %: +-{100 * (est['energy_j_hi'] / est['energy_j'] - 1):.1f} %, the "
        f"largest of the 95th percentiles of the fit's misses with one batch size or length "
        f"left out{like}{others} (or 1.96 residual SDs); no card-to-card spread added (the "
        f"fit's rows came from {cards} card{'s' if cards != 1 else ''})",
        "step": est["energy_j"],
        "lo": est["energy_j_lo"],
        "hi": est["energy_j_hi"],
        "launch": launch,
    }


def replayed(c: dict) -> dict:
    """A step-time table row ``c`` for steps replayed from a CUDA graph: one launch for the
    whole step, so no host cost per operation; the GPU's work, each kernel's gap included, as
    fitted on eager steps."""
    return c | {f"host_{name}_s": 0.0 for _, name in HOSTS}


# how each launch mode reads a table row fitted on eager steps
LAUNCHES = {"eager": dict, "cuda_graph": replayed}


# a step's size in each term a fit records its largest step in: the words, the column
SIZES = (("FLOPs", "flops_max"), ("kernels", "kernels_max"), ("bytes moved", "bytes_max"))


def sizes(ops: dict) -> dict:
    """A step's size in each of :data:`SIZES`' terms, by column."""
    return {
        "flops_max": float(ops["flops"].sum()),
        "kernels_max": float(len(ops["cls"])),
        "bytes_max": float(ops["bytes"].sum()),
    }


def _beyond(c: dict, ops: dict) -> str:
    """How far a step passes the largest fitted one, in FLOPs, kernels and bytes moved ("" where
    it does not; a table older than a column holds no limit there)."""
    size = sizes(ops)
    scales = {words: size[key] / _limit(c, key) for words, key in SIZES}
    return ", ".join(f"{k} {s:.1f}x" for k, s in scales.items() if s > 1)


def _limit(c: dict, key: str) -> float:
    value = c.get(key)
    return float(value) if value is not None and np.isfinite(value) and value > 0 else math.inf


def _models(names: str, shown: int = 6) -> str:
    """A list of model names as a basis says it: all of a few, else how many and the first."""
    names = str(names).split(",")
    if len(names) <= shown:
        return ", ".join(names)
    return f"{len(names)} models ({', '.join(names[:shown])}, ...)"


def _fitted(c: dict, kind: str) -> bool:
    """Whether the calibration has a rate of its own for a slower kind."""
    return math.isfinite(float(c.get(SLOW[kind][0], math.nan)))


def _unfitted_note(c: dict, est: dict, measured_apart: tuple = ()) -> str:
    """What to say of the slower kinds a step spends many FLOPs in that the calibration had no
    rows of and prices as others (:data:`~flopmetrics.analysis.steptime.PRICED_AS_FAST`), but
    those ``measured_apart``."""
    unfitted = [k for k in est["slow"] if not _fitted(c, k) and k not in measured_apart]
    said = [
        f"{KIND_WORDS[k][0]} priced as "
        f"{KIND_WORDS[FALLBACK[k]][1] if k in FALLBACK else 'the GEMMs'}, the calibration "
        "having no rows of it"
        for k in unfitted
    ]
    return "".join(f"; {s}" for s in said)


def _attention_note(c: dict, ops: dict) -> tuple[str, bool]:
    """What to say of how the step's fused attention kernels were priced, where the calibration
    holds the attention experiment's measurements (at the kernel measured alone at each one's
    shape, a head size not measured at the fitted rate), and whether all of them were."""
    table = table_of(c)
    fused = ops.get("head", np.zeros(len(ops["cls"]))) > 0
    if not (table and fused.any()):
        return "", False
    seconds, _ = measured(table, ops)
    missing = sorted({int(h) for h in ops["head"][fused & ~np.isfinite(seconds)]})
    said = "; fused attention priced at the attention kernel measured alone at each one's shape"
    if missing:
        heads = ", ".join(map(str, missing))
        return f"{said}, but for heads of {heads} (not measured: at the fitted rate)", False
    return said, True


def _version_note(measured: str) -> str:
    """What to say where this step was recorded with another transformers than the fit's rows
    were measured with: a model's code can differ, and with it the kernels it runs (Falcon's
    attention runs PyTorch's math kernels in 5.17, the efficient kernel in 5.25)."""
    installed = metadata.version("transformers")  # not imported: seconds at start-up
    if not measured or installed in measured.split(","):
        return ""
    return (
        f"; its rows were measured with transformers {measured}, this step recorded with "
        f"{installed}: a model whose code differs between them may run other kernels"
    )


BOUND_WORDS = {"gpu": "GPU's work", "host": "host's launching", "power": "power limit"}
# a host-bound step's time is the host CPU's, which no GPU calibration holds: on the GPU machines
# measured it moved up to 2.4x within a minute (docs/benchmarks.md, "What sets the pace of a
# host-bound step")
HOST_NOTE = (
    "; its time is the pace at which the host's CPU issues kernels, which a GPU's calibration "
    "does not know: another CPU, or the same one another minute, can run it faster or slower"
)
# a replayed step is priced by a fit of eager steps: say so, and how far that was checked
REPLAYED_NOTE = (
    "; replayed from a CUDA graph: priced with no host cost and each kernel's gap as fitted on "
    "eager steps, which the reference model's replayed steps bear out within 7.1 % "
    "(benchmarks/steptime_graph_check.py); not yet checked on replayed steps of other models"
)
