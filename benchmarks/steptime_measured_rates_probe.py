"""Issue 32 (a probe): the step-time model with the GEMM rate, the bandwidth of the other
kernels and the time per kernel measured, not fitted. The fit cannot tell the GEMMs' rate from
the other kernels' bandwidth (they come in nearly the same ratio in every calibration row), and
the held-out steps whose GPU time is mostly outside the products are the ones it prices low.
Here the three come from the reference model's own kernel times by class (``torch.profiler``,
``benchmarks/kernel_time_by_class.py`` on the calibration's configurations): GEMM time
(``gemm`` and ``split_k`` kernels) against its GEMM FLOPs, the other kernels' time
(``elementwise``, ``reduction``, ``other``) against their bytes, both with a time per kernel
(non-negative least squares, scipy); everything else is fitted as the package fits it, on the
package's calibration folders. Both tables then predict every held-out step. Out of fit for
every held-out row; the class times are of the reference model only.

    python benchmarks/steptime_measured_rates_probe.py \\
        --classes benchmarks/results/kernel_time_by_class_calibration_h200_2026-12-04.json \\
        --heldout resources/reference/h200_heldout ...
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import nnls
from steptime_judging import CALIBRATION, judged, summary

from flopmetrics.analysis import steptime_fit, steptime_measured, steptime_rows
from flopmetrics.flops.models import resolve
from flopmetrics.flops.opstream import step_ops

FOLDERS = CALIBRATION  # the packaged table's folders, grouped GEMMs and memory kernels among them
GEMM_S = ("gemm_s", "split_k_s")
OTHER_S = ("elementwise_s", "reduction_s", "other_s")


def measured_rates(path: Path, precision: str) -> dict:
    """``r_flop``, ``bandwidth`` and ``tau_s`` from the profiled class times of the reference
    model (``llama-3.2-1b``) in ``precision``: ``t_gemm = F / R + n tau`` and
    ``t_other = B / BW + n tau`` over every profiled pass, by non-negative least squares."""
    rows = [
        r
        for r in json.loads(path.read_text())["rows"]
        if r["model"] == "llama-3.2-1b" and r["precision"] == precision
    ]
    _, fields = resolve("llama-3.2-1b")
    a, y = [], []
    for r in rows:
        ops = step_ops(fields, r["batch_size"], r["seq_len"], precision, r["pass"])
        gemm = ops["cls"] == "gemm"
        other = np.isin(ops["cls"], ["elementwise", "other"])
        a.append([ops["flops"][gemm].sum(), 0.0, gemm.sum()])
        y.append(sum(r.get(k, 0.0) for k in GEMM_S))
        a.append([0.0, ops["bytes"][other].sum(), other.sum()])
        y.append(sum(r.get(k, 0.0) for k in OTHER_S))
    a, y = np.array(a), np.array(y)
    scale = a.max(axis=0)
    x, _ = nnls(a / scale / y[:, None], np.ones(len(y)))  # relative least squares
    x = x / scale
    return {"r_flop": 1 / x[0], "bandwidth": 1 / x[1], "tau_s": x[2], "profiled": len(rows)}


def fitted_with(held_rates: dict, label: str = "h200") -> pd.DataFrame:
    """The package's fit, on its folders, with ``held_rates[precision]`` held."""
    table = steptime_rows.read_rows(FOLDERS)
    out = []
    for precision, g in table[table["model"].notna()].groupby("precision"):
        if precision not in held_rates:
            continue
        rows = steptime_rows.rows_of(g, steptime_rows.ops_of)
        held = {k: v for k, v in held_rates[precision].items() if k != "profiled"}
        p = steptime_fit.fit(rows, label, precision, held)
        out.append(
            {
                **p,
                **steptime_measured.fp32_products(FOLDERS, label),
                "left_out_q95": math.nan,
                "idle_w": float(np.median([r["idle_w"] for r in rows])),
                "limit_w": float(np.median([r["limit_w"] for r in rows])),
            }
        )
    return pd.DataFrame(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--classes", type=Path, required=True, help="kernel_time_by_class.py's JSON")
    ap.add_argument("--heldout", nargs="+", required=True)
    args = ap.parse_args()
    rates = {p: measured_rates(args.classes, p) for p in ("bf16", "bf16-mixed")}
    for p, r in rates.items():
        print(
            f"measured, {p}: GEMM {r['r_flop'] / 1e12:.0f} TFLOP/s, other kernels "
            f"{r['bandwidth'] / 1e12:.2f} TB/s, {1e6 * r['tau_s']:.2f} us a kernel "
            f"({r['profiled']} profiled passes)"
        )
    keys = ["r_flop", "bandwidth", "tau_s", "host_forward_s", "e_flop_j", "e_byte_j", "resid_sd"]
    for name, held in (("fitted (as packaged)", {p: {} for p in rates}), ("measured", rates)):
        table = fitted_with(held)
        df = judged(args.heldout, table)
        print(f"\n{name}:")
        print(table.set_index("precision")[keys].to_string(float_format="%.3g"))
        print(summary(df).to_string(), flush=True)


if __name__ == "__main__":
    main()
