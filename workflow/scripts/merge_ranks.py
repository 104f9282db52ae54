# Adapter: snakemake object -> flopmetrics.analysis.merge.merge_energy -> atomic parquet: every
# rank's rows of every distributed job, measured and reference, gated again.
from flopmetrics.jobs.output import write_parquet
from flopmetrics.jobs.log import logged
from flopmetrics.analysis.merge import merge_energy

with logged(snakemake.log[0]):
    write_parquet(
        merge_energy(snakemake.input.measured, snakemake.input.reference), snakemake.output[0]
    )
