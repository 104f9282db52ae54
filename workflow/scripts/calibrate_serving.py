# Adapter: measured serving rows -> the serving model's coefficients per (GPU, precision, pass).
import pandas as pd

from flopmetrics.analysis import serving
from flopmetrics.jobs.log import logged
from flopmetrics.jobs.output import write_csv, write_parquet

with logged(snakemake.log[0]):
    table = serving.calibrate(pd.read_parquet(snakemake.input.rows))
    print(table.to_string())
    write_parquet(table, snakemake.output.table)
    write_csv(table, snakemake.output.csv)
