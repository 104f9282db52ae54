# Adapter: measured and committed ncu runs -> classified launches, and the GPU-adjusted formulas
# judged out of fold, and from the kernel choice where a table holds it (atomic parquets).
from pathlib import Path

import pandas as pd

from flopmetrics.jobs.log import logged
from flopmetrics.jobs.output import write_parquet
from flopmetrics.ncu.choice import tables_by_gpu
from flopmetrics.ncu.classify import classify
from flopmetrics.ncu.parse import read_runs
from flopmetrics.ncu.validation import held_out_errors, kernel_choice_errors

with logged(snakemake.log[0]):
    parts = [read_runs(d).assign(source="reference") for d in snakemake.input.reference]
    for folder in sorted({str(Path(p).parent) for p in snakemake.input.measured}):
        parts.append(read_runs(folder).assign(source="measured"))
    launches = classify(pd.concat(parts, ignore_index=True)) if parts else pd.DataFrame()
    print(f"{len(launches)} launches from {len(parts)} folders")
    write_parquet(launches, snakemake.output.launches)
    folds, seed = snakemake.params.folds, snakemake.params.seed
    gap = held_out_errors(launches, folds, seed)
    if len(launches) and snakemake.input.choice:
        chosen = kernel_choice_errors(launches, tables_by_gpu(snakemake.input.choice), folds, seed)
        print(f"{len(chosen)} passes predicted from the kernel choice")
        print(f"{chosen.attrs['refused']} passes whose calls no table holds: not predicted so")
        gap = pd.concat([gap, chosen[gap.columns]], ignore_index=True)
    write_parquet(gap, snakemake.output.gap)
