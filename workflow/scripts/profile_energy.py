# Adapter: snakemake object -> flopmetrics.runners (LLM or matmul) -> atomic parquet files.
from flopmetrics import runners
from flopmetrics.io import write_parquet
from flopmetrics.jobs import logged

run = {"profile_llm": runners.run_llm, "profile_matmul": runners.run_matmul}[snakemake.rule]
with logged(snakemake.log[0]):
    rows, trace = run(dict(snakemake.params.job))
    write_parquet(trace, snakemake.output.trace)
    write_parquet(rows, snakemake.output.table)
