# Adapter: one GPU target and precision under Nsight Compute -> ncu's raw CSV (gzip) and the
# capture's manifest, both written atomically.
import gzip
import json
import os
import shutil
import tempfile

from flopmetrics.energy import datasheet
from flopmetrics.jobs.log import logged
from flopmetrics.jobs.output import atomic_path
from flopmetrics.jobs.targets import resolve_target
from flopmetrics.ncu.metrics import run

with logged(snakemake.log[0]):
    device, label = resolve_target(snakemake.wildcards.target)
    if device.startswith("cuda:"):
        os.environ["CUDA_VISIBLE_DEVICES"] = device.split(":")[1]  # the capture uses "cuda"
    with tempfile.TemporaryDirectory() as tmp:
        argv = ["python3", "-m", "flopmetrics.ncu.capture", "--precision", snakemake.wildcards.precision,
                "--manifest", f"{tmp}/manifest.json",
                "--gemm", *[",".join(map(str, g)) for g in snakemake.params.gemm],
                "--mlp", *[",".join(map(str, c)) for c in snakemake.params.mlp],
                "--llm", *snakemake.params.llm]
        run(f"{tmp}/report.ncu-rep", argv, f"{tmp}/report.csv")
        manifest = json.loads(open(f"{tmp}/manifest.json").read())
        if label:
            datasheet.check_label_matches(label, manifest["device"])
        with atomic_path(snakemake.output.table) as out, open(f"{tmp}/report.csv", "rb") as src, \
                gzip.open(out, "wb") as dst:
            shutil.copyfileobj(src, dst)
        with atomic_path(snakemake.output.manifest) as out:
            shutil.copy(f"{tmp}/manifest.json", out)
