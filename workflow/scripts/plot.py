# Adapter: snakemake object -> one registered figure (flopmetrics.figures.registry) -> image file.
from flopmetrics.figures.registry import render
from flopmetrics.jobs.log import logged

with logged(snakemake.log[0]):
    inputs = {name: path for name, path in snakemake.input.items() if name != "code"}
    render(
        snakemake.params.figure,
        inputs,
        dict(snakemake.params.style),
        dict(snakemake.wildcards),
        snakemake.output[0],
    )
