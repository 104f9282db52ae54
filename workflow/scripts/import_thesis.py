# Adapter: the thesis's architecture JSONL -> our schema, gated (atomic parquet).
from flopmetrics.io import write_parquet
from flopmetrics.jobs import logged
from flopmetrics.thesis import read_architecture

with logged(snakemake.log[0]):
    write_parquet(read_architecture(snakemake.input[0]), snakemake.output[0])
