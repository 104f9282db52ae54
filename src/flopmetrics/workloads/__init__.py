"""Workloads: what a job runs (the MLP, a causal LM, a matmul), built from a job's spec."""

from __future__ import annotations


def build(experiment: str, device: str, precision: str, workload: dict, seed: int):
    """The workload of one job: ``workload`` is the spec's experiment-specific part."""
    if experiment == "mlp":
        from .mlp import MLPWorkload

        return MLPWorkload(device, precision, workload["n"], workload["d"], workload["m"], seed,
                           passes=("forward", "forward_train", "forward_backward"))
    if experiment == "llm":
        from .causal_lm import CausalLMWorkload
        from .models import resolve

        name, fields = resolve(workload["model"])
        return CausalLMWorkload(device, precision, name, fields, workload["batch_size"], workload["seq_len"],
                                workload["attn_implementation"], seed, passes=workload["passes"],
                                attention_convention=workload["attention_flops"])
    if experiment == "matmul":
        from .matmul import MatmulWorkload

        return MatmulWorkload(device, precision, workload["size"], seed)
    raise ValueError(f"unknown experiment {experiment!r}")
