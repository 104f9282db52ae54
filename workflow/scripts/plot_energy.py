# Adapter: snakemake object -> one flopmetrics.plots_energy figure -> atomic image file.
import pandas as pd

from flopmetrics import plots_energy as pe
from flopmetrics.io import save_figure
from flopmetrics.jobs import logged

with logged(snakemake.log[0]):
    inp, style, figure = snakemake.input, dict(snakemake.params.style), snakemake.params.figure
    if figure == "power_trace":
        trace = pd.read_parquet(inp.trace) if len(inp) else pd.DataFrame()
        fig = pe.power_trace(trace, style, title=str(inp.trace) if len(inp) else "")
    elif figure == "calibration_parity":
        fig = pe.calibration_parity(pd.read_parquet(inp.predictions), pd.read_parquet(inp.fits), style)
    elif figure == "co2e":
        fig = pe.co2e_plot(pd.read_parquet(inp.co2e), style)
    elif figure == "thesis_vs_ours":
        fig = pe.thesis_vs_ours(pd.read_parquet(inp.thesis), pd.read_parquet(inp.energy), style)
    else:
        fig = {"energy_efficiency": pe.efficiency_bars, "forward_vs_backward": pe.forward_vs_backward,
               "efficiency_vs_seq_len": pe.efficiency_vs_seq_len}[figure](pd.read_parquet(inp.energy), style)
    save_figure(fig, snakemake.output[0], dpi=style["dpi"], bbox_inches="tight")
