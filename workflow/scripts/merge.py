# Adapter: snakemake object -> flopmetrics.analysis.merge.merge_parquets -> atomic parquet.
from flopmetrics.analysis.merge import merge_parquets
from flopmetrics.jobs.log import logged
from flopmetrics.jobs.output import write_parquet
from flopmetrics.pipeline.sweeps import expected_configs

with logged(snakemake.log[0]):
    expected = expected_configs(snakemake.params.sweep, "mlp")
    write_parquet(merge_parquets(list(snakemake.input.tables), expected), snakemake.output[0])
