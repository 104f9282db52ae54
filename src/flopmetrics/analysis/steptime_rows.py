"""The measured rows a step-time model (:mod:`flopmetrics.analysis.steptime`) is fitted on and
judged by, read from reference folders, each with its operation stream; and the calibration row
fitted on them, with the misses of fits that leave a size out and of other models."""

from __future__ import annotations

import json
import math
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from importlib import metadata
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd

from ..flops.models import resolve
from ..flops.opstream import STREAMED, step_ops
from . import steptime_misses
from .merge import read_job_table
from .steptime import ENERGIES, FITTED, HELD, PASSES, SLOW
from .steptime_attention import ATTENTION_TABLE
from .steptime_estimate import sizes
from .steptime_fit import fit
from .steptime_measured import (
    attention_files,
    attention_kernels,
    describe_speeds,
    fp32_files,
    fp32_products,
    memory_files,
    memory_speeds,
)


def rows_of(table: pd.DataFrame, ops_of) -> list[dict]:
    """The measured, gated, eager rows of direct passes in ``table``, each with its operation
    stream ``ops_of(row)`` (a row of ``table`` as a dict)."""
    t = table[table["pass"].isin(PASSES) & (table["status"] == "ok") & table["model"].notna()]
    t = t[t["gates_passed"].astype(bool) & (t["time_per_iter_s"] > 0)]
    if "launch" in t:
        t = t[t["launch"].fillna("eager").isin(["eager", ""])]
    return [
        {
            "ops": ops_of(r),
            "idle_w": float(r["idle_power_w"]),
            "limit_w": float(r["power_limit_w"]),
            "energy_j": float(r["energy_j_per_iter"]),
            "time_s": float(r["time_per_iter_s"]),
            "row": r,
        }
        for r in t.to_dict("records")
    ]


def ops_of(r: dict) -> dict:
    """A measured row's operation stream (its workload's own model, batch and length)."""
    _, fields = resolve(json.loads(r["config_json"])["workload"]["model"])
    return step_ops(fields, int(r["batch_size"]), int(r["seq_len"]), r["precision"], r["pass"])


def row_files(dirs: list) -> list[Path]:
    """The causal-LM rows (``raw/llm/**/*.parquet``) below each of ``dirs``, in order."""
    return [f for d in dirs for f in sorted(Path(d).glob("raw/llm/**/*.parquet"))]


def input_files(dirs: list) -> list[Path]:
    """Every file a step-time table fitted on ``dirs`` reads: their rows, fp32 products,
    memory-bound kernels and attention kernels."""
    return row_files(dirs) + fp32_files(dirs) + memory_files(dirs) + attention_files(dirs)


def read_rows(dirs: list) -> pd.DataFrame:
    """The causal-LM rows below ``dirs`` as one table; an error naming them where there are none."""
    files = row_files(dirs)
    if not files:
        raise FileNotFoundError(f"no raw/llm/**/*.parquet below {', '.join(map(str, dirs))}")
    return pd.concat([read_job_table(f) for f in files], ignore_index=True)


def calibrate_dirs(
    dirs: list[str],
    heldout: list[str] = (),
    log=print,
    speeds: dict | None = None,
    pool: bool = False,
    steps: list | None = None,
) -> pd.DataFrame:
    """One calibration row per (GPU label, precision with an operation stream) of the causal-LM
    rows below ``dirs`` (``raw/llm/**/*.parquet``), fitted with the speeds of the memory-bound
    kernels measured below them held (:func:`.steptime_measured.memory_speeds`; ``speeds``,
    where given, in their place: a probe's), each naming the folders it was fitted from; with
    ``heldout``, folders of rows of other models, each row's misses on those
    (:func:`.steptime_misses.misses_bound`), which its intervals then carry. With ``pool``, the
    fit takes the held-out folders' rows too, and the misses are those of fits that leave each
    held-out folder out (:func:`pooled`). Each held-out step judged is appended to ``steps``,
    where given, as a table of its folder's
    (:data:`~flopmetrics.analysis.steptime_misses.STEP_COLUMNS`, with ``folder`` and
    ``gpu_label``)."""
    table = read_rows(dirs)
    table = table[table["model"].notna() & table["precision"].isin(STREAMED)]
    others = {d: read_rows([d]) for d in heldout}
    fp32 = {label: fp32_products(dirs, label) for label in table["gpu_label"].unique()}
    out = []
    for (label, precision), g in table.groupby(["gpu_label", "precision"]):
        rows = rows_of(g, ops_of)
        held = _speeds_held(memory_speeds(dirs, label, precision)) if speeds is None else speeds
        held = {**held, **attention_kernels(dirs, label, precision)}
        said = describe_speeds(held)
        log(f"[steptime] {label} {precision}: fitting on {len(rows)} rows ({said})")
        c = {**calibrate(rows, label, precision, held), "fitted_from": ",".join(dirs)}
        c.update(held)
        c.update(fp32[label])
        if others:
            fitted = c["models"].split(",")
            mine = {
                d: rows_of(_unseen(t, label, precision, fitted), ops_of) for d, t in others.items()
            }
            if pool:
                refit, judged = pooled(c, rows, mine, held, log)
                c.update(refit, fitted_from=",".join([*dirs, *heldout]))
            else:
                judged = {d: steptime_misses.heldout_misses(c, rs) for d, rs in mine.items()}
            none = pd.DataFrame(columns=list(steptime_misses.STEP_COLUMNS))  # no folder has rows
            c.update(steptime_misses.misses_bound(pd.concat([none, *judged.values()])))
            for d, t in judged.items() if steps is not None else ():
                steps.append(t.assign(folder=d, gpu_label=label))
            c.update(heldout_from=",".join(heldout), heldout_pooled=pool)
            log(f"[steptime] {label} {precision}: {c['heldout_n']} held-out rows judged")
        out.append(c)
    return pd.DataFrame(out)


def _speeds_held(measured: dict) -> dict:
    """What a fit holds of the memory experiment's measurements: the speeds, not the energies
    per byte. Held, the energies made the pooled fit's misses on every folder it left out
    larger (22 held-out folders, 545 bf16 steps: median 5.8 % against 3.9 %;
    ``docs/benchmarks.md``): one fitted energy per byte already carries the steps' strided
    share."""
    return {k: v for k, v in measured.items() if k not in ENERGIES.values()}


def _unseen(table: pd.DataFrame, label: str, precision: str, models: list[str]) -> pd.DataFrame:
    """``table``'s rows of one GPU label and precision, of no model in ``models``."""
    mine = table[(table["gpu_label"] == label) & (table["precision"] == precision)]
    return mine[~mine["model"].isin(models)]  # rows_of drops rows of no model


def pooled(
    c: dict, rows: list[dict], others: dict, held: dict, log=print
) -> tuple[dict, dict[str, pd.DataFrame]]:
    """The fit of calibration row ``c`` redone on its ``rows`` and every held-out folder's
    (``others``: folder -> rows) and what it was fitted on; and each folder's steps judged by a
    fit that left that folder out, whose models it then never saw (a model a folder shares
    with another leaves both; :func:`~flopmetrics.analysis.steptime_misses.heldout_misses`)."""
    label, precision = c["gpu_label"], c["precision"]
    everything = rows + [r for rs in others.values() for r in rs]
    others = {folder: mine for folder, mine in others.items() if mine}  # none: nothing to judge
    folds = {folder: _left_out(rows, others, folder) for folder in others}
    folds[""] = everything  # the fit itself
    _FOLDS.update({f: (t, label, precision, _speeds(held)) for f, t in folds.items()})
    fits = {}
    # each fit is minutes on hundreds of rows: as many at once as there are CPUs, each forked
    # with the rows (handing them over would copy every operation stream per fit)
    workers = min(len(folds), os.cpu_count() or 1)
    try:
        with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
            jobs = {pool.submit(_fit_fold, f): f for f in folds}
            for job in as_completed(jobs):
                fits[jobs[job]] = job.result()
                log(f"[steptime] {label} {precision}: fit {len(fits)} of {len(folds)} done")
    finally:
        _FOLDS.clear()
    judged = {
        f: steptime_misses.heldout_misses({**c, **_parameters(fits[f])}, mine)
        for f, mine in others.items()
    }
    for f, j in judged.items():
        log(f"[steptime] {label} {precision}: {f} left out: {steptime_misses.summary(j)}")
    return {**_parameters(fits[""]), **_fitted_on(everything)}, judged


_FOLDS: dict = {}  # fold -> fit's arguments, for the forked workers of :func:`pooled`


def _fit_fold(fold: str) -> dict:
    return fit(*_FOLDS[fold])


def _left_out(rows: list[dict], others: dict, folder: str) -> list[dict]:
    """``rows`` and the held-out folders' but ``folder``'s, and but any of its models'."""
    unseen = {str(r["row"]["model"]) for r in others[folder]}
    rest = [r for d, rs in others.items() if d != folder for r in rs]
    return rows + [r for r in rest if str(r["row"]["model"]) not in unseen]


def _parameters(p: dict) -> dict:
    """A fit's fitted parameters, their standard errors and residual SD: not what is measured
    apart (the fp32 products, the memory kernels' speeds), which the fit only holds."""
    keys = [*FITTED, *(f"{k}_rse" for k in FITTED), "resid_sd", "fit_rows"]
    return {k: p[k] for k in keys if k in p}


def versions(rows: list[dict]) -> str:
    """The transformers versions the rows were measured with (an older row has none)."""
    found = {str(r["row"].get("transformers_version") or "") for r in rows} - {"", "nan", "None"}
    return ",".join(sorted(found))


def calibrate(rows: list[dict], label: str, precision: str, held: dict | None = None) -> dict:
    """One calibration row: the fit (with ``held``'s measured parameters, :func:`memory_speeds`),
    its left-out misses' bound (for steps of each slower kind apart, ``left_out_q95_<kind>``:
    their own rate is fitted on fewer rows), and what it was fitted on (models, batch sizes and
    lengths, the median idle power and power limit of its rows)."""
    held = _speeds(held)
    out = fit(rows, label, precision, held)
    misses, kinds = steptime_misses.left_out_misses(rows, label, precision, held)
    return {
        **out,
        "left_out_q95": steptime_misses.q95(misses[kinds == ""]),
        **{f"left_out_q95_{k}": steptime_misses.q95(misses[kinds == k]) for k in SLOW},
        "left_out_max": float(misses.max()) if len(misses) else math.nan,
        "left_out_n": len(misses),
        **_fitted_on(rows),
    }


def _speeds(held: dict | None) -> dict:
    """What a fit holds of ``held``'s columns: the memory kernels' measured speeds and energies
    (:data:`~flopmetrics.analysis.steptime.HELD`) and the attention kernels measured
    (:data:`ATTENTION_TABLE`)."""
    held = held or {}
    out = {k: v for k, v in held.items() if k in HELD and math.isfinite(v)}
    if held.get(ATTENTION_TABLE):
        out[ATTENTION_TABLE] = held[ATTENTION_TABLE]
    return out


def _fitted_on(rows: list[dict]) -> dict:
    """What a fit was fitted on: models, batch sizes and lengths, its largest step (in FLOPs,
    kernels and bytes moved), cards, versions, the median idle power and power limit of its
    rows."""
    column = lambda k: [r["row"][k] for r in rows]  # noqa: E731
    return {
        "models": ",".join(sorted(set(map(str, column("model"))))),
        "batch_sizes": ",".join(map(str, sorted(set(map(int, column("batch_size")))))),
        "seq_lens": ",".join(map(str, sorted(set(map(int, column("seq_len")))))),
        **pd.DataFrame([sizes(r["ops"]) for r in rows]).max().to_dict(),
        "cards": len({r["row"].get("gpu_uuid") for r in rows}),
        # a model's code can differ between versions, and with it the kernels it runs
        "transformers_measured": versions(rows),
        # the version whose model code the operation streams were recorded with
        "transformers_recorded": metadata.version("transformers"),
        "idle_w": float(np.median([r["idle_w"] for r in rows])),
        "limit_w": float(np.median([r["limit_w"] for r in rows])),
    }
