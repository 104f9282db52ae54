# Adapter: snakemake object -> flopmetrics.mlp_job.run -> atomic parquet.
from flopmetrics.mlp_job import MLPJob, run
from flopmetrics.io import write_parquet
from flopmetrics.jobs import logged

with logged(snakemake.log[0]):
    write_parquet(run(MLPJob(**snakemake.params.job)), snakemake.output[0])
