"""Energy per operation class of a train step, from the rows of experiment ``classes``.

Each configuration measured its train step, the whole tape of the step's operations and every
other subset of the operation classes, each in windows of its own
(:mod:`flopmetrics.workloads.classes`). A class's energy is its **Shapley share**: its marginal
energy (the subset with it minus the subset without it) averaged over every order in which the
classes could be added. The shares are a linear combination of measured windows, so they carry
the windows' standard errors, and they add up to the tape's energy by construction; what the
classes do not explain is the tape against the step (``remainder_pct``), reported, never spread.
The shares of time are made the same way. Beside each share: the class replayed alone
(``energy_j_<class>_alone``) and its derived difference, the tape less the tape without it
(``energy_j_<class>_last``: what ``train_step - forward_backward`` gives the optimizer).

A per-class model predicts a configuration nobody measured: each class's energy is its work
(:data:`WORK`: FLOPs, and the bytes its operations touch) at rates fitted per target and
precision. :func:`validate` judges it on each configuration left out of its own fit, against the
measured step and against the tape (what the classes can add up to).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
from scipy.optimize import nnls

from ..contracts.vocabulary import TAPE, class_subsets, tape_classes
from ..flops.operations import CLASSES

IDENTITY = ("target", "model", "precision", "batch_size", "seq_len")
PROVENANCE = ("gpu_label", "gpu_uuid", "driver_version", "torch_version", "git_revision")
# what each class's energy is fitted on: GEMMs by their FLOPs; attention by its FLOPs and the
# bytes it touches (its FLOPs per J grow with the sequence: short sequences are bound by memory);
# the rest by the bytes they touch
WORK = {
    "gemm": ("flops",),
    "attention": ("flops", "bytes"),
    "elementwise": ("bytes",),
    "optimizer": ("bytes",),
    "other": ("bytes",),
    "communication": ("bytes",),
}
RATE_COLUMNS = [
    "target",
    "precision",
    "class",
    "j_per_flop",
    "j_per_byte",
    "j_per_parameter",
    "configurations",
]
REMAINDER = "remainder"  # the step minus the tape: what the classes miss, per parameter


def work_columns(cls: str) -> list[str]:
    """The columns of a class's work in the class table (see :data:`WORK`)."""
    return [f"{w}_{cls}" for w in WORK[cls]]


def shapley_weights(names: list[str]) -> dict[str, dict[frozenset, float]]:
    """Per class: the weight of each subset's value in its Shapley share (the empty set's
    value is 0 and left out)."""
    n = len(names)
    out = {}
    for c in names:
        others = [x for x in names if x != c]
        weights: dict[frozenset, float] = {}
        for r in range(n):
            w = math.factorial(r) * math.factorial(n - r - 1) / math.factorial(n)
            for s in itertools.combinations(others, r):
                with_c, without = frozenset(s) | {c}, frozenset(s)
                weights[with_c] = weights.get(with_c, 0.0) + w
                if without:
                    weights[without] = weights.get(without, 0.0) - w
        out[c] = weights
    return out


def configuration(rows: pd.DataFrame) -> dict:
    """One configuration's class table row from its pass rows (status ``ok``)."""
    step = rows[rows["pass"] == "train_step"].iloc[0]
    tape = rows[rows["pass"] == TAPE].iloc[0]
    names = [c for c in CLASSES if c in tape["op_classes"].split("+")]
    tapes = rows[rows["pass"].str.startswith(TAPE)]
    value = {tape_classes(r["pass"], names): r for _, r in tapes.iterrows()}
    missing = [s for s in class_subsets(names) if s not in value]
    if missing:
        raise ValueError(f"{len(missing)} subsets of {names} were not measured, e.g. {missing[0]}")
    out = {k: step.get(k) for k in (*IDENTITY, *PROVENANCE, "parameters", "tokens")}
    out |= {
        "classes": "+".join(names),
        "train_step_energy_j": step["energy_j_per_iter"],
        "train_step_energy_j_sem": step["energy_j_per_iter_sem"],
        "train_step_time_s": step["time_per_iter_s"],
        "train_step_flops": step["flops"],
        "tape_energy_j": tape["energy_j_per_iter"],
        "tape_time_s": tape["time_per_iter_s"],
    }
    weights = shapley_weights(names)
    for c in names:
        single = value[frozenset({c})]
        out |= _share(c, weights[c], value)
        out[f"energy_j_{c}_alone"] = single["energy_j_per_iter"]
        out |= _last(c, tape, value.get(frozenset(names) - {c}))
        out[f"flops_{c}"] = single["flops"]
        out[f"bytes_{c}"] = single["bytes_accessed"]
        out[f"flops_per_j_{c}"] = single["flops"] / out[f"energy_j_{c}"]
    alone = sum(out[f"energy_j_{c}_alone"] for c in names)
    out["classes_sum_j"] = sum(out[f"energy_j_{c}"] for c in names)
    out["interaction_j"] = out["tape_energy_j"] - alone
    out["remainder_pct"] = 100 * (out["classes_sum_j"] / out["train_step_energy_j"] - 1)
    return out


def _last(c: str, tape, without) -> dict:
    """Class ``c``'s derived difference: the tape less the tape without it (none where it is
    the only class), with the two windows' standard errors combined."""
    if without is None:
        return {f"energy_j_{c}_last": math.nan, f"energy_j_{c}_last_sem": math.nan}
    sem = math.hypot(tape["energy_j_per_iter_sem"], without["energy_j_per_iter_sem"])
    last = tape["energy_j_per_iter"] - without["energy_j_per_iter"]
    return {f"energy_j_{c}_last": last, f"energy_j_{c}_last_sem": sem}


def _share(c: str, weights: dict, value: dict) -> dict:
    """Class ``c``'s Shapley shares of energy and time, the energy's standard error (the
    windows of different subsets are independent)."""
    energy = sum(w * value[s]["energy_j_per_iter"] for s, w in weights.items())
    var = sum((w * value[s]["energy_j_per_iter_sem"]) ** 2 for s, w in weights.items())
    time = sum(w * value[s]["time_per_iter_s"] for s, w in weights.items())
    return {f"energy_j_{c}": energy, f"energy_j_{c}_sem": math.sqrt(var), f"time_s_{c}": time}


def class_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration (and GPU) of experiment ``classes`` that measured every pass."""
    if rows.empty or "op_classes" not in rows:
        return pd.DataFrame(columns=[*IDENTITY, "classes"])
    ok = rows[(rows["experiment"] == "classes") & rows["status"].eq("ok")]
    keys = [*IDENTITY, "gpu_uuid"]
    out = []
    for _, g in ok.groupby(keys, dropna=False, sort=True):
        if {"train_step", TAPE} <= set(g["pass"]):
            out.append(configuration(g))
    return pd.DataFrame(out)


def fit(table: pd.DataFrame, classes=CLASSES) -> pd.DataFrame:
    """Per target, precision and class: J per FLOP and J per byte (non-negative least squares
    over the configurations, :func:`scipy.optimize.nnls`; a class fitted on FLOPs alone or bytes
    alone has the other rate 0)."""
    out = []
    for (target, precision), g in table.groupby(["target", "precision"], sort=True):
        for c in classes:
            cols = [*work_columns(c), f"energy_j_{c}"]
            used = g[cols].dropna() if set(cols) <= set(g) else pd.DataFrame()
            if used.empty:
                continue
            work = used[work_columns(c)].to_numpy(float)
            scale = np.where(work.max(axis=0) > 0, work.max(axis=0), 1.0)
            rates, _ = nnls(work / scale, used[f"energy_j_{c}"].to_numpy(float))
            per = dict(zip(WORK[c], rates / scale, strict=True))
            out.append(
                {
                    "target": target,
                    "precision": precision,
                    "class": c,
                    "j_per_flop": per.get("flops", 0.0),
                    "j_per_byte": per.get("bytes", 0.0),
                    "configurations": len(used),
                }
            )
        out.append(_remainder(g, target, precision))
    return pd.DataFrame(out, columns=RATE_COLUMNS).fillna({"j_per_parameter": 0.0})


def _remainder(g: pd.DataFrame, target, precision) -> dict:
    """The measured step minus the tape, per parameter (a ratio of sums): what the classes'
    replay does not reproduce of the step (within about 1 % on the H200s,
    resources/reference/h200_classes; a replay on recorded inputs ran a few ms longer than the
    step, in proportion to the parameters)."""
    used = g[["train_step_energy_j", "tape_energy_j", "parameters"]].dropna()
    gap = (used["train_step_energy_j"] - used["tape_energy_j"]).sum()
    per = gap / used["parameters"].sum() if len(used) else np.nan
    return {
        "target": target,
        "precision": precision,
        "class": REMAINDER,
        "j_per_flop": 0.0,
        "j_per_byte": 0.0,
        "j_per_parameter": per,
        "configurations": len(used),
    }


def predict(rates: pd.DataFrame, row: pd.Series) -> dict[str, float]:
    """Each class's energy for configuration ``row`` (its work columns) at ``rates``."""
    mine = rates[(rates["target"] == row["target"]) & (rates["precision"] == row["precision"])]
    out = {}
    for _, r in mine.iterrows():
        c = r["class"]
        if c == REMAINDER:
            out[c] = r["j_per_parameter"] * row["parameters"]
        else:
            out[c] = r["j_per_flop"] * row[f"flops_{c}"] + r["j_per_byte"] * row[f"bytes_{c}"]
    return out


def validate(table: pd.DataFrame) -> pd.DataFrame:
    """Each configuration predicted by a fit on the others of its target and precision: the
    predicted step (classes summed) and each class against what was measured (%)."""
    out = []
    for i, row in table.iterrows():
        others = table.drop(index=i)
        same = (others["target"] == row["target"]) & (others["precision"] == row["precision"])
        classes = row["classes"].split("+")
        base = {k: row[k] for k in (*IDENTITY, "gpu_label")} | {"fitted_on": int(same.sum())}
        if not same.any():
            out.append(base | {"predicted_j": np.nan, "miss_pct": np.nan})
            continue
        base |= judged(fit(others[same], classes), row)
        out.append(base)
    return pd.DataFrame(out)


def judged(rates: pd.DataFrame, row: pd.Series) -> dict:
    """Configuration ``row`` predicted at ``rates``: the step (the classes and the remainder),
    the tape (the classes alone) and each class, against what was measured (%)."""
    classes = row["classes"].split("+")
    part = predict(rates, row)
    if not set(classes) <= set(part):
        return {"predicted_j": np.nan, "miss_pct": np.nan}
    tape = sum(part[c] for c in classes)
    step = tape + part.get(REMAINDER, 0.0)
    out = {
        "measured_j": row["train_step_energy_j"],
        "predicted_j": step,
        "miss_pct": 100 * (step / row["train_step_energy_j"] - 1),
        "predicted_tape_j": tape,
        "miss_vs_tape_pct": 100 * (tape / row["tape_energy_j"] - 1),
    }
    return out | {f"miss_pct_{c}": 100 * (part[c] / row[f"energy_j_{c}"] - 1) for c in classes}
