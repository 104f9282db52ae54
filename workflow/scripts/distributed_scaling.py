# Adapter: merged energy rows -> flopmetrics.analysis.scaling -> atomic parquet and CSV.
import pandas as pd

from flopmetrics.analysis.scaling import scaling
from flopmetrics.jobs.log import logged
from flopmetrics.jobs.output import write_csv, write_html, write_parquet

with logged(snakemake.log[0]):
    table = scaling(pd.read_parquet(snakemake.input.energy))
    print(table.to_string())
    write_parquet(table, snakemake.output.table)
    write_csv(table, snakemake.output.csv)
    write_html(table, snakemake.output.html, "Scaling from 1 to N GPUs")
