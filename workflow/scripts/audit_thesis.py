# Adapter: judged thesis rows -> the audit table (parquet; Markdown to read; HTML; CSV for the
# report).
import pandas as pd

from flopmetrics.analysis.thesis import audit
from flopmetrics.jobs.log import logged
from flopmetrics.jobs.output import write_csv, write_parquet, write_text

with logged(snakemake.log[0]):
    table = audit.summary(pd.read_parquet(snakemake.input.rows))
    write_parquet(table, snakemake.output.table)
    write_text(audit.markdown(table), snakemake.output.markdown)
    write_text(audit.html(table), snakemake.output.html)
    write_csv(table, snakemake.output.csv)
