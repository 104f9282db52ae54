"""One profiling job: its parameters (spec), its passes and windows, its rows, provenance and
atomic output."""
