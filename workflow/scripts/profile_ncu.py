# Adapter: one GPU target and precision under Nsight Compute -> ncu's raw CSV (gzip) and the
# capture's manifest, both written atomically.
import gzip
import json
import os
import shutil
import tempfile
from pathlib import Path

from flopmetrics.energy import datasheet
from flopmetrics.jobs.log import logged
from flopmetrics.jobs.output import atomic_path
from flopmetrics.jobs.targets import resolve_target
from flopmetrics.ncu.metrics import capture_command, run

with logged(snakemake.log[0]):
    device, label = resolve_target(snakemake.wildcards.target)
    if device.startswith("cuda:"):
        os.environ["CUDA_VISIBLE_DEVICES"] = device.split(":")[1]  # the capture uses "cuda"
    with tempfile.TemporaryDirectory() as tmp:
        argv = capture_command(
            snakemake.wildcards.precision,
            f"{tmp}/manifest.json",
            snakemake.params.job["mlp"],
            snakemake.params.job["gemm"],
            snakemake.params.job["llm"],
        )
        run(f"{tmp}/report.ncu-rep", argv, f"{tmp}/report.csv")
        manifest = json.loads(Path(f"{tmp}/manifest.json").read_text())
        if label:
            datasheet.check_label_matches(label, manifest["device"])
        with (
            atomic_path(snakemake.output.table) as out,
            open(f"{tmp}/report.csv", "rb") as src,
            gzip.open(out, "wb") as dst,
        ):
            shutil.copyfileobj(src, dst)
        with atomic_path(snakemake.output.manifest) as out:
            shutil.copy(f"{tmp}/manifest.json", out)
