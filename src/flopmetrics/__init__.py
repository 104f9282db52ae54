"""flopmetrics: FLOPs, Joules and CO2e of ML passes, measured honestly.

The Snakemake workflow in this repository only adapts its ``snakemake`` objects to
the functions of this package; all logic lives here and is unit-tested.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    # lazy: the workflow imports this package at parse time and must not pay for torch there
    if name == "Monitor":
        from .energy.windows import Monitor

        return Monitor
    if name == "measure":
        from .jobs.step import measure

        return measure
    raise AttributeError(f"module 'flopmetrics' has no attribute {name!r}")
