"""Issue 32 (a probe): the step-time model with each kind of memory-bound kernel at its own
speed. PyTorch runs an elementwise operation whose operands it cannot vectorize (broadcast, not
contiguous, another dtype) as its generic ``elementwise_kernel``, and ``torch.cat`` as a batched
copy; both move bytes slower than ``vectorized_elementwise_kernel``. The packaged model prices
every byte at one bandwidth.

The speeds come from the reference model's own kernels, profiled inside its steps
(``benchmarks/kernel_time_by_class.py``'s JSON with ``top_kernels_s``, bf16): each kind's bytes
(the operation stream's ``strided`` and ``cat`` flags) over its kernels' time (kernel names:
``elementwise_kernel<`` and ``unrolled_elementwise_kernel``; ``CatArrayBatchedCopy``), against
the rest of the time outside the matrix products over the rest of the bytes; the median over the
profiled passes. They are held in the fit (``strided_speed``, ``cat_speed``); everything else is
fitted as the package fits it. Both tables then predict every held-out step. The pipeline's
memory experiment (``config/calibration_memory_h200.yaml``) is to measure these speeds in place
of the profile.

With ``--table-out``, the step-time table with the profiled speeds held, fitted and bounded as
the pipeline's rule does it (the package's folders; the held-out misses of ``--heldout``), is
written there: ``benchmarks/preregister.py --steptime`` predicts a set with it before the set is
measured.

    python benchmarks/steptime_memory_speeds_probe.py \\
        --profiles benchmarks/results/kernel_time_by_class_other_h200_2026-12-04.json ... \\
        --heldout resources/reference/h200_heldout ... [--table-out TABLE.parquet]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from steptime_judging import judged, summary
from steptime_measured_rates_probe import FOLDERS, fitted_with

from flopmetrics.analysis import steptime_rows
from flopmetrics.flops.models import resolve
from flopmetrics.flops.opstream import step_ops

REST_S = ("elementwise_s", "reduction_s", "other_s")
KINDS = {
    "strided": ("void at::native::elementwise_kernel<", "unrolled_elementwise_kernel"),
    "cat": ("CatArrayBatchedCopy",),
}


def profiled_speeds(paths: list[Path]) -> tuple[dict, list[dict]]:
    """The median speed of each kind over the reference model's profiled passes, and each
    pass's bandwidths (B/s) of the vectorized kernels, the strided ones and the cats."""
    _, fields = resolve("llama-3.2-1b")
    passes = []
    for path in paths:
        for r in json.loads(path.read_text())["rows"]:
            if r["model"] != "llama-3.2-1b" or "top_kernels_s" not in r:
                continue
            o = step_ops(fields, r["batch_size"], r["seq_len"], r["precision"], r["pass"])
            rest = ~np.isin(o["cls"], ["gemm", "attention"])
            where = {"strided": o["strided"] & rest, "cat": o["cat"] & rest}
            times = {
                k: sum(v for name, v in r["top_kernels_s"].items() if any(m in name for m in marks))
                for k, marks in KINDS.items()
            }
            vectorized = rest & ~where["strided"] & ~where["cat"]
            t_rest = sum(r.get(k, 0.0) for k in REST_S) - sum(times.values())
            bw = {k: o["bytes"][where[k]].sum() / times[k] for k in KINDS}
            bw["vectorized"] = o["bytes"][vectorized].sum() / t_rest
            passes.append({**{k: r[k] for k in ("batch_size", "seq_len", "pass")}, **bw})
    speeds = {
        f"{k}_speed": float(np.median([p[k] / p["vectorized"] for p in passes])) for k in KINDS
    }
    speeds["memory_bandwidth"] = float(np.median([p["vectorized"] for p in passes]))
    speeds["memory_from"] = "profiled: " + ",".join(map(str, paths))
    return speeds, passes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profiles", type=Path, nargs="+", required=True)
    ap.add_argument("--heldout", nargs="+", required=True)
    ap.add_argument("--table-out", type=Path, help="write the table with the speeds held here")
    args = ap.parse_args()
    speeds, passes = profiled_speeds(args.profiles)
    if args.table_out:
        table = steptime_rows.calibrate_dirs(FOLDERS, args.heldout, speeds=speeds)
        table.to_parquet(args.table_out, index=False)
        print(f"wrote {args.table_out}")
        return
    print("the reference model's kernels, profiled (bf16), TB/s:")
    for p in passes:
        said = ", ".join(f"{k} {p[k] / 1e12:.2f}" for k in ("vectorized", "strided", "cat"))
        print(f"  {p['batch_size']} x {p['seq_len']} {p['pass']}: {said}")
    only = {k: v for k, v in speeds.items() if k.endswith("_speed")}
    print(
        "held speeds (median; bf16-mixed takes bf16's):", {k: round(v, 3) for k, v in only.items()}
    )
    keys = ["r_flop", "bandwidth", "tau_s", "host_forward_s", "e_flop_j", "e_byte_j", "resid_sd"]
    for name, held in (("packaged (one bandwidth)", {}), ("each kind at its speed", only)):
        table = fitted_with({p: dict(held) for p in ("bf16", "bf16-mixed")})
        show(name, table, judged(args.heldout, table), keys)
    # attention given dropout at half the fitted causal attention's rate: a guess from
    # benchmarks/results/kernel_rates_dropout_h200_2026-12-04.json (1.7-2.2x forward), not a fit
    table = table.assign(r_dropout=table["r_attention"] / 2)
    name = "each kind at its speed, attention given dropout at half causal attention's rate"
    show(name, table, judged(args.heldout, table), keys)


def show(name: str, table, df, keys: list[str]) -> None:
    """A table's parameters, its misses by bound, and the models of the steps not bound by the
    host that it misses by more than 10 %."""
    print(f"\n{name}:")
    print(table.set_index("precision")[keys].to_string(float_format="%.3g"))
    print(summary(df).to_string())
    busy = df[(df["bound"] != "host") & (df["miss"].astype(float) > 0.10)]
    print("not bound by the host, above 10 %, by model:", busy["model"].value_counts().to_dict())


if __name__ == "__main__":
    main()
