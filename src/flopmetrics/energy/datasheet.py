"""Datasheet peaks and TDPs of GPUs, and the physical limits derived from them."""

from __future__ import annotations

import re
from dataclasses import dataclass
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

    def peak_flops(self, precision: str) -> float | None:
        """Peak FLOP/s for a precision name (``bf16-mixed`` -> bf16, ``fp16-mixed`` -> fp16)."""
        base = precision.split("-")[0]
        value = self.peaks_tflops.get(base)
        return None if value is None else value * 1e12

    def max_flops_per_joule(self, precision: str) -> float | None:
        peak = self.peak_flops(precision)
        return None if peak is None else peak / self.tdp_w


@lru_cache(maxsize=1)
def table() -> dict[str, GPUSpec]:
    raw = yaml.safe_load(resources.files("flopmetrics").joinpath("data/datasheet.yaml").read_text())
    return {
        key: GPUSpec(key, v["label"], v["match"], {p: v[p] for p in ("fp32", "tf32", "fp16", "bf16")},
                     float(v["tdp_w"]), v["source"])
        for key, v in raw.items()
    }


def labels() -> list[str]:
    return sorted({s.label for s in table().values()})


def by_key(key: str) -> GPUSpec:
    try:
        return table()[key]
    except KeyError:
        raise UnknownGPU(f"no datasheet entry for GPU {key!r}; known: {sorted(table())}") from None


def for_device_name(name: str) -> GPUSpec:
    """The datasheet variant whose pattern matches a device name such as 'NVIDIA H100 80GB HBM3'."""
    for spec in table().values():
        if re.search(spec.match, name, re.IGNORECASE):
            return spec
    raise UnknownGPU(f"no datasheet entry matches GPU {name!r}; add it to flopmetrics/data/datasheet.yaml")


def most_lenient(label: str, precision: str) -> GPUSpec:
    """Of the variants sharing a short label (e.g. 'h100'), the one with the highest FLOPs/J
    limit: a value above *its* limit is impossible on every variant."""
    specs = [s for s in table().values() if s.label == label or s.key == label]
    if not specs:
        raise UnknownGPU(f"no datasheet entry for GPU label {label!r}; known labels: {labels()}")
    return max(specs, key=lambda s: s.max_flops_per_joule(precision) or 0.0)


def check_label_matches(label: str, device_name: str) -> GPUSpec:
    """Fail unless the GPU we got (``device_name``) is of the architecture we were told to measure."""
    spec = for_device_name(device_name)
    if label not in (spec.label, spec.key):
        raise RuntimeError(
            f"this job measures GPU architecture {label!r} but runs on {device_name!r} ({spec.key}, "
            f"label {spec.label!r}): check the scheduler's mapping of architectures to nodes"
        )
    return spec
