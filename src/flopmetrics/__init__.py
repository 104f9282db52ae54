"""flopmetrics: FLOPs, Joules and CO2e of ML passes, measured honestly.

The Snakemake workflow in this repository only adapts its ``snakemake`` objects to
the functions of this package; all logic lives here and is unit-tested.
"""

__version__ = "0.1.0"
