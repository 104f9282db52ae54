# Adapter: measured + reference per-job parquet -> one energy table (atomic).
from flopmetrics.analysis.merge import merge_energy
from flopmetrics.jobs.log import logged
from flopmetrics.jobs.output import write_parquet

with logged(snakemake.log[0]):
    df = merge_energy(list(snakemake.input.measured), list(snakemake.input.reference))
    write_parquet(df, snakemake.output[0])
