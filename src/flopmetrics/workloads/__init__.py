"""Workloads: what a job runs (the MLP, a causal LM, a matmul), built from a job's spec."""

from __future__ import annotations

from ..flops.models import resolve
from .causal_lm import CausalLMWorkload
from .matmul import MatmulWorkload
from .mlp import MLPWorkload


def build(experiment: str, device: str, precision: str, workload: dict, seed: int, previous=None):
    """The workload of one configuration: ``workload`` is the spec's experiment-specific part.
    ``previous``: the workload this job built before; a causal LM that differs only in batch size
    and sequence length is resized rather than built again."""
    if experiment == "mlp":
        return MLPWorkload(
            device,
            precision,
            workload["n"],
            workload["d"],
            workload["m"],
            seed,
            passes=("forward", "forward_train", "forward_backward"),
        )
    if experiment == "llm":
        name, fields = resolve(workload["model"])
        same = (
            name,
            fields,
            precision,
            workload["attn_implementation"],
            seed,
            frozenset(workload["passes"]),
            workload["attention_flops"],
        )
        if (
            isinstance(previous, CausalLMWorkload)
            and previous.device == device
            and same
            == (
                previous.model_name,
                previous.model_fields,
                previous.precision_mode,
                previous.attn_implementation,
                previous.seed,
                frozenset(previous.passes),
                previous.attention_convention,
            )
        ):
            return previous.resized(workload["batch_size"], workload["seq_len"])
        previous = (
            None  # the last reference (the job hands it over): freed before the next model is built
        )
        return CausalLMWorkload(
            device,
            precision,
            name,
            fields,
            workload["batch_size"],
            workload["seq_len"],
            workload["attn_implementation"],
            seed,
            passes=workload["passes"],
            attention_convention=workload["attention_flops"],
        )
    if experiment == "matmul":
        return MatmulWorkload(device, precision, workload["size"], seed)
    raise ValueError(f"unknown experiment {experiment!r}")
