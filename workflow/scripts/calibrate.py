# Adapter: energy table -> calibration fits + leave-one-config-out predictions.
import pandas as pd

from flopmetrics.analysis import calibration
from flopmetrics.jobs.log import logged
from flopmetrics.jobs.output import write_csv, write_html, write_parquet

with logged(snakemake.log[0]):
    s = snakemake.params.settings
    df = calibration.usable(
        pd.read_parquet(snakemake.input.energy), s["experiments"], s["passes"], s["require_gates"]
    )
    fits, predictions = calibration.calibrate(
        df,
        bootstrap=s["bootstrap"],
        seed=s["seed"],
        spread=pd.read_parquet(snakemake.input.spread),
        min_cards=s["min_cards"],
    )
    print(fits.to_string())
    write_parquet(predictions, snakemake.output.predictions)
    write_parquet(fits, snakemake.output.fits)
    write_csv(fits, snakemake.output.table)
    write_html(
        fits, snakemake.output.html, "Calibration per (GPU, precision, pass)", ("fit_points",)
    )
