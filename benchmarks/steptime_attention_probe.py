"""Probe (issue 32): the step-time model with fused attention at its measured kernel rate instead
of the GEMMs' fitted rate. The rates are those `benchmarks/kernel_rates.py` timed (forward, and
backward as forward + backward less forward), interpolated in log2 of the length per head
dimension (64 or 128) and clamped at 512 and 4096 tokens. Refits on the calibration folders and
judges both held-out sets, as `benchmarks/heldout.py` does with the step-time model alone.

    python benchmarks/steptime_attention_probe.py [RATES_JSON]
"""

import json
import sys

import numpy as np
import pandas as pd

from flopmetrics.analysis import steptime, steptime_rows
from flopmetrics.flops.models import resolve

K = json.load(
    open(
        sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/kernel_rates_h200_2026-12-04.json"
    )
)["rows"]


def table():
    out = {}
    for dim in (64, 128):
        rows = [r for r in K if r["kind"] == "attention" and r["dim"] == dim]
        for seq in sorted({r["seq"] for r in rows}):
            f = [r for r in rows if r["seq"] == seq and r["pass"] == "forward"]
            fb = [r for r in rows if r["seq"] == seq and r["pass"] == "forward_backward"]
            tf = np.mean([r["time_s"] / r["flops"] for r in f])  # s per fwd FLOP
            tfb = np.mean(
                [r["time_s"] / (r["flops"] / 3.5) for r in fb]
            )  # s per fwd FLOP for fwd+bwd
            out[(dim, seq)] = (1 / tf, 2.5 / (tfb - tf))
    return out


T = table()


def rate(dim, seq, phase):
    d = 64 if dim <= 96 else 128
    seqs = sorted(s for (dd, s) in T if dd == d)
    x = np.log2(np.clip(seq, seqs[0], seqs[-1]))
    i = 0 if phase == "f" else 1
    return float(np.interp(x, np.log2(seqs), [T[(d, s)][i] for s in seqs]))


orig_step = steptime.step


def step(p, ops, idle_w, limit_w):
    cls, flops, nbytes, phase = ops["cls"], ops["flops"], ops["bytes"], ops["phase"]
    p = steptime._filled(p)
    product = (cls == "gemm") | (cls == "attention")
    slow = ops["unaligned"]
    att = cls == "attention"
    ra = np.where(phase == "f", ops["r_att_f"], ops["r_att_b"])
    rate_ = np.where(slow, p["r_unaligned"], p["r_flop"])
    rate_ = np.where(att, ra, np.where(product, rate_, np.inf))
    gpu = float(np.sum(np.maximum(flops / rate_, nbytes / p["bandwidth"]))) + len(cls) * p["tau_s"]
    host = sum(
        float(np.sum(phase == ph)) * p[f"host_{name}_s"]
        for ph, name in (("f", "forward"), ("b", "backward"), ("o", "optimizer"))
    )
    dynamic = p["e_flop_j"] * flops[product & ~slow].sum() + p["e_byte_j"] * nbytes.sum()
    dynamic += p["e_unaligned_j"] * flops[product & slow].sum()
    capped = dynamic / max(limit_w - idle_w, 1e-9)
    t, bound = max((gpu, "gpu"), (host, "host"), (capped, "power"))
    return idle_w * t + dynamic, t, bound


steptime.step = step

orig_ops_of = steptime_rows.ops_of


def with_att(o, fields, seq):
    dim = fields.get("head_dim") or (fields.get("hidden_size") or fields.get("n_embd")) // (
        fields.get("num_attention_heads") or fields.get("n_head")
    )
    o = dict(o)
    o["r_att_f"] = rate(dim, seq, "f")
    o["r_att_b"] = rate(dim, seq, "b")
    return o


def ops_of(r):
    _, fields = resolve(json.loads(r["config_json"])["workload"]["model"])
    return with_att(orig_ops_of(r), fields, int(r["seq_len"]))


steptime_rows.ops_of = ops_of

dirs = [
    "resources/reference/h200",
    "resources/reference/h200_calibration_batch",
    "resources/reference/h200_calibration_unaligned",
]
cal = steptime_rows.calibrate_dirs(dirs, log=lambda *a: None)
print(
    cal[
        [
            "precision",
            "r_flop",
            "r_unaligned",
            "e_flop_j",
            "resid_sd",
            "left_out_q95",
            "left_out_q95_unaligned",
        ]
    ].to_string()
)
held = steptime_rows.read_rows(
    ["resources/reference/h200_heldout", "resources/reference/h200_heldout2"]
)
held = held[held["pass"].isin(["forward", "train_step"])]
out = []
for (_label, prec), g in held.groupby(["gpu_label", "precision"]):
    c = cal[cal.precision == prec].iloc[0].to_dict()
    for r in steptime_rows.rows_of(g, ops_of):
        est = steptime.predict(c, r["ops"])
        # predict uses the table's idle; keep as estimate does
        out.append(
            dict(
                model=r["row"]["model"],
                prec=prec,
                b=r["row"]["batch_size"],
                s=r["row"]["seq_len"],
                p=r["row"]["pass"],
                err=100 * (est["energy_j"] / r["energy_j"] - 1),
                cov=est["energy_j_lo"] <= r["energy_j"] <= est["energy_j_hi"],
            )
        )
d = pd.DataFrame(out)
d["a"] = d.err.abs()
print(
    d.groupby(["p", "model"])
    .agg(med=("a", "median"), mx=("a", "max"), cov=("cov", "sum"), n=("a", "size"))
    .round(1)
    .to_string()
)
print("ALL", len(d), d.a.median().round(2), d.a.max().round(1), d["cov"].sum(), (d.a > 10).sum())
