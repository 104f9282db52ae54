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

    python benchmarks/class_energy_families.py [--heldout resources/reference/h200_heldout ...] \
        [--passes train_step forward] [--precisions bf16 bf16-mixed]
    python benchmarks/class_energy_families.py --preregister config/heldout4_h200.yaml --out CSV

Judged later like any held-out set: ``--heldout`` the measured rows (the rates are refitted from
the committed class rows; the preregistered CSV says what they gave before).
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
from pathlib import Path

import pandas as pd
import yaml
from preregister import sweep  # benchmarks/preregister.py: the same sweep of a config

from flopmetrics.analysis import steptime
from flopmetrics.analysis.class_energy import REMAINDER, WORK, class_table, fit, predict
from flopmetrics.analysis.merge import merge_energy
from flopmetrics.contracts import packaged
from flopmetrics.flops.models import resolve
from flopmetrics.flops.opstream import step_ops

CLASSES = ("gemm", "attention", "elementwise", "optimizer", "other")
RATE = {"flops": "j_per_flop", "bytes": "j_per_byte"}  # a work column's rate in a fit's table
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


def work(ops: dict) -> dict[str, float]:
    """Per class: FLOPs and bytes of one iteration's operation stream (:func:`stream`)."""
    out = {}
    for c in CLASSES:
        mine = ops["cls"] == c
        out[f"flops_{c}"] = float(ops["flops"][mine].sum())
        out[f"bytes_{c}"] = float(ops["bytes"][mine].sum())
    return out


def spec_of(row) -> object:
    return json.loads(row["config_json"])["workload"]["model"]


def class_rates(table: pd.DataFrame, energy: str = "energy_j_{}") -> pd.DataFrame:
    """:func:`flopmetrics.analysis.class_energy.fit` of each class's ``energy`` column on its
    work, without the remainder (the step minus the tape is no class's)."""
    columns = {f"energy_j_{c}": table[energy.format(c)] for c in CLASSES}
    rates = fit(table.assign(**columns), CLASSES)
    return rates[rates["class"] != REMAINDER]


def price(rates: pd.DataFrame, w: dict) -> dict[str, float]:
    """Each class's energy for the work ``w`` at ``rates`` (of their one target and precision)."""
    first = rates.iloc[0]
    return predict(rates, {**w, "target": first["target"], "precision": first["precision"]})


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


class ClassModel:
    """The per-class rates fitted on the committed class rows, and both predictions of a step."""

    def __init__(self):
        classes = rows_of(CLASS_DIRS)
        table = class_table(classes)
        steps = classes[classes["pass"] == "train_step"].set_index(
            ["model", "batch_size", "seq_len"]
        )
        for i, r in table.iterrows():
            step = steps.loc[(r["model"], r["batch_size"], r["seq_len"])]
            ops = stream(spec_of(step), r["batch_size"], r["seq_len"])
            for k, v in work(ops).items():
                table.loc[i, k] = v
            for c in CLASSES:  # Shapley shares are linear in the windows: total - idle x time
                dynamic = r[f"energy_j_{c}"] - step["idle_power_w"] * r[f"time_s_{c}"]
                table.loc[i, f"dynamic_j_{c}"] = dynamic
        self.table = table
        self.rates = class_rates(table)
        self.dynamic_rates = class_rates(table, "dynamic_j_{}")
        steptime_table = pd.read_parquet(packaged.steptime_path())
        self.steptime = steptime_table.set_index(["gpu_label", "precision"])

    def report(self) -> None:
        print("rates (J per FLOP, J per byte) fitted on", len(self.table), "Llama configurations:")
        for _, r in self.rates.iterrows():
            used = [r[RATE[w]] for w in WORK[r["class"]]]
            print(f"  {r['class']:12s}", " ".join(f"{x:.3e}" for x in used))
        for _, r in self.table.iterrows():
            miss = 100 * (sum(price(self.rates, r).values()) / r["train_step_energy_j"] - 1)
            print(f"  in fit: {r['model']} {r['batch_size']}x{r['seq_len']}: {miss:+.1f} %")

    def __call__(self, spec, batch, seq, precision, pass_name) -> dict:
        """``work_j`` and ``timed_j`` (module docstring) of one iteration, the class shares of
        ``work_j`` and what bound the timed step."""
        ops = stream(spec, batch, seq, precision, pass_name)
        w = work(ops)
        p = price(self.rates, w)
        total = sum(p.values())
        c = self.steptime.loc[("h200", precision)]
        params = {k: c[k] for k in steptime.PARAMETERS}
        dynamic = sum(price(self.dynamic_rates, w).values())
        timed, _, bound = timed_step(params, ops, dynamic, c["idle_w"], c["limit_w"])
        shares = {f"{k}_pct": 100 * v / total for k, v in p.items()}
        return {"work_j": total, "timed_j": timed, "bound": bound, **shares}


def judge(model: ClassModel, held: pd.DataFrame) -> pd.DataFrame:
    out = []
    for _, r in held.iterrows():
        spec = spec_of(r)
        p = model(spec, r["batch_size"], r["seq_len"], r["precision"], r["pass"])
        measured = r["energy_j_per_iter"]
        out.append(
            {
                "model": r["model"],
                "precision": r["precision"],
                "pass": r["pass"],
                "batch": int(r["batch_size"]),
                "seq": int(r["seq_len"]),
                "measured_j": measured,
                "predicted_j": p["work_j"],
                "miss_pct": 100 * (p["work_j"] / measured - 1),
                "timed_j": p["timed_j"],
                "timed_miss_pct": 100 * (p["timed_j"] / measured - 1),
                "bound": p["bound"],
                "power_w": r["power_mean_w"],
                **{f"{c}_pct": p[f"{c}_pct"] for c in CLASSES},
            }
        )
    return pd.DataFrame(out).sort_values(["pass", "precision", "model", "batch", "seq"])


def preregister(model: ClassModel, config_path: str) -> pd.DataFrame:
    """Both predictions for every step of a configuration file's LLM sweep (as
    ``benchmarks/preregister.py`` sweeps it)."""
    out = []
    for w in sweep(yaml.safe_load(Path(config_path).read_text())):
        name, _ = resolve(w["model"])
        keys = {k: w[k] for k in ("precision", "batch_size", "seq_len", "pass")}
        p = model(w["model"], w["batch_size"], w["seq_len"], w["precision"], w["pass"])
        out.append({"model": name, **keys, **p})
    return pd.DataFrame(out)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--heldout", nargs="+", default=list(HELDOUT))
    ap.add_argument("--passes", nargs="+", default=["train_step"])
    ap.add_argument("--precisions", nargs="+", default=["bf16"])
    ap.add_argument("--preregister", metavar="CONFIG", help="predict a config's LLM sweep")
    ap.add_argument("--out", help="with --preregister: the CSV to write")
    args = ap.parse_args()
    model = ClassModel()
    model.report()
    if args.preregister:
        table = preregister(model, args.preregister)
        table.to_csv(args.out, index=False)
        print(table.round(2).to_string(index=False))
        return 0
    held = rows_of(args.heldout)
    held = held[
        held["pass"].isin(args.passes)
        & held["precision"].isin(args.precisions)
        & held["status"].eq("ok")
        & held["energy_j_per_iter"].notna()
    ]
    out = judge(model, held)
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
