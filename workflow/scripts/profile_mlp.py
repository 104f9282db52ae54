# Adapter: snakemake object -> flopmetrics.mlp_job -> atomic parquet (rows + power trace).
from flopmetrics.io import write_parquet
from flopmetrics.jobs import logged
from flopmetrics.mlp_job import MLPJob, run_with_trace

with logged(snakemake.log[0]):
    rows, trace = run_with_trace(MLPJob(**snakemake.params.job))
    write_parquet(trace, snakemake.output.trace)
    write_parquet(rows, snakemake.output.table)  # last: its presence means the job finished
