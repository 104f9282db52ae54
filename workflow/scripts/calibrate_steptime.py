# Adapter: causal-LM rows of calibration.steptime_dirs (fitted) and steptime_heldout_dirs (judged;
# fitted too, each left out in turn, with steptime_pool_heldout) -> the step-time model per GPU
# and precision.
from flopmetrics.analysis import steptime_rows
from flopmetrics.jobs.log import logged
from flopmetrics.jobs.output import write_csv, write_parquet

with logged(snakemake.log[0]):
    table = steptime_rows.calibrate_dirs(
        list(snakemake.params.dirs),
        heldout=list(snakemake.params.heldout),
        pool=bool(snakemake.params.pool),
    )
    print(table.T.to_string())
    write_parquet(table, snakemake.output.table)
    write_csv(table, snakemake.output.csv)
