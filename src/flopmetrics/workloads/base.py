"""Workloads: things whose passes we time, meter and count.

Each workload builds its tensors on a device and exposes one-iteration callables per direct
pass, and FLOP counts for exactly those iterations:

=================  ================================================================
``forward``        inference, no grad
``forward_train``  grad-enabled forward + loss (graph discarded)
``forward_backward``  forward_train + backward (gradients set to None first: no accumulation)
``train_step``     zero_grad + forward + backward + AdamW step
``backward``       derived: ``forward_backward - forward_train``
``optimizer``      derived: ``train_step - forward_backward``
=================  ================================================================
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..flops import transformer
from ..flops.counted import count_flops, profiler_flops
from .precision import get_precision, matmul_precision, parse_precision


@dataclass(frozen=True)
class DerivedPass:
    """A pass that cannot run alone, measured as ``minuend - subtrahend`` per iteration."""

    name: str
    minuend: str
    subtrahend: str


DERIVED_PASSES = {
    "backward": DerivedPass("backward", "forward_backward", "forward_train"),
    "optimizer": DerivedPass("optimizer", "train_step", "forward_backward"),
}
def derivable(direct: tuple[str, ...]) -> list[DerivedPass]:
    return [d for d in DERIVED_PASSES.values() if d.minuend in direct and d.subtrahend in direct]


class Workload:
    kind: str = ""
    passes: tuple[str, ...] = ()
    headline = "counted"  # FLOPs that efficiency uses: counted (FlopCounterMode) or analytic
    attention_convention = "full"  # how counted attention FLOPs enter the headline (full | causal)

    def __init__(self, device: str, precision: str):
        self.device = device
        self.precision_mode = precision
        base, self.mixed = parse_precision(precision)
        self.precision = get_precision(base)

    @contextlib.contextmanager
    def context(self):
        """Autocast around the forward part of a step (mixed precision only). The TF32 switch is
        not set here but for the whole job (:meth:`precision_scope`): backward runs outside
        autocast and must see it too."""
        if self.mixed:
            with torch.autocast(torch.device(self.device).type, dtype=self.precision.dtype):
                yield
        else:
            yield

    def precision_scope(self):
        """TF32 on or off for everything the job runs (forward, backward, optimizer)."""
        return matmul_precision(self.precision)

    def steps(self) -> dict[str, Callable[[], object]]:
        raise NotImplementedError

    def describe(self) -> dict:
        return {}

    def counted(self) -> dict[str, dict]:
        """Per pass: ``flops`` (headline), ``flops_counted``, ``flops_attention``, source."""
        raise NotImplementedError

    def analytic(self) -> dict[str, dict]:
        return {}

    def finish_rows(self, rows):
        """Workload-specific columns added to the job's rows (none by default)."""
        return rows

    def profiled(self) -> dict[str, int]:
        steps = self.steps()
        return {name: profiler_flops(steps[name]) for name in ("forward", "forward_backward") if name in steps}


class TrainableWorkload(Workload):
    """Shared pass logic for models with parameters, a loss and an AdamW optimizer."""

    passes = ("forward", "forward_train", "forward_backward", "train_step")

    def __init__(self, device, precision, passes=None):
        super().__init__(device, precision)
        if passes:
            unknown = set(passes) - set(self.passes)
            if unknown:
                raise ValueError(f"unknown passes {sorted(unknown)}; direct passes are {self.passes}")
            self.passes = tuple(p for p in self.passes if p in passes)

    def _build_optimizer(self):
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.parameters = sum(p.numel() for p in params)
        self.optimizer = torch.optim.AdamW(params, lr=1e-5)

    def loss(self):
        raise NotImplementedError

    def inference(self):
        raise NotImplementedError

    def steps(self):
        model, opt = self.model, self.optimizer

        def forward():
            with torch.no_grad(), self.context():
                return self.inference()

        def forward_train():
            with self.context():
                return self.loss()

        def forward_backward():
            model.zero_grad(set_to_none=True)
            with self.context():
                loss = self.loss()
            loss.backward()

        def train_step():
            opt.zero_grad(set_to_none=True)
            with self.context():
                loss = self.loss()
            loss.backward()
            opt.step()

        return {"forward": forward, "forward_train": forward_train, "forward_backward": forward_backward,
                "train_step": train_step}

    def counted(self):
        steps = self.steps()
        out = {}
        for name in ("forward", "forward_train", "forward_backward"):
            out[name] = count_flops(steps[name])
        self.model.zero_grad(set_to_none=True)
        with self.context():
            loss = self.loss()
        out["backward"] = count_flops(loss.backward)
        self.model.zero_grad(set_to_none=True)
        return out

    def optimizer_flops(self) -> int:
        return transformer.adamw_step(self.parameters)
