"""Check (issue 32): does the fused causal attention kernel, measured alone by the attention
experiment, price the attention kernels that ran inside measured steps?

Reads the attention experiment's rows below a reference folder (``--kernels``) as the step-time
calibration holds them (:func:`flopmetrics.analysis.steptime_measured.attention_kernels`),
prints each shape's rate and dynamic energy per FLOP, then prices every profiled bf16 step's
fused attention kernels (``benchmarks/results/kernel_time_by_class_*.json``, each profiled with
``torch.profiler`` on an H200 naming its card; the steps of ``benchmarks/attention_rate_probe.py``)
at the measured shapes (:mod:`flopmetrics.analysis.steptime_attention`) and sets that beside the
attention time profiled in the step: a second, independent path to the same kernels.

    PYTHONPATH=<transformers 5.17.0> python benchmarks/attention_kernel_check.py \\
        --kernels resources/reference/h200_calibration_attention_kernel

or, with ``--kernel-rates``, from the timings of ``benchmarks/kernel_rates.py`` (CUDA events, no
energy; forward and forward + backward, the backward's FLOPs booked as the operation stream
books them, twice the forward's) in place of the experiment's rows.
"""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
from attention_rate_probe import profiled_ops

from flopmetrics.analysis.steptime_attention import ATTENTION_TABLE, measured
from flopmetrics.analysis.steptime_measured import attention_kernels


def from_kernel_rates(path: str) -> str:
    """An :data:`ATTENTION_TABLE` of ``benchmarks/kernel_rates.py``'s causal attention rows
    without dropout (no energy: NaN)."""
    rows = [r for r in json.load(open(path))["rows"] if r["kind"] == "attention"]
    by: dict = {}
    for r in (r for r in rows if not r.get("dropout")):
        key = (r["dim"], r.get("kv_heads", r["heads"]), r["batch"] * r["heads"], r["seq"])
        by.setdefault(key, {})[r["pass"]] = r
    entries = []
    for (dim, kv, rows_, seq), v in sorted(by.items()):
        f, both = v["forward"], v["forward_backward"]
        groups = rows_ // (kv * f["batch"])
        backward = (both["time_s"] - f["time_s"]) / (2 * f["flops"])
        entries.append(["f", dim, groups, rows_, seq, f["time_s"] / f["flops"], math.nan])
        entries.append(["b", dim, groups, rows_, seq, backward, math.nan])
    return json.dumps(entries)


def shapes(table: str) -> None:
    print("direction head groups batch x heads length: TFLOP/s, dynamic pJ/FLOP")
    for d, head, groups, rows, seq, s, j in json.loads(table):
        print(f"  {d} {head:4d} {groups:2d} {rows:4d} {seq:6d}: {1e-12 / s:6.0f}, {1e12 * j:.3f}")


def steps(table: str) -> list[dict]:
    """Each profiled step's fused attention kernels, priced and profiled (a step with a head
    size not measured left out)."""
    out = []
    for key, ops, seconds, _ in profiled_ops():
        priced, _ = measured(table, ops)
        fused = (ops["cls"] == "attention") & (ops["head"] > 0)
        if np.isfinite(priced[fused]).all():
            out.append({"key": key, "priced": priced[fused].sum(), "profiled": seconds})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = ap.add_mutually_exclusive_group(required=True)
    source.add_argument("--kernels", help="a reference folder of attention rows")
    source.add_argument("--kernel-rates", help="benchmarks/kernel_rates.py's JSON")
    ap.add_argument("--label", default="h200")
    args = ap.parse_args()
    if args.kernel_rates:
        table = from_kernel_rates(args.kernel_rates)
    else:
        table = attention_kernels([args.kernels], args.label, "bf16")[ATTENTION_TABLE]
    shapes(table)
    found = steps(table)
    print(f"\n{len(found)} profiled steps, fused attention priced / profiled:")
    for s in sorted(found, key=lambda s: (s["key"][3], s["key"][0], s["key"][2], s["key"][1])):
        m, b, n, p = s["key"]
        ratio = s["priced"] / s["profiled"]
        print(f"  {m:24s} {b:3d} x {n:5d} {p:10s} {1e3 * s['profiled']:7.2f} ms {ratio:5.2f}")
    for p in ("forward", "train_step"):
        r = np.array([s["priced"] / s["profiled"] for s in found if s["key"][3] == p])
        if len(r):
            miss = 100 * np.abs(r - 1)
            said = f"largest {miss.max():.1f} %, above 10 %: {(miss > 10).sum()}"
            print(
                f"{p}: {len(r)} steps, ratio median {np.median(r):.2f}, |miss| median "
                f"{np.median(miss):.1f} %, {said}"
            )


if __name__ == "__main__":
    main()
