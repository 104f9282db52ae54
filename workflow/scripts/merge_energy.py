# Adapter: measured + reference per-job parquet -> one merged table (energy, inference;
# atomic), the SEMs of derived rows scaled to the scatter of the same work.
from flopmetrics.analysis.merge import merge_energy
from flopmetrics.analysis.scatter import with_scatter
from flopmetrics.jobs.log import logged
from flopmetrics.jobs.output import write_parquet
from flopmetrics.pipeline.sweeps import expected_configs

with logged(snakemake.log[0]):
    expected = expected_configs(snakemake.params.sweep, snakemake.params.table)
    measured, reference = list(snakemake.input.measured), list(snakemake.input.reference)
    merged = with_scatter(merge_energy(measured, reference, expected))
    write_parquet(merged, snakemake.output[0])
