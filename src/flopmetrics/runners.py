"""Job entry points for the LLM and matmul experiments (the MLP's is in mlp_job)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from . import job as job_runner
from .models import resolve
from .targets import resolve_target
from .workloads import CausalLMWorkload, MatmulWorkload


def _settings(p: dict) -> job_runner.EnergySettings:
    e = p["energy"]
    return job_runner.EnergySettings(meter=e["meter"], sampler_hz=e["sampler_hz"], guard_s=e["guard_s"],
                                     idle_baseline_s=e["idle_baseline_s"], repeats=p["repeats"],
                                     min_window_s=p["min_window_s"], warmup_iterations=p["warmup_iterations"])


def run_llm(p: dict, progress=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``p``: target, model (preset/path/mapping), precision, batch_size, seq_len, passes,
    attn_implementation, attention_flops, profiler_flops, repeats, min_window_s,
    warmup_iterations, seed, energy{...}."""
    device, expected = resolve_target(p["target"], p.get("run_on_cpu", False))
    name, fields = resolve(p["model"])
    describe = {"target": p["target"], "model": name, "batch_size": p["batch_size"], "seq_len": p["seq_len"]}
    return job_runner.run(
        lambda: CausalLMWorkload(device, p["precision"], name, fields, p["batch_size"], p["seq_len"],
                                 p["attn_implementation"], p["seed"], passes=p["passes"]),
        device=device, settings=_settings(p), params={**p, "job_name": f"llm {p['target']} {name} {p['precision']} "
                                                       f"b={p['batch_size']} s={p['seq_len']}"},
        describe=describe, expected_gpu=expected, attention_convention=p["attention_flops"],
        profiler=p["profiler_flops"], progress=progress)


def run_matmul(p: dict, progress=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    device, expected = resolve_target(p["target"], p.get("run_on_cpu", False))
    describe = {"target": p["target"], "size": p["size"]}
    return job_runner.run(
        lambda: MatmulWorkload(device, p["precision"], p["size"], p["seed"]),
        device=device, settings=_settings(p), params={**p, "job_name": f"matmul {p['target']} {p['precision']} "
                                                       f"N={p['size']}"},
        describe=describe, expected_gpu=expected, profiler=False, progress=progress)
