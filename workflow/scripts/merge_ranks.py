# Adapter: snakemake object -> flopmetrics.analysis.merge.merge_energy -> atomic parquet: every
# rank's rows of every distributed job, measured and reference, gated again.
from flopmetrics.analysis.merge import merge_energy
from flopmetrics.jobs.log import logged
from flopmetrics.jobs.output import write_parquet

with logged(snakemake.log[0]):
    write_parquet(
        merge_energy(snakemake.input.measured, snakemake.input.reference), snakemake.output[0]
    )
