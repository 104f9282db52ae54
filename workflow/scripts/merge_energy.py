# Adapter: measured + reference per-job parquet -> one energy table (atomic).
from flopmetrics.analysis.merge import merge_energy
from flopmetrics.jobs.log import logged
from flopmetrics.jobs.output import write_parquet
from flopmetrics.pipeline.sweeps import expected_configs

with logged(snakemake.log[0]):
    expected = expected_configs(snakemake.params.sweep, "energy")
    measured, reference = list(snakemake.input.measured), list(snakemake.input.reference)
    write_parquet(merge_energy(measured, reference, expected), snakemake.output[0])
