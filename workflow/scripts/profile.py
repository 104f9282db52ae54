# Adapter: snakemake object -> flopmetrics.jobs.run (one profiling job) -> atomic parquet files.
from flopmetrics.jobs.log import logged
from flopmetrics.jobs.output import write_parquet
from flopmetrics.jobs.run import run
from flopmetrics.jobs.spec import JobSpec

with logged(snakemake.log[0]):
    rows, trace = run(JobSpec.from_params(snakemake.params.job))
    write_parquet(trace, snakemake.output.trace)
    write_parquet(rows, snakemake.output.table)  # last: its presence means the job finished
