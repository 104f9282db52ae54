# Adapter: per-job rows of several cards -> the card-to-card spread of each configuration.
import pandas as pd

from flopmetrics.analysis import spread
from flopmetrics.analysis.merge import read_job_table
from flopmetrics.jobs.log import logged
from flopmetrics.jobs.output import write_csv, write_html, write_parquet

with logged(snakemake.log[0]):
    frames = [read_job_table(f) for f in snakemake.input.rows]
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    table = spread.card_spread(rows)
    measured = table[table["cards"] >= 2]
    print(f"{len(table)} configurations, {len(measured)} measured on 2 or more cards")
    print(measured.drop(columns="gpu_uuids").to_string())
    write_parquet(table, snakemake.output.table)
    write_csv(table, snakemake.output.csv)
    write_html(table, snakemake.output.html, "Card-to-card spread")
