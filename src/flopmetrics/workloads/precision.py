"""Precision names used across flopmetrics and what they mean for PyTorch."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Precision:
    name: str
    dtype: torch.dtype
    allow_tf32: bool  # TF32 tensor-core matmuls for fp32 tensors

    @property
    def bytes_per_element(self) -> int:
        return torch.finfo(self.dtype).bits // 8


PRECISIONS: dict[str, Precision] = {
    "fp32": Precision("fp32", torch.float32, allow_tf32=False),
    "tf32": Precision("tf32", torch.float32, allow_tf32=True),
    "fp16": Precision("fp16", torch.float16, allow_tf32=False),
    "bf16": Precision("bf16", torch.bfloat16, allow_tf32=False),
}


def get_precision(name: str) -> Precision:
    try:
        return PRECISIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown precision {name!r}; expected one of {sorted(PRECISIONS)}"
        ) from None


@contextlib.contextmanager
def matmul_precision(precision: Precision):
    """Set TF32 use for fp32 matmuls for the duration of a block, then restore it."""
    old_matmul = torch.backends.cuda.matmul.allow_tf32
    old_cudnn = torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = precision.allow_tf32
    torch.backends.cudnn.allow_tf32 = precision.allow_tf32
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old_matmul
        torch.backends.cudnn.allow_tf32 = old_cudnn


PRECISION_MODES = ("fp32", "tf32", "fp16", "bf16", "fp16-mixed", "bf16-mixed")


def parse_precision(mode: str) -> tuple[str, bool]:
    """``bf16-mixed`` -> (``bf16``, mixed=True): autocast over fp32 master weights.
    ``bf16`` -> (``bf16``, False): pure low precision, ``model.to(dtype)`` like the thesis."""
    if mode not in PRECISION_MODES:
        raise ValueError(f"unknown precision {mode!r}; expected one of {PRECISION_MODES}")
    base, _, mixed = mode.partition("-")
    return base, mixed == "mixed"


# AdamW's default eps (1e-8) is 0 in fp16 (its smallest positive number is 6e-8): a parameter
# whose gradient underflows then gets 0/0 = NaN. A pure fp16 optimizer uses the smallest
# power-of-ten step that fp16 holds as a normal number; every other dtype keeps the default.
ADAMW_EPS = 1e-8
ADAMW_EPS_FP16 = 1e-4


def adamw_eps(dtype: torch.dtype) -> float:
    """AdamW's eps for parameters of ``dtype``: representable, so the update stays finite."""
    return ADAMW_EPS_FP16 if dtype == torch.float16 else ADAMW_EPS
