"""Issue 32 (a probe): what adding calibration folders to the step-time model's fit does to its
misses on held-out models. The model is fitted on the calibration folders the package uses,
then on those and ``--extra``; every held-out step is predicted as ``flopmetrics estimate``
would (without the interval's held-out part), by predicted bound and by set, beside the fitted
parameters. Out of fit for every held-out row.

    python benchmarks/steptime_calibration_probe.py \\
        --extra resources/reference/h200_calibration_elementwise \\
        --heldout resources/reference/h200_heldout ... \\
        > benchmarks/results/steptime_elementwise_probe_h200_2026-12-04.txt
"""

from __future__ import annotations

import argparse

from steptime_judging import CALIBRATION, fitted, judged, summary

KEYS = ["r_flop", "r_attention", "bandwidth", "tau_s", "host_forward_s", "host_backward_s"]
KEYS += ["e_flop_j", "e_byte_j", "resid_sd", "left_out_q95"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--extra", nargs="+", required=True, help="calibration folders to add")
    ap.add_argument("--heldout", nargs="+", required=True)
    args = ap.parse_args()
    for extra in ([], args.extra):
        table = fitted([*CALIBRATION, *extra])
        df = judged(args.heldout, table)
        print(f"calibration: the package's folders{' + ' + ', '.join(extra) if extra else ''}")
        print(summary(df).to_string())
        for name, g in df.groupby("set"):
            median, largest = 100 * g.miss.median(), 100 * g.miss.max()
            print(f"  {name}: median {median:.1f} %, largest {largest:.1f} %")
        print(table.set_index("precision")[KEYS].to_string(float_format="%.3g"), flush=True)


if __name__ == "__main__":
    main()
