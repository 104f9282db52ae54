# Adapter: snakemake object -> one flopmetrics.plots figure -> atomic image file.
import pandas as pd

from flopmetrics import plots
from flopmetrics.io import save_figure
from flopmetrics.jobs import logged

with logged(snakemake.log[0]):
    df = pd.read_parquet(snakemake.input[0])
    style = dict(snakemake.params.style)
    figure = snakemake.params.figure
    if figure == "pct_diff_heatmap":
        fig = plots.pct_diff_heatmap(df, snakemake.wildcards.mlp_pass, style)
    else:
        fig = getattr(plots, figure)(df, style)
    save_figure(fig, snakemake.output[0], dpi=style["dpi"], bbox_inches="tight")
