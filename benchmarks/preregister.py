"""Write down what `flopmetrics estimate` predicts for a configuration file's LLM sweep before
any of it is measured (issue 32): one row per model, precision, batch size, length and pass,
with the estimate's energy per step, its interval, its basis or why it refused, and the
packaged tables' provenance. Committed before the measurement, the file is the prediction the
measurement then judges: benchmarks/heldout.py on the measured rows makes the same estimates
with the tables of that day, and the revisions here say which tables these were.

    python benchmarks/preregister.py config/heldout2_h200.yaml [MORE.yaml ...] --out FILE.csv \\
        [--steptime TABLE.parquet]

``--steptime`` predicts with another step-time table than the packaged one (a probe's, such as
``benchmarks/steptime_memory_speeds_probe.py --table-out``); the file then names it.

Each step is recorded with the installed transformers, whose version the file names: record
with the version the GPU host will measure with (a model's code, and with it its kernels, can
differ between versions).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import pandas as pd
import transformers
import yaml

from flopmetrics.analysis import co2e
from flopmetrics.analysis.step_energy import model_name
from flopmetrics.contracts import packaged
from flopmetrics.contracts.errors import ConfigError
from flopmetrics.pipeline import checks


def sweep(config: dict) -> list[dict]:
    llm = config["llm"]
    axes = (llm["models"], llm["precisions"], llm["batch_size"], llm["seq_len"], llm["passes"])
    return [
        {
            "name": "preregistered",
            "model": model,
            "tokens": batch * seq,  # one step
            "batch_size": batch,
            "seq_len": seq,
            "target": target,
            "precision": precision,
            "pass": pass_name,
            "launch": llm.get("launch"),
        }
        for target in llm["targets"]
        for model, precision, batch, seq, pass_name in itertools.product(*axes)
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", type=Path, nargs="+")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steptime", type=Path, help="a step-time table in place of the packaged")
    args = ap.parse_args()
    configs = {c: yaml.safe_load(c.read_text()) for c in args.config}
    for path, config in configs.items():
        # a set the pipeline would refuse (a model without the attention asked for) must not
        # be pre-registered: its predictions would be of steps that are never measured
        try:
            checks.check_models(config, report=lambda line: None)
        except ConfigError as err:
            sys.exit(f"{path}: {err}")
    workloads = [w for config in configs.values() for w in sweep(config)]
    calibration = pd.read_parquet(packaged.table_path())
    steptime = pd.read_parquet(args.steptime or packaged.steptime_path())
    table = co2e.estimate(workloads, calibration, 1.0, 0.0, steptime_table=steptime)
    table["model"] = [model_name(w["model"]) for w in workloads]
    info = packaged.provenance()
    table["calibration_revision"] = info.get("git_revision", "")
    table["steptime_revision"] = (
        f"{args.steptime.name}, not packaged"
        if args.steptime
        else info.get("steptime_git_revision", "")
    )
    table["transformers"] = transformers.__version__
    keep = ["model", "precision", "batch_size", "seq_len", "pass", "status", "basis"]
    keep += ["energy_j", "energy_j_lo", "energy_j_hi"]
    keep += ["calibration_revision", "steptime_revision", "transformers"]
    table[keep].to_csv(args.out, index=False)
    print(table[keep[:-3]].to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
