"""Workloads: what a job runs (the MLP, a causal LM, a matmul). Each module's ``build(device,
precision, workload, seed, previous)`` makes one configuration's workload; the experiment
registry (:mod:`flopmetrics.contracts.experiments`) names the builder of each experiment."""
