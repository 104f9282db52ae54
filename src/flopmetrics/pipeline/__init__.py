"""Workflow glue: config validation, sweep expansion into jobs, output paths, Slurm mapping."""
