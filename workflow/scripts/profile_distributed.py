# Adapter: snakemake object -> flopmetrics.distributed.launch.job (one node, N ranks through
# torchrun) -> atomic parquet files: the ranks' traces, windows and rows, then the node's rows.
from flopmetrics.distributed.launch import job
from flopmetrics.jobs.log import logged
from flopmetrics.jobs.params import TIMEOUTS

with logged(snakemake.log[0]):
    timeouts = {k: snakemake.resources[k] for k in TIMEOUTS}
    job(snakemake.params.job, dict(snakemake.output.items()), timeouts)
