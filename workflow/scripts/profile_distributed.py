# Adapter: snakemake object -> flopmetrics.distributed.launch.job (one node, N ranks through
# torchrun) -> atomic parquet files: the ranks' traces, windows and rows, then the node's rows.
from flopmetrics.distributed.launch import TIMEOUTS, job
from flopmetrics.jobs.log import logged

with logged(snakemake.log[0]):
    out = snakemake.output
    timeouts = {k: snakemake.resources[k] for k in TIMEOUTS}
    job(snakemake.params.job, out.node, out.ranks, out.windows, out.traces, timeouts)
