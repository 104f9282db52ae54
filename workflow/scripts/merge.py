# Adapter: snakemake object -> flopmetrics.merge.merge_parquets -> atomic parquet.
from flopmetrics.io import write_parquet
from flopmetrics.jobs import logged
from flopmetrics.merge import merge_parquets

with logged(snakemake.log[0]):
    write_parquet(merge_parquets(list(snakemake.input)), snakemake.output[0])
