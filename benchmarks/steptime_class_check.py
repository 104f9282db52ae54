"""Benchmark (issue 32): the step-time model's GPU time per kernel class against each class's
kernel time profiled on a GPU (`benchmarks/kernel_time_by_class.py`'s JSON), configuration by
configuration: whether the model's totals are right for the right reasons.

The model's time of a class is its kernels' ``max(F / R, B / BW)`` (GEMMs at ``r_flop``, or
``r_unaligned`` where unaligned; attention at ``r_flop``; every other kernel ``B / BW``), with
the packaged step-time parameters (or ``--steptime``); the profile's is the sum of its kernels'
durations in one iteration. ``rest`` is everything else (elementwise, reductions, optimizer,
other). Prints model / profiled in ms and the ratio of the sums per class.

    python benchmarks/steptime_class_check.py --profile PROFILE.json --config CONFIG.yaml
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
import yaml

from flopmetrics.analysis import steptime
from flopmetrics.contracts import packaged
from flopmetrics.flops.models import resolve
from flopmetrics.flops.opstream import STREAMED, step_ops

CLASSES = ("gemm", "attention", "rest")


def model_times(c: dict, ops: dict) -> dict:
    """The model's GPU time in seconds per class of one iteration (no per-kernel cost)."""
    t, cls = steptime.kernel_times(c, ops), ops["cls"]
    rest = (cls != "gemm") & (cls != "attention")
    return {
        "gemm": t[cls == "gemm"].sum(),
        "attention": t[cls == "attention"].sum(),
        "rest": t[rest].sum(),
    }


def profiled_times(r: dict) -> dict:
    """The profile's GPU time in seconds per class."""
    got = {
        k[:-2]: v
        for k, v in r.items()
        if k.endswith("_s") and k not in ("wall_s_profiled", "kernel_s")
    }
    rest = sum(v for k, v in got.items() if k not in ("gemm", "attention"))
    return {"gemm": got.get("gemm", 0.0), "attention": got.get("attention", 0.0), "rest": rest}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", type=Path, required=True)
    ap.add_argument("--config", type=Path, required=True, help="the config the profile ran")
    ap.add_argument("--steptime", type=Path, default=packaged.steptime_path())
    args = ap.parse_args()
    models = yaml.safe_load(args.config.read_text())["llm"]["models"]
    models = {m if isinstance(m, str) else m["name"]: m for m in models}
    table = pd.read_parquet(args.steptime)
    doc = json.loads(args.profile.read_text())
    out = []
    for r in doc["rows"]:
        if r["precision"] not in STREAMED or r["pass"] not in steptime.PASSES:
            continue
        c = table[table["precision"] == r["precision"]].iloc[0].to_dict()
        fields = resolve(models[r["model"]])[1]
        ops = step_ops(fields, r["batch_size"], r["seq_len"], r["precision"], r["pass"])
        m, p = model_times(c, ops), profiled_times(r)
        row = {k: r[k] for k in ("model", "precision", "batch_size", "seq_len", "pass")}
        out.append(
            {
                **row,
                **{f"{k}_model_ms": 1e3 * m[k] for k in CLASSES},
                **{f"{k}_profiled_ms": 1e3 * p[k] for k in CLASSES},
            }
        )
    t = pd.DataFrame(out)
    with pd.option_context("display.width", 250):
        print(t.round(2).to_string(index=False))
    print(f"profiled on {doc['gpu_uuid']} (torch {doc['torch']})")
    for (model, pass_name), g in t.groupby(["model", "pass"]):
        ratios = ", ".join(
            f"{k} {g[f'{k}_model_ms'].sum() / g[f'{k}_profiled_ms'].sum():.2f}" for k in CLASSES
        )
        print(f"model / profiled, {model} {pass_name}: {ratios}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
