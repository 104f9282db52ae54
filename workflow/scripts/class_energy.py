# Adapter: the merged rows of experiment classes -> energy per operation class (Shapley shares)
# per configuration, and each configuration predicted by a per-class fit on the others.
import pandas as pd

from flopmetrics.analysis.class_energy import class_table, validate
from flopmetrics.jobs.log import logged
from flopmetrics.jobs.output import write_csv, write_parquet

with logged(snakemake.log[0]):
    table = class_table(pd.read_parquet(snakemake.input.rows))
    checked = validate(table) if len(table) else pd.DataFrame()
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(table.filter(regex="^(model|precision|batch|seq|train_step_energy|remainder)"))
        print(checked)
    write_parquet(table, snakemake.output.table)
    write_csv(table, snakemake.output.csv)
    write_csv(checked, snakemake.output.validation)
