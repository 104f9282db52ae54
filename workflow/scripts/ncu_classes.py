# Adapter: committed class captures of a causal LM's train step -> executed FLOPs per class.
import pandas as pd

from flopmetrics.jobs.log import logged
from flopmetrics.jobs.output import write_csv, write_parquet
from flopmetrics.ncu.classes import read_class_runs

with logged(snakemake.log[0]):
    table = pd.concat([read_class_runs(d) for d in snakemake.input.runs], ignore_index=True)
    print(table.drop(columns=["gpu_uuid", "torch"]).to_string())
    write_parquet(table, snakemake.output.table)
    write_csv(table, snakemake.output.csv)
