"""Issue 32 (a probe, not shipped): would pricing ``torch.cat``'s copy kernel at its own,
profiled rate close the narrow models' misses? Profiled on an H200, the rotary embedding's
``cat`` copies at 0.4-0.6 TB/s where the step-time model prices every kernel outside the
products at its fitted bandwidth
(``benchmarks/results/kernel_time_by_class_other_h200_2026-12-04.json``);
the reference model's share of such copies is the same in every calibration row, so the fit
cannot tell the copy's rate from the rest.

Here the copy's bandwidth is fixed from that profile (the reference model's ``cat`` kernels at
1 x 12288, forward: their time over the bytes the operation stream books them), the model is
refitted on the calibration folders with it, and every held-out step is predicted as
``flopmetrics estimate`` would (without the interval's held-out part), beside the model as
packaged. In-sample for the profile's choice of kernel, out of fit for every held-out row.

    python benchmarks/steptime_cat_probe.py \\
        --profile benchmarks/results/kernel_time_by_class_other_h200_2026-12-04.json \\
        --heldout resources/reference/h200_heldout ... \\
        > benchmarks/results/steptime_cat_probe_h200_2026-12-04.txt
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from steptime_judging import fitted, judged, summary

from flopmetrics.analysis import steptime
from flopmetrics.flops.models import resolve
from flopmetrics.flops.opstream import step_ops


def cat_bandwidth(profile: Path) -> float:
    """B/s of the reference model's ``cat`` copies in its profiled forward pass."""
    doc = json.loads(profile.read_text())
    row = next(r for r in doc["rows"] if r["model"] == "llama-3.2-1b" and r["pass"] == "forward")
    seconds = sum(v for k, v in row["top_kernels_s"].items() if "CatArrayBatchedCopy" in k)
    ops = step_ops(resolve("llama-3.2-1b")[1], row["batch_size"], row["seq_len"], "bf16", "forward")
    return float(ops["bytes"][ops["cat"]].sum()) / seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", type=Path, required=True)
    ap.add_argument("--heldout", nargs="+", required=True)
    args = ap.parse_args()
    bandwidth = cat_bandwidth(args.profile)
    print(f"cat copies on the reference model, profiled: {bandwidth / 1e12:.2f} TB/s")
    print("the model as packaged (every kernel outside the products at the fitted bandwidth):")
    base = judged(args.heldout, fitted())
    print(summary(base).to_string())
    original = steptime.kernel_times

    def with_cat(p: dict, ops: dict) -> np.ndarray:
        t = original(p, ops)
        slower = np.where(ops["cat"], ops["bytes"] * (1 / bandwidth - 1 / p["bandwidth"]), 0.0)
        return t + np.clip(slower, 0.0, None)

    steptime.kernel_times = with_cat  # step() looks it up at each call
    print(f"refitted with cat copies at {bandwidth / 1e12:.2f} TB/s:")
    probe = judged(args.heldout, fitted())
    print(summary(probe).to_string())
    both = base.assign(probe=probe["miss"].to_numpy())
    worst = both.assign(change=100 * (both["probe"] - both["miss"])).sort_values("change")
    print("largest changes of |miss| (percentage points), by model:")
    by_model = worst.groupby("model")["change"].median().sort_values()
    print(by_model.round(1).to_string())


if __name__ == "__main__":
    main()
