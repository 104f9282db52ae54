"""Probe (issue 32): the step-time model with each kernel class's rate fitted on that class's
profiled GPU time (stage 1), then host costs and energies on the metered rows (stage 2), judged
on both held-out sets. A probe of the next model, not the shipped one.

Stage 1, per precision, on the reference model's calibration configurations profiled with
``benchmarks/kernel_time_by_class.py`` (``--class-times``): aligned GEMMs at ``r_flop``,
unaligned ones at ``r_unaligned``, attention's forward and backward kernels at ``r_att_f`` and
``r_att_b``, every other kernel at ``bandwidth`` (all its bytes), plus ``tau`` per kernel; each
class's modelled time against its profiled time, in logarithms (scipy ``least_squares``).
Attention with dropout (a model whose config trains it with dropout) is priced at the ratio
of its kernel rate with and without dropout read by ``benchmarks/kernel_rates.py``
(``--rates``), by length. Stage 2 fits ``host_*``, ``e_*`` on the metered calibration rows with
the stage-1 rates fixed, as :func:`flopmetrics.analysis.steptime_fit.fit` does with all of them.

    python benchmarks/steptime_class_fit_probe.py
"""

from __future__ import annotations

import argparse
import json
import math
import sys

import numpy as np
import pandas as pd
import yaml
from scipy.optimize import least_squares
from transformers import AutoConfig

from flopmetrics.analysis import steptime, steptime_rows
from flopmetrics.flops.models import resolve
from flopmetrics.flops.opstream import STREAMED, step_ops

RATES = ("r_flop", "r_unaligned", "r_att_f", "r_att_b", "bandwidth", "tau_s")
ENERGY = (
    "host_forward_s",
    "host_backward_s",
    "host_optimizer_s",
    "e_flop_j",
    "e_unaligned_j",
    "e_byte_j",
)
CALIBRATION = [
    "resources/reference/h200",
    "resources/reference/h200_calibration_batch",
    "resources/reference/h200_calibration_unaligned",
]
HELDOUT = ["resources/reference/h200_heldout", "resources/reference/h200_heldout2"]
DROPOUT_KEYS = ("attn_pdrop", "attention_dropout")


def dropout_ratio(path: str):
    """Time of attention with dropout 0.1 over without, by length: (forward, backward)."""
    rows = [
        r for r in json.load(open(path))["rows"] if r["kind"] == "attention" and r["heads"] == 12
    ]
    out = {}
    for seq in sorted({r["seq"] for r in rows}):
        t = {(r["pass"], r["dropout"]): r["time_s"] for r in rows if r["seq"] == seq}
        if ("forward", 0.1) not in t:
            continue
        fwd = t[("forward", 0.1)] / t[("forward", 0.0)]
        bwd = (t[("forward_backward", 0.1)] - t[("forward", 0.1)]) / (
            t[("forward_backward", 0.0)] - t[("forward", 0.0)]
        )
        out[seq] = (fwd, bwd)
    seqs = sorted(out)

    def ratio(seq: int, i: int) -> float:
        x = np.log2(np.clip(seq, seqs[0], seqs[-1]))
        return float(np.interp(x, np.log2(seqs), [out[s][i] for s in seqs]))

    return ratio


def with_extras(ops: dict, fields: dict, seq: int, ratio) -> dict:
    """The stream with each attention kernel's slowdown for dropout (1 without)."""
    config = AutoConfig.for_model(**fields)  # the architecture's defaults where a field is unset
    p = max(float(getattr(config, k, 0.0) or 0.0) for k in DROPOUT_KEYS)
    slow = np.ones(len(ops["cls"]))
    if p > 0:
        att = ops["cls"] == "attention"
        slow[att & (ops["phase"] == "f")] = ratio(seq, 0)
        slow[att & (ops["phase"] != "f")] = ratio(seq, 1)
    return {**ops, "slowdown": slow}


def class_times(p: dict, ops: dict) -> dict:
    cls, f, b, ph = ops["cls"], ops["flops"], ops["bytes"], ops["phase"]
    gemm, att = cls == "gemm", cls == "attention"
    rate = np.where(ops["unaligned"], p["r_unaligned"], p["r_flop"])
    att_rate = np.where(ph == "f", p["r_att_f"], p["r_att_b"])
    t = np.where(gemm, f / rate, np.where(att, f / att_rate * ops["slowdown"], b / p["bandwidth"]))
    t = t + p["tau_s"]
    return {"gemm": t[gemm].sum(), "attention": t[att].sum(), "rest": t[~gemm & ~att].sum()}


def step(p: dict, ops: dict, idle_w: float, limit_w: float):
    cls, f, b = ops["cls"], ops["flops"], ops["bytes"]
    gpu = sum(class_times(p, ops).values())
    host = steptime.host_time(p, ops)
    product, slow = (cls == "gemm") | (cls == "attention"), ops["unaligned"]
    dynamic = (
        p["e_flop_j"] * f[product & ~slow].sum()
        + p["e_unaligned_j"] * f[product & slow].sum()
        + p["e_byte_j"] * b.sum()
    )
    t = max(gpu, host, dynamic / (limit_w - idle_w))
    return idle_w * t + dynamic, t


def stage1(profiled: list[dict]) -> dict:
    def resid(x):
        p = dict(zip(RATES, np.exp(x), strict=True))
        out = []
        for r in profiled:
            m = class_times(p, r["ops"])
            out += [math.log(m[k] / r[k]) for k in ("gemm", "attention", "rest") if r[k] > 0]
        return np.asarray(out)

    start = np.log([7e14, 1.2e14, 3e14, 2e14, 2.5e12, 2e-6])
    res = least_squares(resid, start, x_scale="jac")
    return dict(zip(RATES, np.exp(res.x), strict=True))


def stage2(rates: dict, rows: list[dict]) -> dict:
    def resid(x):
        p = {**rates, **dict(zip(ENERGY, np.exp(x), strict=True))}
        out = []
        for r in rows:
            e, t = step(p, r["ops"], r["idle_w"], r["limit_w"])
            out += [math.log(e / r["energy_j"]), math.log(t / r["time_s"])]
        return np.asarray(out)

    res = least_squares(resid, np.log([2e-5, 3e-5, 1e-5, 1e-12, 2e-12, 1e-10]), x_scale="jac")
    p = {**rates, **dict(zip(ENERGY, np.exp(res.x), strict=True))}
    p["resid_sd"] = float(np.sqrt(np.mean(res.fun[0::2] ** 2)))
    return p


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--class-times",
        default="benchmarks/results/kernel_time_by_class_calibration_h200_2026-12-04.json",
    )
    ap.add_argument("--config", default="benchmarks/class_times_calibration.yaml")
    ap.add_argument(
        "--rates", default="benchmarks/results/kernel_rates_dropout_h200_2026-12-04.json"
    )
    args = ap.parse_args()
    ratio = dropout_ratio(args.rates)
    specs = yaml.safe_load(open(args.config))["llm"]["models"]
    specs = {m if isinstance(m, str) else m["name"]: m for m in specs}
    doc = json.load(open(args.class_times))
    print(f"class times profiled on {doc['gpu_uuid']}; dropout ratios from {args.rates}")

    def ops_of(row: dict) -> dict:
        _, fields = resolve(json.loads(row["config_json"])["workload"]["model"])
        o = steptime_rows.ops_of(row)
        return with_extras(o, fields, int(row["seq_len"]), ratio)

    cal = steptime_rows.read_rows(CALIBRATION)
    held = steptime_rows.read_rows(HELDOUT)
    held = held[held["pass"].isin(["forward", "train_step"])]
    out = []
    for precision in STREAMED:
        profiled = []
        for r in (
            r for r in doc["rows"] if r["precision"] == precision and r["pass"] in steptime.PASSES
        ):
            fields = resolve(specs[r["model"]])[1]
            o = with_extras(
                step_ops(fields, r["batch_size"], r["seq_len"], precision, r["pass"]),
                fields,
                r["seq_len"],
                ratio,
            )
            rest = sum(
                v
                for k, v in r.items()
                if k.endswith("_s")
                and k not in ("wall_s_profiled", "kernel_s", "gemm_s", "attention_s")
            )
            profiled.append(
                {
                    "ops": o,
                    "gemm": r.get("gemm_s", 0.0),
                    "attention": r.get("attention_s", 0.0),
                    "rest": rest,
                }
            )
        rates = stage1(profiled)
        rows = steptime_rows.rows_of(cal[cal["precision"] == precision], ops_of)
        p = stage2(rates, rows)
        print(precision, {k: f"{v:.3g}" for k, v in p.items()})
        idle = float(np.median([r["idle_w"] for r in rows]))
        for r in steptime_rows.rows_of(held[held["precision"] == precision], ops_of):
            e, t = step(p, r["ops"], idle, r["limit_w"])
            out.append(
                {
                    "model": r["row"]["model"],
                    "pass": r["row"]["pass"],
                    "error_pct": 100 * (e / r["energy_j"] - 1),
                    "time_error_pct": 100 * (t / r["time_s"] - 1),
                }
            )
    t = pd.DataFrame(out)
    t["abs"] = t["error_pct"].abs()
    print(
        t.groupby(["pass", "model"])
        .agg(
            median=("error_pct", "median"),
            largest=("abs", "max"),
            time=("time_error_pct", "median"),
            n=("abs", "size"),
        )
        .round(1)
        .to_string()
    )
    a = t["abs"]
    print(
        f"all {len(t)} rows: median |error| {a.median():.1f} %, largest {a.max():.1f} %, ", end=""
    )
    print(f"above 10 %: {int((a > 10).sum())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
