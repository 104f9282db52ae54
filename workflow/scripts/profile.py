# Adapter: snakemake object -> flopmetrics.jobs.run (one profiling job, one or more sizes) ->
# atomic parquet files, written as each size finishes.
from flopmetrics.jobs.log import logged
from flopmetrics.jobs.output import write_parquet
from flopmetrics.jobs.run import run_batch
from flopmetrics.jobs.spec import JobSpec

specs = JobSpec.batch(snakemake.params.job)
assert len(specs) == len(snakemake.output.tables) == len(snakemake.output.traces)


def done(i, rows, trace):
    # the params' workloads and the rule's outputs are expanded in the same order (jobs.params.job_params)
    write_parquet(trace, snakemake.output.traces[i])
    write_parquet(rows, snakemake.output.tables[i])  # last: its presence means it finished


with logged(snakemake.log[0]):
    run_batch(specs, done=done)
