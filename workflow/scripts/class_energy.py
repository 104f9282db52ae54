# Adapter: the merged rows of experiment classes -> energy per operation class (Shapley shares)
# per configuration, and each configuration predicted by a per-class fit on the others.
import pandas as pd

from flopmetrics.analysis.class_energy import class_table, validate
from flopmetrics.jobs.log import logged
from flopmetrics.jobs.output import write_csv, write_html, write_parquet

with logged(snakemake.log[0]):
    table = class_table(pd.read_parquet(snakemake.input.rows))
    checked = validate(table) if len(table) else pd.DataFrame()
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(table.filter(regex="^(model|precision|batch|seq|train_step_energy|remainder)"))
        print(checked)
    write_parquet(table, snakemake.output.table)
    write_csv(table, snakemake.output.csv)
    write_csv(checked, snakemake.output.validation)
    # in the report: each configuration's step, each class's share with its standard error and
    # what the shares leave unexplained (every column is in the CSV)
    shown = table.filter(
        regex=r"^(model|precision|batch_size|seq_len|gpu_uuid|train_step_energy_j"
        r"|energy_j_[a-z]+(_sem|_last)?|flops_per_j_[a-z]+|interaction_j|remainder_pct)$"
    )
    write_html(shown, snakemake.output.html, "Energy per operation class")
