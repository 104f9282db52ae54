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
``communication``  derived, distributed jobs: ``forward_backward - forward_backward_local``
                   (the same step without DDP's gradient synchronization)
=================  ================================================================
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable

import torch

from ..contracts.vocabulary import DIRECT_PASSES
from ..flops import transformer
from ..flops.counted import count_flops, profiler_flops
from . import graphs
from .precision import adamw_eps, get_precision, matmul_precision, parse_precision


def finite_check(tensors, names) -> Callable[[], tuple[bool, str]]:
    """Queue one small reduction per tensor; the returned call gives (all finite, first bad
    name)."""
    # a sharded parameter (FSDP's DTensor): this rank checks its own shard
    local = [t.to_local() if hasattr(t, "to_local") else t for t in tensors]
    flags = torch.stack([torch.isfinite(t).all() for t in local])

    def result() -> tuple[bool, str]:
        ok = flags.cpu()
        if bool(ok.all()):
            return True, ""
        return False, names[int((~ok).nonzero()[0])]

    return result


class Workload:
    passes: tuple[str, ...] = ()
    headline = "counted"  # FLOPs that efficiency uses: counted (FlopCounterMode) or analytic
    attention_flops = "full"  # how counted attention FLOPs enter the headline (full | causal)

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

    def headline_flops(self, counted: dict, analytic: dict) -> dict[str, tuple[float, str]]:
        """Per pass: the headline FLOPs (what efficiency uses) and where they came from; the
        counter's with attention as configured, AdamW's added analytically, or the closed form
        where the workload's ``headline`` is ``analytic``."""
        if self.headline == "analytic":
            return {k: (v["flops_analytic"], "analytic") for k, v in analytic.items()}
        source = f"FlopCounterMode ({self.attention_flops} attention)"
        out = {
            name: (counted[name].with_attention(self.attention_flops), source)
            for name in (
                "forward",
                "forward_train",
                "forward_backward",
                "forward_backward_local",
                "backward",
            )
            if name in counted
        }
        if "forward_backward" in out:
            opt = self.optimizer_flops() if hasattr(self, "optimizer_flops") else 0
            out["optimizer"] = (opt, "analytic AdamW (14 FLOPs/parameter)")
            out["train_step"] = (
                out["forward_backward"][0] + opt,
                "FlopCounterMode + analytic AdamW",
            )
        return out

    def finish_rows(self, rows):
        """Workload-specific columns added to the job's rows (none by default)."""
        return rows

    def restore(self) -> None:
        """Put the starting state back before a window (nothing to do where no pass changes it)."""

    def health(self, name: str, output) -> Callable[[], tuple[bool, str]]:
        """Queue a finiteness check of pass ``name``'s output (see
        :meth:`TrainableWorkload.health`)."""
        return finite_check([output.detach()], [f"output of {name}"])

    def graph_blocker(self, name: str) -> str:
        """Why pass ``name`` cannot be replayed from a CUDA graph, or "" where it can."""
        if torch.device(self.device).type != "cuda":
            return "CUDA graphs need a CUDA device"
        return ""

    def replayed(self, name: str, step: Callable[[], object]):
        """A context manager yielding ``step`` (one iteration of pass ``name``) replayed from a CUDA
        graph (:func:`flopmetrics.workloads.graphs.replayed`)."""
        return graphs.replayed(step)

    def profiled(self) -> dict[str, int]:
        steps = self.steps()
        return {
            name: profiler_flops(steps[name])
            for name in ("forward", "forward_backward")
            if name in steps
        }


class TrainableWorkload(Workload):
    """Shared pass logic for models with parameters, a loss and an AdamW optimizer."""

    passes = DIRECT_PASSES

    def __init__(self, device, precision, passes=None):
        super().__init__(device, precision)
        if passes:
            unknown = set(passes) - set(self.passes)
            if unknown:
                raise ValueError(
                    f"unknown passes {sorted(unknown)}; direct passes are {self.passes}"
                )
            self.passes = tuple(p for p in self.passes if p in passes)

    sharded = False  # parameters sharded over ranks (FSDP): set by flopmetrics.distributed

    def graph_blocker(self, name: str) -> str:
        why = super().graph_blocker(name)
        if why:
            return why
        if self.sharded or (
            torch.distributed.is_available() and torch.distributed.is_initialized()
        ):
            return (
                "a pass of several ranks runs eager "
                "(collectives and sharded parameters are not captured)"
            )
        if name == "train_step" and self.scaler.is_enabled():
            return "the loss scaler's step reads its overflow check on the host"
        return ""

    def replayed(self, name: str, step: Callable[[], object]):
        if name == "train_step":
            graphs.capturable_optimizer(self.optimizer)
        return super().replayed(name, step)

    def _build_optimizer(self):
        """AdamW, and the starting weights every window begins from (:meth:`restore`); called
        again after the model's parameters were sharded."""
        named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        self.parameter_names = [n for n, _ in named]
        self.trainable = params = [p for _, p in named]
        self.parameters = sum(p.numel() for p in params)
        self._new_optimizer()
        with torch.no_grad():
            self._start = [p.detach().clone() for p in params]

    def _new_optimizer(self):
        params = self.trainable
        self.optimizer = torch.optim.AdamW(params, lr=1e-5, eps=adamw_eps(params[0].dtype))
        # fp16-mixed: the standard recipe, loss scaling (a pure fp16 step has no scaler, like the
        # thesis)
        self.scaler = torch.amp.GradScaler(
            torch.device(self.device).type, enabled=self.mixed and self.precision.name == "fp16"
        )

    def restore(self) -> None:
        """Put the starting weights back (before every window, outside it): each pass computes on
        the same finite weights whatever ran before, an optimizer step included. The optimizer's
        moments are kept; they change only what later train steps do."""
        with torch.no_grad():
            if self.sharded:  # FSDP's sharded parameters have no fused copy
                for p, start in zip(self.trainable, self._start, strict=False):
                    p.copy_(start)
            else:
                torch._foreach_copy_(self.trainable, self._start)

    def loss(self):
        raise NotImplementedError

    def inference(self):
        raise NotImplementedError

    def steps(self):
        """One iteration of each pass; each returns what :meth:`health` checks (logits or loss)."""
        return self.direct_steps()

    def direct_steps(self):
        """One iteration of each direct pass (what :meth:`counted` counts)."""
        model, opt, scaler = self.model, self.optimizer, self.scaler

        def forward():
            with torch.no_grad(), self.context():
                return self.inference()

        def forward_train():
            with self.context():
                return self.loss().detach()  # the graph is freed here, as in a real step

        def forward_backward():
            model.zero_grad(set_to_none=True)
            with self.context():
                loss = self.loss()
            scaler.scale(loss).backward()
            return loss.detach()

        def train_step():
            loss = forward_backward()  # the optimizer's parameters are the model's trainable ones
            scaler.step(opt)
            scaler.update()
            return loss

        return {
            "forward": forward,
            "forward_train": forward_train,
            "forward_backward": forward_backward,
            "train_step": train_step,
        }

    def health(self, name: str, output) -> Callable[[], tuple[bool, str]]:
        """Check, where the device is synchronized anyway (a window's end), that what pass
        ``name`` computed is finite: its output, and for ``train_step`` the parameters it updated.
        The check kernels are queued now; the returned call reads their result later and gives
        ``(finite, name of the first non-finite tensor or "")``."""
        tensors, names = [output.detach()], [f"output of {name}"]
        if name == "train_step":
            tensors += [p.detach() for p in self.trainable]
            names += [f"parameter {n}" for n in self.parameter_names]
        return finite_check(tensors, names)

    def counted(self):
        steps = self.direct_steps()
        out = {
            name: count_flops(steps[name])
            for name in ("forward", "forward_train", "forward_backward")
        }
        # the counter books matmuls and attention only, so the backward is exactly what
        # forward_backward
        # ran beyond forward_train (a separate count cost one more forward and backward per
        # configuration)
        out["backward"] = out["forward_backward"] - out["forward_train"]
        self.model.zero_grad(set_to_none=True)
        return out

    def optimizer_flops(self) -> int:
        """AdamW's FLOPs on this process: every parameter, or this rank's shard where sharded."""
        if self.sharded:
            return transformer.adamw_step(sum(p.to_local().numel() for p in self.trainable))
        return transformer.adamw_step(self.parameters)


def release() -> None:
    """Free what the workload a job built before held, before the next is built. A workload
    sits in reference cycles (its passes' closures hold it), so dropping its last reference
    leaves it, and its weights, gradients and optimizer state on the GPU, alive until Python's
    collector next runs: beside the next model, whose build or step may then run out of memory
    for want of memory that nothing uses."""
    gc.collect()
