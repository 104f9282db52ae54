# Adapter: the merged tables -> what the sweep covered (a CSV the report shows).
import pandas as pd

from flopmetrics.analysis.coverage import coverage
from flopmetrics.jobs.log import logged
from flopmetrics.jobs.output import write_csv, write_html

with logged(snakemake.log[0]):
    tables = {
        name: pd.read_parquet(path) for name, path in snakemake.input.items() if name != "code"
    }
    table = coverage(tables)
    print(table.to_string(index=False))
    write_csv(table, snakemake.output.csv)
    write_html(table, snakemake.output.html, "What the sweeps covered")
