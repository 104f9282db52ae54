"""Issue 32 probe: do the per-class energies measured on Llama shapes (issue 36) predict the train
steps of other model families?

Each class's energy (its Shapley share, experiment ``classes``: the 7 Llama configurations of
``resources/reference/h200_classes`` and ``..._heldout``, bf16, CUDA-graph launch) is fitted on
that class's work in the step's operation stream on the meta device
(:func:`flopmetrics.flops.opstream.step_ops`: GEMMs by FLOPs, attention by its executed FLOPs and
bytes, the rest by bytes; non-negative least squares). The sum over classes then predicts the
measured bf16 train steps of the held-out sets (other families, launched eagerly), none of which
any rate was fitted on. Not shipped: a probe of the model issue 32 asks for.

Two predictions per row: ``work`` prices each class's energy per unit of work (a graph-replayed,
GPU-bound step: no idle time between kernels); ``timed`` prices only each class's dynamic energy
(its share minus the idle power over its share of time) and adds the idle power over the step's
time from the packaged step-time model (:func:`flopmetrics.analysis.steptime.step` with the
class-priced dynamic energy: the GPU's time, the host's launching, or the power limit, whichever
is longest).

    python benchmarks/class_energy_families.py [--heldout resources/reference/h200_heldout ...]
"""

from __future__ import annotations

import argparse
import glob
import json
import sys

import numpy as np
import pandas as pd
from scipy.optimize import nnls

from flopmetrics.analysis import steptime
from flopmetrics.analysis.class_energy import class_table
from flopmetrics.analysis.merge import merge_energy
from flopmetrics.contracts import packaged
from flopmetrics.flops.models import resolve
from flopmetrics.flops.opstream import step_ops

CLASSES = ("gemm", "attention", "elementwise", "optimizer", "other")
WORK = {
    "gemm": ("flops",),
    "attention": ("flops", "bytes"),
    "elementwise": ("bytes",),
    "optimizer": ("bytes",),
    "other": ("bytes",),
}
CLASS_DIRS = ("resources/reference/h200_classes", "resources/reference/h200_classes_heldout")
HELDOUT = (
    "resources/reference/h200_heldout",
    "resources/reference/h200_heldout2",
)


def rows_of(folders) -> pd.DataFrame:
    files = [f for d in folders for f in sorted(glob.glob(f"{d}/raw/**/*.parquet", recursive=True))]
    return merge_energy([], files)


def stream(model_spec, batch, seq, precision="bf16", pass_name="train_step") -> dict:
    _, fields = resolve(model_spec)
    return step_ops(fields, int(batch), int(seq), precision, pass_name)


def work(model_spec, batch, seq, precision="bf16", pass_name="train_step") -> dict[str, float]:
    """Per class: FLOPs and bytes of one iteration in the meta-device operation stream."""
    ops = stream(model_spec, batch, seq, precision, pass_name)
    out = {}
    for c in CLASSES:
        mine = ops["cls"] == c
        out[f"flops_{c}"] = float(ops["flops"][mine].sum())
        out[f"bytes_{c}"] = float(ops["bytes"][mine].sum())
    return out


def spec_of(row) -> object:
    return json.loads(row["config_json"])["workload"]["model"]


def fit(table: pd.DataFrame, column: str = "energy_j_{}") -> dict[str, np.ndarray]:
    rates = {}
    for c in CLASSES:
        a = table[[f"{w}_{c}" for w in WORK[c]]].to_numpy(float)
        scale = a.max(axis=0)
        coef, _ = nnls(a / scale, table[column.format(c)].to_numpy(float))
        rates[c] = coef / scale
    return rates


def predict(rates, w: dict) -> dict[str, float]:
    return {
        c: float(sum(r * w[f"{k}_{c}"] for r, k in zip(rates[c], WORK[c], strict=True)))
        for c in CLASSES
    }


CAPPED_W = 600  # a mean power above this: the step ran at (or near) the 700 W limit


def timed_step(params: dict, ops: dict, dynamic_j: float, idle_w: float, limit_w: float):
    """The step-time model's step with the dynamic energy given (class-priced): (J, s, bound)."""
    gpu_only = dict(params, e_flop_j=0.0, e_unaligned_j=0.0, e_byte_j=0.0)
    _, t, bound = steptime.step(gpu_only, ops, idle_w, limit_w)  # GPU and host time
    capped = dynamic_j / max(limit_w - idle_w, 1e-9)
    if capped > t:
        t, bound = capped, "power"
    return idle_w * t + dynamic_j, t, bound


def summarize(out: pd.DataFrame, keys: list[str], column: str) -> pd.DataFrame:
    return out.groupby(keys)[column].agg(
        rows="size",
        median_abs=lambda m: m.abs().median(),
        largest_abs=lambda m: m.abs().max(),
        within_10=lambda m: int((m.abs() <= 10).sum()),
    )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--heldout", nargs="+", default=list(HELDOUT))
    ap.add_argument("--passes", nargs="+", default=["train_step"])
    ap.add_argument("--precisions", nargs="+", default=["bf16"])
    args = ap.parse_args()
    classes = rows_of(CLASS_DIRS)
    table = class_table(classes)
    specs = {
        (r["model"], r["batch_size"], r["seq_len"]): spec_of(r)
        for _, r in classes[classes["pass"] == "train_step"].iterrows()
    }
    for i, r in table.iterrows():
        w = work(specs[(r["model"], r["batch_size"], r["seq_len"])], r["batch_size"], r["seq_len"])
        for k, v in w.items():
            table.loc[i, k] = v
    idle = classes[classes["pass"] == "train_step"].set_index(["model", "batch_size", "seq_len"])
    for i, r in table.iterrows():
        w = idle.loc[(r["model"], r["batch_size"], r["seq_len"]), "idle_power_w"]
        for c in CLASSES:  # Shapley shares are linear in the windows: dynamic = total - idle x time
            table.loc[i, f"dynamic_j_{c}"] = r[f"energy_j_{c}"] - w * r[f"time_s_{c}"]
    rates = fit(table)
    dynamic_rates = fit(table, "dynamic_j_{}")
    calibration = pd.read_parquet(packaged.steptime_path()).set_index(["gpu_label", "precision"])
    print("rates (J per FLOP, J per byte) fitted on", len(table), "Llama configurations:")
    for c in CLASSES:
        print(f"  {c:12s}", " ".join(f"{x:.3e}" for x in rates[c]))
    for _, r in table.iterrows():
        p = predict(rates, r)
        miss = 100 * (sum(p.values()) / r["train_step_energy_j"] - 1)
        print(f"  in fit: {r['model']} {r['batch_size']}x{r['seq_len']}: {miss:+.1f} %")
    held = rows_of(args.heldout)
    held = held[
        held["pass"].isin(args.passes)
        & held["precision"].isin(args.precisions)
        & held["status"].eq("ok")
        & held["energy_j_per_iter"].notna()
    ]
    out = []
    for _, r in held.iterrows():
        w = work(spec_of(r), r["batch_size"], r["seq_len"], r["precision"], r["pass"])
        p = predict(rates, w)
        total = sum(p.values())
        c = calibration.loc[("h200", r["precision"])]
        params = {k: c[k] for k in steptime.PARAMETERS}
        ops = stream(spec_of(r), r["batch_size"], r["seq_len"], r["precision"], r["pass"])
        dyn = sum(predict(dynamic_rates, w).values())
        timed, _, bound = timed_step(params, ops, dyn, c["idle_w"], c["limit_w"])
        out.append(
            {
                "model": r["model"],
                "precision": r["precision"],
                "pass": r["pass"],
                "batch": int(r["batch_size"]),
                "seq": int(r["seq_len"]),
                "measured_j": r["energy_j_per_iter"],
                "predicted_j": total,
                "miss_pct": 100 * (total / r["energy_j_per_iter"] - 1),
                "timed_j": timed,
                "timed_miss_pct": 100 * (timed / r["energy_j_per_iter"] - 1),
                "bound": bound,
                "power_w": r["power_mean_w"],
                **{f"{c}_pct": 100 * p[c] / total for c in CLASSES},
            }
        )
    out = pd.DataFrame(out).sort_values(["pass", "precision", "model", "batch", "seq"])
    with pd.option_context("display.width", 200):
        print(out.round(1).to_string(index=False))
    out["capped"] = out["power_w"] >= CAPPED_W
    for column in ("miss_pct", "timed_miss_pct"):
        print(f"\n{column}:")
        for keys in (["pass", "precision", "model"], ["pass", "precision"], ["capped"]):
            print(summarize(out, keys, column).round(1).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
