# Adapter: snakemake object -> flopmetrics.analysis.merge.merge_parquets -> atomic parquet.
from flopmetrics.analysis.merge import merge_parquets
from flopmetrics.jobs.log import logged
from flopmetrics.jobs.output import write_parquet

with logged(snakemake.log[0]):
    write_parquet(merge_parquets(list(snakemake.input.tables)), snakemake.output[0])
