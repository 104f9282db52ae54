"""Probe (issue 32): does a host-bound step's time follow its operations' classes?

The step-time model charges the host a fixed time per kernel-launching operation in each phase
(forward, backward, optimizer), fitted on Llama-3.2-1B. On the held-out sets' steps bound by
the host it misses by up to 52 % in both directions. If the host's cost depended on what an
operation is (a GEMM's cuBLAS call against an elementwise launch), a cost per phase and class
fitted across families would carry to a family it did not see. Here every measured bf16 eager
forward pass and train step of the reference and held-out folders that the packaged model calls
host-bound (its host time >= 1.3x its GPU time) is fitted by non-negative least squares on the
relative times, each model left out in turn (scipy's ``nnls``):

- per phase: the model's own form (3 costs), fitted across families;
- per phase and class (up to 15 costs);
- per phase, matrix products apart from the rest (5 costs).

    python benchmarks/host_class_probe.py
"""

import numpy as np
import pandas as pd
from scipy.optimize import nnls

from flopmetrics.analysis import steptime
from flopmetrics.analysis.steptime_rows import ops_of, read_rows, rows_of
from flopmetrics.contracts import packaged

DIRS = [
    "resources/reference/h200",
    "resources/reference/h200_calibration_batch",
    *(f"resources/reference/h200_heldout{s}" for s in ("", "2", "3", "4", "5")),
]
HOST_BOUND = 1.3  # the packaged model's host time over its GPU time


def counts(r: dict, p: dict) -> dict:
    """One row's measured time, the packaged model's host and GPU times, and its operations
    counted per phase and class."""
    ops = r["ops"]
    gpu = steptime.gpu_time(steptime.filled(p), ops)
    host = steptime.host_time(p, ops)
    out = {"model": r["row"]["model"], "time_s": r["time_s"], "host_s": host, "gpu_s": gpu}
    for ph, _ in steptime.HOSTS:
        mine = ops["phase"] == ph
        out[f"n_{ph}"] = int(mine.sum())
        out[f"{ph}_mm"] = int(np.sum(mine & np.isin(ops["cls"], ["gemm", "attention"])))
        out[f"{ph}_rest"] = out[f"n_{ph}"] - out[f"{ph}_mm"]
        for cls in np.unique(ops["cls"]):
            out[f"{ph}_{cls}"] = int(np.sum(mine & (ops["cls"] == cls)))
    return out


def left_one_model_out(rows: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Each row's relative miss from costs fitted on the other models' rows."""
    misses = []
    for model in rows["model"].unique():
        fit, held = rows[rows["model"] != model], rows[rows["model"] == model]
        costs, _ = nnls(fit[columns].to_numpy() / fit[["time_s"]].to_numpy(), np.ones(len(fit)))
        misses += list(held[columns].to_numpy() @ costs / held["time_s"].to_numpy() - 1)
    return np.abs(misses)


def main() -> None:
    table = pd.read_parquet(packaged.steptime_path())
    c = table[table["precision"] == "bf16"].iloc[0].to_dict()
    p = {k: c[k] for k in steptime.PARAMETERS}
    rows = read_rows(DIRS)
    rows = rows[rows["model"].notna() & (rows["precision"] == "bf16")]
    rows = rows[rows["pass"].isin(["forward", "train_step"])]
    df = pd.DataFrame([counts(r, p) for r in rows_of(rows, ops_of)]).fillna(0)
    bound = df[df["host_s"] >= HOST_BOUND * df["gpu_s"]]
    print(f"{len(bound)} host-bound steps of {bound['model'].nunique()} models (of {len(df)})")
    classes = [k for k in bound if k[:2] in ("f_", "b_", "o_") and k[2:] not in ("mm", "rest")]
    forms = {
        "packaged (Llama-3.2-1B only)": np.abs(bound["host_s"] / bound["time_s"] - 1).to_numpy(),
        "per phase, across families": left_one_model_out(bound, ["n_f", "n_b", "n_o"]),
        "per phase and class": left_one_model_out(bound, [k for k in classes if bound[k].any()]),
        "per phase, products apart": left_one_model_out(
            bound, ["f_mm", "f_rest", "b_mm", "b_rest", "n_o"]
        ),
    }
    for name, miss in forms.items():
        print(
            f"{name:30s} median {100 * np.median(miss):5.1f} %  largest {100 * miss.max():5.1f} %"
            f"  above 10 %: {(miss > 0.1).sum()} of {len(miss)}"
        )


if __name__ == "__main__":
    main()
