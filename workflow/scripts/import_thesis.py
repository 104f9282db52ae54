# Adapter: every thesis result file under thesis.architecture_dir -> judged rows and the
# baseline readings (atomic parquets); the import log, a line per file, goes to the job's log.
from flopmetrics.analysis.thesis import read_architecture
from flopmetrics.analysis.thesis.readings import readings
from flopmetrics.jobs.log import logged
from flopmetrics.jobs.output import write_parquet

with logged(snakemake.log[0]):
    rows, log = read_architecture(snakemake.input.architecture)
    print("\n".join(log.lines()))
    write_parquet(rows, snakemake.output.rows)
    write_parquet(readings(rows, snakemake.input.architecture), snakemake.output.readings)
