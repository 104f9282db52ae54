# Adapter: calibration, measured rows and declared workloads -> energy and CO2e table.
import pandas as pd

from flopmetrics.analysis import co2e, grid
from flopmetrics.contracts import packaged
from flopmetrics.jobs.log import logged
from flopmetrics.jobs.output import write_csv, write_html, write_parquet

with logged(snakemake.log[0]):
    s = snakemake.params.settings
    g = grid.resolve(s)
    serving = "serving" in snakemake.input.keys()
    # the pipeline's step-time model where it fitted one, else the packaged fit
    steptime = snakemake.input.get("steptime") or packaged.steptime_path()
    measured = [snakemake.input.energy, *([snakemake.input.inference] if serving else [])]
    table = co2e.estimate(
        s["workloads"],
        pd.read_parquet(snakemake.input.fits),
        s["pue"],
        g.g_per_kwh,
        pd.concat([pd.read_parquet(f) for f in measured], ignore_index=True),
        g.source,
        pd.read_parquet(snakemake.input.serving) if serving else None,
        pd.read_parquet(steptime),
    )
    table["pue_source"] = s["pue_source"]
    print(table.to_string())
    write_parquet(table, snakemake.output.table)
    write_csv(table, snakemake.output.csv)
    write_html(table, snakemake.output.html, "Energy and CO2e of the declared workloads")
