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

import torch

from . import analytic
from .counting import count_flops, profiler_flops
from .mlp import build_mlp
from .passes import DerivedPass
from .precision import get_precision, matmul_precision

DERIVED_PASSES = {
    "backward": DerivedPass("backward", "forward_backward", "forward_train"),
    "optimizer": DerivedPass("optimizer", "train_step", "forward_backward"),
}
PRECISION_MODES = ("fp32", "tf32", "fp16", "bf16", "fp16-mixed", "bf16-mixed")


def parse_precision(mode: str) -> tuple[str, bool]:
    """``bf16-mixed`` -> (``bf16``, mixed=True): autocast over fp32 master weights.
    ``bf16`` -> (``bf16``, False): pure low precision, ``model.to(dtype)`` like the thesis."""
    if mode not in PRECISION_MODES:
        raise ValueError(f"unknown precision {mode!r}; expected one of {PRECISION_MODES}")
    base, _, mixed = mode.partition("-")
    return base, mixed == "mixed"


def derivable(direct: tuple[str, ...]) -> list[DerivedPass]:
    return [d for d in DERIVED_PASSES.values() if d.minuend in direct and d.subtrahend in direct]


class Workload:
    kind: str = ""
    passes: tuple[str, ...] = ()

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
        # foreach=False/fused=False keep AdamW's arithmetic identical across devices
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
        return analytic.adamw_step(self.parameters)


class MLPWorkload(TrainableWorkload):
    """The method's MLP (see :mod:`flopmetrics.mlp`); ``x`` is ``d x m``."""

    kind = "mlp"

    def __init__(self, device, precision, n, d, m, seed=0, passes=None):
        super().__init__(device, precision, passes)
        self.n, self.d, self.m = n, d, m
        self.model, self.x = build_mlp(n, d, m, self.precision if not self.mixed else get_precision("fp32"),
                                       device, seed)
        self._build_optimizer()

    def loss(self):
        return self.model(self.x).sum()

    def inference(self):
        return self.model(self.x)

    def describe(self):
        return {"n": self.n, "d": self.d, "m": self.m, "tokens": self.m}

    def analytic(self):
        parts = {"forward": ("forward",), "forward_train": ("forward",), "backward": ("backward",),
                 "forward_backward": ("forward", "backward"), "train_step": ("forward", "backward"),
                 "optimizer": ()}
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
            cols["bytes_analytic"] = sum(analytic.mlp_bytes(p, self.n, self.d, self.m,
                                                            self.precision.bytes_per_element) for p in ps)
            out[name] = cols
        return out


class CausalLMWorkload(TrainableWorkload):
    """A Hugging Face causal LM on random tokens; loss = next-token cross-entropy."""

    kind = "llm"

    def __init__(self, device, precision, model_name, model_fields, batch, seq_len, attn_implementation="sdpa",
                 seed=0, passes=None):
        from .models import build_causal_lm, transformer_shape

        super().__init__(device, precision, passes)
        torch.manual_seed(seed)
        self.model_name, self.batch, self.seq_len = model_name, batch, seq_len
        self.shape = transformer_shape(model_fields)
        self.attn_implementation = attn_implementation
        model = build_causal_lm(model_fields, attn_implementation, device)
        if not self.mixed:
            model = model.to(dtype=self.precision.dtype)  # pure low precision, like the thesis
        self.model = model.to(device)
        self.model.train()
        gen = torch.Generator().manual_seed(seed)
        self.input_ids = torch.randint(0, self.shape["vocab"], (batch, seq_len), generator=gen).to(device)
        self._build_optimizer()

    def loss(self):
        return self.model(input_ids=self.input_ids, labels=self.input_ids).loss

    def inference(self):
        return self.model(input_ids=self.input_ids).logits

    def describe(self):
        return {"model": self.model_name, "batch_size": self.batch, "seq_len": self.seq_len,
                "tokens": self.batch * self.seq_len, "attn_implementation": self.attn_implementation,
                "parameters": self.parameters}

    def analytic(self):
        f = analytic.transformer_forward(self.shape, self.batch, self.seq_len)
        b = analytic.transformer_backward(self.shape, self.batch, self.seq_len)
        fwd, bwd = f["gemm"] + f["attention"], b["gemm"] + b["attention"]
        opt = self.optimizer_flops()
        totals = {"forward": fwd, "forward_train": fwd, "backward": bwd, "forward_backward": fwd + bwd,
                  "train_step": fwd + bwd + opt, "optimizer": opt}
        attention = {"forward": f["attention"], "forward_train": f["attention"], "backward": b["attention"],
                     "forward_backward": f["attention"] + b["attention"],
                     "train_step": f["attention"] + b["attention"], "optimizer": 0}
        return {k: {"flops_analytic": v, "flops_analytic_attention": attention[k]} for k, v in totals.items()}


class MatmulWorkload(Workload):
    """One square ``N x N @ N x N`` product: the efficiency frontier of a precision."""

    kind = "matmul"
    passes = ("forward",)

    def __init__(self, device, precision, size, seed=0, passes=None):
        super().__init__(device, precision)
        gen = torch.Generator().manual_seed(seed)
        dtype = self.precision.dtype if not self.mixed else torch.float32
        self.size = size
        self.a = torch.randn(size, size, generator=gen).to(device=device, dtype=dtype)
        self.b = torch.randn(size, size, generator=gen).to(device=device, dtype=dtype)
        self.parameters = 0

    def steps(self):
        def forward():
            with self.context():
                return self.a @ self.b

        return {"forward": forward}

    def counted(self):
        return {"forward": count_flops(self.steps()["forward"])}

    def describe(self):
        return {"size": self.size, "tokens": self.size}

    def analytic(self):
        return {"forward": {"flops_analytic": 2 * self.size**3}}

    def profiled(self):
        return {}
