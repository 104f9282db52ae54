# Adapter: causal-LM rows of calibration.steptime_dirs (fitted) and steptime_heldout_dirs (judged;
# fitted too, each left out in turn, with steptime_pool_heldout) -> the step-time model per GPU
# and precision, and each held-out step judged.
import pandas as pd

from flopmetrics.analysis import steptime_rows
from flopmetrics.analysis.steptime_misses import STEP_COLUMNS
from flopmetrics.jobs.log import logged
from flopmetrics.jobs.output import write_csv, write_parquet
from flopmetrics.jobs.provenance import git_revision

with logged(snakemake.log[0]):
    steps = [pd.DataFrame(columns=["folder", "gpu_label", *STEP_COLUMNS])]
    table = steptime_rows.calibrate_dirs(
        list(snakemake.params.dirs),
        heldout=list(snakemake.params.heldout),
        pool=bool(snakemake.params.pool),
        steps=steps,
    ).assign(git_revision=git_revision()[0])  # the code that fitted it, which packaging names
    print(table.T.to_string())
    write_parquet(table, snakemake.output.table)
    write_csv(table, snakemake.output.csv)
    write_csv(pd.concat(steps, ignore_index=True)[steps[0].columns], snakemake.output.steps)
