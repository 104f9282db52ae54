# Adapter: the thesis's architecture JSONL -> our schema, gated (atomic parquet).
from flopmetrics.jobs.output import write_parquet
from flopmetrics.jobs.log import logged
from flopmetrics.analysis.thesis import read_architecture

with logged(snakemake.log[0]):
    write_parquet(read_architecture(snakemake.input.architecture), snakemake.output[0])
