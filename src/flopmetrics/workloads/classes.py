"""A causal LM's train step cut into operation classes: the workload of experiment ``classes``.

The step runs once under a :class:`~flopmetrics.workloads.optape.Tape`, which records each
ATen operation with its class (:func:`flopmetrics.flops.operations.op_class`, the classifier
the Nsight class captures use). Its passes are the step itself (``train_step``), the whole tape
replayed (``tape``) and every other subset of the classes replayed alone (``tape:gemm``,
``tape:attention+gemm``, ...): each is measured in windows of its own by the protocol, like any
pass, so that each class's energy is measured, not apportioned by time shares
(:mod:`flopmetrics.analysis.class_energy` gives each class its Shapley share).

A replay repeats the step's arithmetic along its dataflow (:mod:`~flopmetrics.workloads.optape`:
each operation reads what its replayed producer wrote, else what the step left behind); the
optimizer's replays update the parameters in place, so every window starts from the starting
weights (:meth:`restore`) and ends with the parameters checked finite.
"""

from __future__ import annotations

import contextlib

from ..contracts.vocabulary import class_subsets, tape_classes, tape_pass
from ..flops.counted import FlopCount, count_flops
from . import graphs, optape
from .base import finite_check, release
from .causal_lm import CausalLMWorkload, LMConfig, reusable


def build(device: str, precision: str, workload: dict, seed: int, previous=None):
    """One configuration's workload (the builder of experiment ``classes``; ``previous``: a
    workload of the same model this job built before, resized rather than built again)."""
    config = LMConfig.of({**workload, "passes": ["train_step"]})
    if reusable(ClassesWorkload, previous, device, precision, config, seed):
        return previous.resized(config.batch_size, config.seq_len)
    previous = None  # the last reference: freed before the next build
    release()
    return ClassesWorkload(device, precision, config, seed)


class ClassesWorkload(CausalLMWorkload):
    """The train step, its tape, and every subset of its operation classes (module docstring)."""

    tape: optape.Tape | None = None

    def resized(self, batch_size: int, seq_len: int) -> ClassesWorkload:
        out = super().resized(batch_size, seq_len)
        self.tape = out.tape = None  # the old tape's tensors are freed before the new recording
        out.passes = ("train_step",)
        return out

    def record(self) -> optape.Tape:
        """The step's tape (recorded once; on a GPU as a CUDA graph replays the step: with the
        optimizer's step count on the device and the eager attention call)."""
        if self.tape is None:
            step = self.direct_steps()["train_step"]
            cuda = not self.graph_blocker("train_step")
            if cuda:
                graphs.capturable_optimizer(self.optimizer)
            sdpa = graphs.unmasked_sdpa(self.model) if cuda else contextlib.nullcontext()
            with sdpa:
                step()  # the optimizer's state is created before the recorded step
                self.tape = optape.record(step, self.device, self.optimizer)
            self.restore()
            names = list(self.tape.classes())
            self.passes = ("train_step", *(tape_pass(s, names) for s in class_subsets(names)))
        return self.tape

    def classes(self) -> list[str]:
        return list(self.record().classes())

    def steps(self):
        tape = self.record()
        names = self.classes()
        out = {"train_step": self.direct_steps()["train_step"]}
        for s in class_subsets(names):
            out[tape_pass(s, names)] = tape.replay(s)
        return out

    def counted(self):
        out = super().counted()  # the direct passes, before the tape holds memory
        replays = self.record().replays()
        per_class = {c: count_flops(fn) for c, fn in replays.items()}
        self.restore()  # the optimizer's replay moved the weights
        for name in self.passes[1:]:
            out[name] = sum((per_class[c] for c in tape_classes(name, replays)), FlopCount(0))
        return out

    def headline_flops(self, counted, analytic):
        out = super().headline_flops(counted, analytic)
        source = f"FlopCounterMode ({self.attention_flops} attention) of the replayed classes"
        names = self.classes()
        for name in self.passes[1:]:
            subset = tape_classes(name, names)
            flops = counted[name].with_attention(self.attention_flops)
            if "optimizer" in subset:
                flops += self.optimizer_flops()
            out[name] = (flops, source + (" + analytic AdamW" if "optimizer" in subset else ""))
        return out

    def health(self, name, output):
        if name == "train_step":
            return super().health(name, output)
        # a replay returns nothing: what it computes on, the parameters, must stay finite
        return finite_check([p.detach() for p in self.trainable], self.parameter_names)

    def finish_rows(self, rows):
        """Per pass: the classes it replays, their operations and the bytes they touch."""
        tape, names = self.record(), self.classes()
        ops, touched = tape.counts(), tape.bytes()
        rows = rows.copy()
        subset = {p: tape_classes(p, names) for p in self.passes[1:]}
        rows["op_classes"] = rows["pass"].map(lambda p: "+".join(sorted(subset.get(p, names))))
        rows["operations"] = rows["pass"].map(lambda p: sum(ops[c] for c in subset.get(p, names)))
        rows["bytes_accessed"] = rows["pass"].map(
            lambda p: sum(touched[c] for c in subset.get(p, names))
        )
        return rows
