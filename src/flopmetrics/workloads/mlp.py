"""The method's MLP: ``n`` layers of ``Z = W @ x`` (W: d x d, no bias) then sigmoid, and its
workload (passes, FLOPs analytic in both conventions, bytes for arithmetic intensity)."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from ..contracts.experiments import MLP as MLP_EXPERIMENT
from ..flops import analytic
from .base import TrainableWorkload, finite_check, release
from .precision import Precision, get_precision


class MLP(nn.Module):
    """``x`` is ``d x m`` (features x tokens), so each layer is a plain ``mm``."""

    def __init__(self, n: int, d: int, device: str = "cpu"):
        super().__init__()
        # made where they run: weights that do not fit fail there (an oom row), instead of
        # first filling the host's memory
        self.weights = nn.ParameterList(
            nn.Parameter(torch.empty(d, d, device=device)) for _ in range(n)
        )
        for w in self.weights:
            # scaled so activations stay away from sigmoid saturation in deep stacks
            nn.init.normal_(w, std=d**-0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for w in self.weights:
            x = torch.sigmoid(w @ x)
        return x


def build_mlp(n: int, d: int, m: int, precision: Precision, device: str, seed: int = 0):
    """Return ``(model, x)`` on ``device`` in ``precision``; ``x`` does not require grad."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = MLP(n, d, device).to(dtype=precision.dtype)
    x = torch.randn(d, m, generator=gen).to(device=device, dtype=precision.dtype)
    return model, x


class Shape(NamedTuple):
    """The MLP's size: ``n`` layers of width ``d`` over ``m`` tokens."""

    n: int
    d: int
    m: int


def build(device: str, precision: str, workload: dict, seed: int, previous=None) -> MLPWorkload:
    """The MLP of one configuration (``workload``: ``n``, ``d``, ``m``)."""
    shape = Shape(workload["n"], workload["d"], workload["m"])
    del previous  # never reused
    release()
    return MLPWorkload(device, precision, shape, seed, passes=MLP_EXPERIMENT.passes)


class MLPWorkload(TrainableWorkload):
    """The method's MLP (see :mod:`flopmetrics.flops.analytic`); ``x`` is ``d x m``."""

    headline = "analytic"  # the closed form includes the sigmoid work FlopCounterMode does not see

    def __init__(self, device: str, precision: str, shape: Shape, seed: int = 0, passes=None):
        super().__init__(device, precision, passes)
        n, d, m = shape
        self.n, self.d, self.m = n, d, m
        self.model, self.x = build_mlp(
            n, d, m, self.precision if not self.mixed else get_precision("fp32"), device, seed
        )
        self._build_optimizer()

    def loss(self):
        # summed in fp32: in fp16 the sum of d*m sigmoids overflows 65504 at the reference sizes
        # (without it every fp16 forward_train and backward overflows to inf)
        return self.model(self.x).sum(dtype=torch.float32)

    def inference(self):
        return self.model(self.x)

    def describe(self):
        return {"n": self.n, "d": self.d, "m": self.m, "tokens": self.m}

    def analytic(self):
        parts = {
            "forward": ("forward",),
            "forward_train": ("forward",),
            "backward": ("backward",),
            "forward_backward": ("forward", "backward"),
            "train_step": ("forward", "backward"),
            "optimizer": (),
        }
        out = {}
        for name, ps in parts.items():
            cols = {}
            for suffix, conv in (("", "ours"), ("_thesis", "thesis")):
                br = [analytic.mlp_flops(p, self.n, self.d, self.m, conv) for p in ps]
                cols[f"flops_analytic{suffix}"] = sum(b.total for b in br)
                cols[f"flops_analytic_gemm{suffix}"] = sum(b.gemm for b in br)
                cols[f"flops_analytic_activation{suffix}"] = sum(b.activation for b in br)
            if name in ("optimizer", "train_step"):
                for suffix in ("", "_thesis"):
                    cols[f"flops_analytic{suffix}"] += self.optimizer_flops()
            cols["bytes_analytic"] = sum(
                analytic.mlp_bytes(p, self.n, self.d, self.m, self.precision.bytes_per_element)
                for p in ps
            )
            out[name] = cols
        return out

    def finish_rows(self, rows):
        if "flops_analytic" in rows:
            rows["flops_per_s"] = rows["flops_analytic"] / rows["time_per_iter_s"]
            rows["arithmetic_intensity"] = rows["flops_analytic"] / rows["bytes_analytic"]
            rows["pct_diff_counted_vs_analytic"] = (
                100 * (rows["flops_counted"] - rows["flops_analytic"]) / rows["flops_analytic"]
            )
            rows["pct_diff_counted_vs_analytic_gemm"] = (
                100
                * (rows["flops_counted"] - rows["flops_analytic_gemm"])
                / rows["flops_analytic_gemm"]
            )
        return rows

    def health(self, name, output):
        # the sigmoid hides an overflow of its input (sigmoid(inf) = 1): check what goes in too,
        # for every pass (the weights are the only parameters)
        return finite_check(
            [output.detach(), self.x, *[w.detach() for w in self.trainable]],
            [f"output of {name}", "input x", *[f"parameter {n}" for n in self.parameter_names]],
        )
