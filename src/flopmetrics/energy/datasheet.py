"""Datasheet peaks and TDPs of GPUs, and the physical limits derived from them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import yaml


class UnknownGPU(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class GPUSpec:
    key: str
    label: str
    match: str
    peaks_tflops: dict  # precision -> dense peak TFLOP/s or None
    tdp_w: float
    source: str
    hbm_bytes_per_s: float  # the datasheet's memory bandwidth
    runs_as: dict = field(
        default_factory=dict
    )  # precision without a path of its own -> the one that runs it

    def path(self, precision: str) -> str:
        """The precision whose hardware path runs ``precision`` (``bf16`` on a V100: ``fp32``)."""
        base = precision.split("-")[0]
        return self.runs_as.get(base, base) if self.peaks_tflops.get(base) is None else base

    def peak_flops(self, precision: str) -> float | None:
        """Peak FLOP/s for a precision name (``bf16-mixed`` -> bf16, ``fp16-mixed`` -> fp16), of the
        path that runs it; None only for a precision the table does not know."""
        value = self.peaks_tflops.get(self.path(precision))
        return None if value is None else value * 1e12

    def max_flops_per_joule(self, precision: str) -> float | None:
        peak = self.peak_flops(precision)
        return None if peak is None else peak / self.tdp_w


PRECISIONS = ("fp32", "tf32", "fp16", "bf16")


@lru_cache(maxsize=1)
def table() -> dict[str, GPUSpec]:
    raw = yaml.safe_load(resources.files("flopmetrics").joinpath("data/datasheet.yaml").read_text())
    out = {
        key: GPUSpec(
            key,
            v["label"],
            v["match"],
            {p: v[p] for p in PRECISIONS},
            float(v["tdp_w"]),
            v["source"],
            float(v["hbm_tb_s"]) * 1e12,
            dict(v.get("runs_as") or {}),
        )
        for key, v in raw.items()
    }
    for spec in out.values():
        for p in PRECISIONS:  # a null peak with no path named would wave every value through
            if spec.peak_flops(p) is None:
                raise ValueError(
                    f"datasheet.yaml: {spec.key}.{p} is null and {spec.key}.runs_as names no path "
                    "for it"
                )
    return out


def labels() -> list[str]:
    return sorted({s.label for s in table().values()})


def by_key(key: str) -> GPUSpec:
    try:
        return table()[key]
    except KeyError:
        raise UnknownGPU(f"no datasheet entry for GPU {key!r}; known: {sorted(table())}") from None


def job_bandwidth(rows) -> float:
    """The datasheet memory bandwidth (B/s) of the GPU a job's rows were measured on (their
    ``gpu_key``); NaN where they name none (a CPU job)."""
    key = str(rows["gpu_key"].iloc[0] or "") if "gpu_key" in rows else ""
    return by_key(key).hbm_bytes_per_s if key else float("nan")


def for_device_name(name: str) -> GPUSpec:
    """The datasheet variant whose pattern matches a device name such as 'NVIDIA H100 80GB HBM3'."""
    for spec in table().values():
        if re.search(spec.match, name, re.IGNORECASE):
            return spec
    raise UnknownGPU(
        f"no datasheet entry matches GPU {name!r}; add it to flopmetrics/data/datasheet.yaml"
    )


def variants(label: str) -> list[GPUSpec]:
    """The datasheet entries a label (e.g. 'h100') or variant key stands for."""
    specs = [s for s in table().values() if s.label == label or s.key == label]
    if not specs:
        raise UnknownGPU(f"no datasheet entry for GPU label {label!r}; known labels: {labels()}")
    return specs


def most_lenient(label: str, precision: str) -> GPUSpec:
    """Of the variants sharing a short label (e.g. 'h100'), the one with the highest FLOPs/J
    limit: a value above *its* limit is impossible on every variant."""
    return max(variants(label), key=lambda s: s.max_flops_per_joule(precision) or 0.0)


def check_label_matches(label: str, device_name: str) -> GPUSpec:
    """Fail unless the GPU we got (``device_name``) is of the architecture we were told to
    measure."""
    spec = for_device_name(device_name)
    if label not in (spec.label, spec.key):
        raise RuntimeError(
            f"this job measures GPU architecture {label!r} but runs on {device_name!r} "
            f"({spec.key}, "
            f"label {spec.label!r}): check the scheduler's mapping of architectures to nodes"
        )
    return spec
