"""The thesis's two record schemas, checked key by key, turned into rows of ours.

``results_optimized`` records carry ``gpu_config``, ``precision``, ``config_name``,
``batch_size`` and ``input_length``; ``results_baseline`` records carry none of them (GPU and
precision are only in the file name, and the profiling script loaded the model in bf16 whatever
that name says). Both carry ``{forward,backward}_{energy_sum,energy_mean,energy_sem,flops_sum,
gpu_time_mean,gpu_time_sem,...}``: J, FLOPs of one batch, microseconds; a forward-only record
has no backward keys.
"""

from __future__ import annotations

import math
import re

from . import names

PASS_KEYS = (
    "energy_sum",
    "energy_mean",
    "energy_sem",
    "flops_sum",
    "gpu_time_mean",
    "gpu_time_sem",
)
OPTIMIZED_KEYS = ("gpu_config", "precision", "config_name", "batch_size", "input_length")
PRECISIONS = ("fp32", "fp16", "bf16")
# what the baseline's profiling script really ran, whatever the file name says
BASELINE_RAN = "bf16"

FILE_NAMES = {
    "all_configs": re.compile(
        r"(?P<gpu>[a-z0-9-]+)_(?P<precision>[a-z0-9]+)_llama3\.2_1b_all_configs_results\.jsonl$"
    ),
    "per_config": re.compile(
        r"(?P<gpu>[a-z0-9-]+)_(?P<precision>[a-z0-9]+)_llama3\.2_1b_(?P<config>[a-z]+)_result\.jsonl$"
    ),
    "baseline": re.compile(
        r"(?P<gpu>[a-z0-9-]+)_(?P<precision>[a-z0-9]+)_llama3\.2_1b_energy_results\.jsonl$"
    ),
}


class RecordError(ValueError):
    """A record that cannot be imported; the message says why (the caller adds file and line)."""


def _number(rec: dict, key: str, positive: bool = True) -> float:
    if key not in rec:
        raise RecordError(f"missing key {key!r}")
    value = rec[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RecordError(f"key {key!r}: expected a number, got {value!r}")
    if (positive and value <= 0) or value < 0:
        raise RecordError(
            f"key {key!r}: expected a {'positive' if positive else 'non-negative'} number, "
            f"got {value!r}"
        )
    return float(value)


def passes(rec: dict) -> list[str]:
    """The passes a record holds: forward always, backward where any backward key is present."""
    present = ["forward"]
    if any(k.startswith("backward_") for k in rec):
        present.append("backward")
    return present


def check(rec: object, schema: str, file_gpu: str, file_precision: str) -> None:
    """Raise :class:`RecordError` naming the first key that is missing or wrong."""
    if not isinstance(rec, dict):
        raise RecordError(f"expected a JSON object, got {type(rec).__name__}")
    try:
        names.variants(file_gpu)
    except names.UnknownName as err:
        raise RecordError(f"file name: {err}") from None
    if schema != "baseline":
        _check_optimized(rec, file_gpu, file_precision)
    if file_precision not in PRECISIONS:
        raise RecordError(f"precision {file_precision!r} is none of {', '.join(PRECISIONS)}")
    for p in passes(rec):
        for key in PASS_KEYS:
            _number(rec, f"{p}_{key}", positive=key not in ("energy_sem", "gpu_time_sem"))


def _check_optimized(rec: dict, file_gpu: str, file_precision: str) -> None:
    """The keys only the optimized schema has, and that they agree with the file's name."""
    for key in OPTIMIZED_KEYS:
        if key not in rec:
            raise RecordError(f"missing key {key!r}")
    for key, expected in (("gpu_config", file_gpu), ("precision", file_precision)):
        if rec[key] != expected:
            raise RecordError(f"key {key!r} is {rec[key]!r} but the file name says {expected!r}")
    _number(rec, "batch_size")
    _number(rec, "input_length")


def rows(rec: dict, schema: str, file_gpu: str, file_precision: str, where: str) -> list[dict]:
    """One row per pass, in our schema (efficiency = FLOPs of one batch / mean energy of one
    window)."""
    baseline = schema == "baseline"
    out = []
    for p in passes(rec):
        time_s = rec[f"{p}_gpu_time_mean"] / 1e6
        energy = rec[f"{p}_energy_mean"]
        out.append(
            {
                "source": "thesis",
                "protocol": "baseline" if baseline else "optimized",
                "experiment": "llm",
                "model": "llama-3.2-1b",
                "pass": p,
                "derived": False,
                "status": "ok",
                "gpu_name": file_gpu,
                # the baseline script ran bf16 whatever the file says; the file's name stays beside
                # it
                "precision": BASELINE_RAN if baseline else rec["precision"],
                "precision_file": file_precision,
                "batch_size": math.nan if baseline else rec["batch_size"],
                "seq_len": math.nan if baseline else rec["input_length"],
                "config_name": "baseline" if baseline else rec["config_name"],
                "flops": float(rec[f"{p}_flops_sum"]),
                "energy_j_per_iter": energy,
                "energy_j_per_iter_sem": rec[f"{p}_energy_sem"],
                "energy_j_sum": rec[f"{p}_energy_sum"],
                "windows": rec[f"{p}_energy_sum"] / energy,
                "time_per_iter_s": time_s,
                "time_per_iter_sem_s": rec[f"{p}_gpu_time_sem"] / 1e6,
                "power_mean_w": energy / time_s,
                "published_gflops_per_joule": rec.get(f"gflops_per_joule_{p}"),
                "source_file": where,
            }
        )
    return out
