"""Probe (issue 32): how fast the fused causal attention kernel ran inside measured steps, from
the committed kernel profiles (``benchmarks/results/kernel_time_by_class_*.json``, each made by
``benchmarks/kernel_time_by_class.py`` on an H200 and naming its card), set beside the FLOPs and
bytes the operation stream books for the same step's attention kernels.

The packaged step-time model prices such attention at its fitted ``r_attention``, which sits at
the datasheet's peak: most calibration steps are bound by the power limit, where a kernel's rate
does not set the step's time, so the fit cannot tell it. Here each profiled bf16 step's
attention time (every kernel the classifier calls attention; steps with masked, dropout or fp32
attention left out) is fitted, with relative errors, by non-negative least squares (scipy's
``nnls``) as forward FLOPs over one rate plus backward FLOPs over another, with and without a
term per byte and per kernel: what a physical attention rate would be, and how far one form
holds across models and lengths.

    PYTHONPATH=<transformers 5.17.0> python benchmarks/attention_rate_probe.py
"""

from __future__ import annotations

import glob
import json

import numpy as np
import yaml
from scipy.optimize import nnls

from flopmetrics.flops.models import resolve
from flopmetrics.flops.opstream import step_ops

PROFILES = "benchmarks/results/kernel_time_by_class_*.json"
# each form: the terms it takes, by column (0 forward FLOPs, 1 backward FLOPs, 2 bytes, 3 kernels)
FORMS = {
    "F_f/R_f + F_b/R_b": (0, 1),
    "+ B/BW": (0, 1, 2),
    "+ n tau": (0, 1, 3),
    "+ B/BW + n tau": (0, 1, 2, 3),
}


def _models(config) -> dict:
    """A profile's model entries by name (its configuration file, or the entries inline)."""
    try:
        c = yaml.safe_load(open(config)) if isinstance(config, str) else config
        return {m["name"]: m for m in c["llm"]["models"] if isinstance(m, dict)}
    except (OSError, KeyError, TypeError):
        return {}


def profiled_ops():
    """Each profiled bf16 forward or train step with fused causal attention (none masked, given
    dropout or on fp32 operands), once: (model, batch, length, pass), its operation stream, its
    profiled attention seconds and the card's UUID."""
    seen = set()
    for path in sorted(glob.glob(PROFILES)):
        profile = json.load(open(path))
        models = _models(profile["config"])
        for r in profile["rows"]:
            key = (r["model"], r["batch_size"], r["seq_len"], r["pass"])
            if key in seen or r["precision"] != "bf16" or not r.get("attention_s"):
                continue
            if r["pass"] not in ("forward", "train_step"):
                continue
            seen.add(key)
            _, fields = resolve(models.get(r["model"], r["model"]))
            ops = step_ops(fields, r["batch_size"], r["seq_len"], "bf16", r["pass"])
            a = ops["cls"] == "attention"
            if not (ops["masked"][a] | ops["dropout"][a] | ops["fp32"][a]).any():
                yield key, ops, r["attention_s"], profile["gpu_uuid"]


def profiled_steps() -> list[dict]:
    """Each of :func:`profiled_ops`' steps with its terms: forward and backward attention
    FLOPs, attention bytes and kernels."""
    out = []
    for key, ops, seconds, card in profiled_ops():
        a = ops["cls"] == "attention"
        forward, backward = a & (ops["phase"] == "f"), a & (ops["phase"] == "b")
        terms = [ops["flops"][forward].sum(), ops["flops"][backward].sum()]
        terms += [ops["bytes"][a].sum(), float(a.sum())]
        out.append({"key": key, "x": terms, "s": seconds, "card": card})
    return out


def fitted(steps: list[dict], columns: tuple) -> tuple[np.ndarray, np.ndarray]:
    """A form's coefficients and each step's relative miss."""
    x = np.array([s["x"] for s in steps])[:, columns]
    y = np.array([s["s"] for s in steps])
    coef, _ = nnls(x / y[:, None], np.ones(len(y)))
    return coef, x @ coef / y - 1


def _said(columns: tuple, coef: np.ndarray) -> str:
    unit = {0: ("R_f", 1e12, "TFLOP/s"), 1: ("R_b", 1e12, "TFLOP/s"), 2: ("BW", 1e12, "TB/s")}
    out = []
    for c, v in zip(columns, coef, strict=True):
        if c == 3:
            out.append(f"tau {v * 1e6:.2f} us")
        else:
            name, scale, what = unit[c]
            out.append(f"{name} {1 / v / scale:.2f} {what}" if v else f"{name} unbounded")
    return ", ".join(out)


def main() -> None:
    steps = profiled_steps()
    cards = sorted({s["card"] for s in steps})
    print(f"{len(steps)} profiled bf16 steps with fused causal attention, {len(cards)} cards")
    print("\nrate of the attention kernels, booked FLOPs over profiled time:")
    for s in sorted(steps, key=lambda s: (s["key"][3], s["key"][0], s["key"][2], s["key"][1])):
        rate = (s["x"][0] + s["x"][1]) / s["s"] / 1e12
        m, b, n, p = s["key"]
        print(f"  {m:24s} {b:3d} x {n:5d} {p:10s} {rate:6.0f} TFLOP/s ({1e3 * s['s']:6.2f} ms)")
    print("\nforms fitted (relative errors, non-negative):")
    for name, columns in FORMS.items():
        coef, miss = fitted(steps, columns)
        m = 100 * np.abs(miss)
        print(
            f"  {name:18s} {_said(columns, coef)}: median miss {np.median(m):.1f} %, "
            f"largest {m.max():.1f} %, above 10 %: {(m > 10).sum()} of {len(m)}"
        )


if __name__ == "__main__":
    main()
