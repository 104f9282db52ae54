"""A step's operations, recorded once and replayed class by class.

:class:`Tape` records every ATen operation a step runs on the device (the forward, the backward
on the autograd engine's threads, and the optimizer's step) with the very tensors it ran on, each
with its class (:func:`flopmetrics.flops.operations.op_class`). Replaying one class's operations
launches the kernels the step launched for them, on the same shapes and the same data, and
nothing else: Nsight Compute then counts each class's executed FLOPs by itself, and a window
can meter each class's energy by itself (eager or from a CUDA graph of its own).

A replay follows the step's dataflow: an operation reads what the replayed operation that
produced its input wrote in this replay, and only where that producer is not replayed (another
class's) the tensor the step left behind; each result is freed after its last reader, as the
step frees it. Replaying every class is then the step again, reading from the cache what the
step read from the cache: a replay that read only the recorded tensors ran the 1B model's step
3-11 ms slower on an H200 (``docs/benchmarks.md``).

Not replayed, and listed in :attr:`Tape.skipped`: operations that read a device value on the
host (``.item()``, ``nonzero``; a CUDA graph cannot capture them and they launch none of the
step's arithmetic) and copies from host memory. The tape holds every tensor the step touched
alive, so it needs about the memory of the step's activations and gradients once more, and a
replay of every class the step's working memory besides.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_leaves, tree_map_only, tree_unflatten

from ..flops.operations import CLASSES, op_class, operator_name

HOST_READS = frozenset(
    {"_local_scalar_dense", "item", "is_nonzero", "equal", "nonzero", "masked_select", "unique"}
)


@dataclass(frozen=True)
class Op:
    func: object
    args: tuple
    kwargs: dict
    op_class: str
    # the bytes of the distinct tensors it names (read or written; a view's too, though it moves
    # nothing: a measure of work for the arithmetic classes, not of traffic for ``other``)
    bytes: int = 0
    # per tensor among its inputs (in ``tree_leaves`` order): which operation's which output it
    # was, as (operation index, output index), or None for a tensor made before the tape
    sources: tuple = ()

    def __call__(self):
        """Run it again on its recorded inputs; its result."""
        return self.func(*self.args, **self.kwargs)


class Tape(TorchDispatchMode):
    """While open, records the operations run on device type ``device`` (see the module's
    docstring); :func:`record` marks the ones the optimizer's step runs."""

    def __init__(self, device: str):
        super().__init__()
        self.device_type = torch.device(device).type
        self.ops: list[Op] = []
        self.skipped: Counter[str] = Counter()
        self._in_optimizer = False
        self._attention_calls = 0  # inside F.scaled_dot_product_attention (forward)
        self._attention_nodes: set = set()  # the autograd nodes those calls created
        # the tensor each (address, layout) held last: the output of which operation. The tape
        # holds every input alive, so no address is reused while a reader is still to come
        self._producers: dict[tuple, tuple[int, int] | None] = {}

    def _in_attention(self) -> bool:
        if self._attention_calls:
            return True
        node = torch._C._current_autograd_node()  # the backward node running, if any
        return node is not None and node in self._attention_nodes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        self._record(func, args, kwargs, out)
        return out

    def _record(self, func, args, kwargs, out) -> None:
        inputs = _tensors((args, kwargs))
        outputs = _tensors(out)
        if not any(t.device.type == self.device_type for t in inputs + outputs):
            return  # host bookkeeping (a CPU step counter): no device work
        name = operator_name(func)
        index = None
        if name in HOST_READS:
            self.skipped[name] += 1
        elif self.device_type != "cpu" and any(
            t.device.type == "cpu" and t.dim() for t in inputs + outputs
        ):
            self.skipped[f"{name} (host memory)"] += 1
        else:  # detached: the tape must not keep the step's autograd graph alive
            args, kwargs = tree_map_only(torch.Tensor, torch.Tensor.detach, (args, kwargs))
            cls = op_class(func, self._in_optimizer, self._in_attention())
            sources = tuple(self._producers.get(_layout(t)) for t in inputs)
            work = _distinct_bytes(inputs + outputs)
            index = len(self.ops)
            self.ops.append(Op(func, args, kwargs, cls, work, sources))
        for j, t in enumerate(outputs):  # a skipped operation's result is read as recorded
            self._producers[_layout(t)] = None if index is None else (index, j)

    def attention(self, func, args, kwargs):
        """Run an attention call with every operation inside it booked to attention, and the
        autograd nodes it creates remembered, so that their backward is booked there too."""
        self._attention_calls += 1
        try:
            out = func(*args, **kwargs)
        finally:
            self._attention_calls -= 1
        inputs = [t.grad_fn for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        self._attention_nodes |= _nodes_between(out.grad_fn, set(inputs))
        return out

    def classes(self) -> dict[str, list[Op]]:
        """The recorded operations of each class that has any, in the step's order."""
        return {c: ops for c in CLASSES if (ops := [op for op in self.ops if op.op_class == c])}

    def counts(self) -> dict[str, int]:
        return {c: len(ops) for c, ops in self.classes().items()}

    def bytes(self) -> dict[str, int]:
        """Per class: the bytes of the distinct tensors its operations read or wrote."""
        return {c: sum(op.bytes for op in ops) for c, ops in self.classes().items()}

    def replay(self, classes=None) -> Callable[[], None]:
        """One call that replays the recorded operations of ``classes`` (default: all, the step
        as the tape holds it) once, in the step's order and along its dataflow."""
        chosen = [
            (i, op) for i, op in enumerate(self.ops) if classes is None or op.op_class in classes
        ]
        return _replay(chosen)

    def replays(self) -> dict[str, Callable[[], None]]:
        """One call per class that replays its operations once, in the step's order."""
        return {c: self.replay({c}) for c in self.classes()}


class _AttentionScope(TorchFunctionMode):
    """Books every operation inside ``F.scaled_dot_product_attention`` to attention, whichever
    kernels implement it (a fused kernel, or the math path's batched products and softmax), and
    the autograd nodes it created, so that their backward operations are booked there too."""

    def __init__(self, tape: Tape):
        super().__init__()
        self.tape = tape

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is not F.scaled_dot_product_attention:
            return func(*args, **kwargs)
        return self.tape.attention(func, args, kwargs)


def _nodes_between(node, stop: set) -> set:
    """The autograd nodes from ``node`` back to (not including) the nodes in ``stop`` or leaves."""
    seen, todo = set(), [node]
    while todo:
        n = todo.pop()
        if n is None or n in seen or n in stop or not n.next_functions:
            continue
        seen.add(n)
        todo += [nxt for nxt, _ in n.next_functions]
    return seen


def _tensors(tree) -> list[torch.Tensor]:
    return [t for t in tree_leaves(tree) if isinstance(t, torch.Tensor)]


def _layout(t: torch.Tensor) -> tuple:
    """What identifies a tensor an operation wrote when a later one reads it."""
    return (
        t.device,
        t.untyped_storage().data_ptr(),
        t.storage_offset(),
        t.shape,
        t.stride(),
        t.dtype,
    )


def _distinct_bytes(tensors: list[torch.Tensor]) -> int:
    """The bytes of the distinct tensors an operation touched (a view counted once per
    storage offset and shape it names)."""
    seen = {
        (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape)): t for t in tensors
    }
    return sum(t.numel() * t.element_size() for t in seen.values())


def _replay(ops: list[tuple[int, Op]]) -> Callable[[], None]:
    """A call that runs ``ops`` (index in the tape, operation) in order, each reading the
    results of this replay it depends on (kept until their last reader) and the recorded
    tensors in place of the rest."""
    replayed = {i for i, _ in ops}
    last_read: dict[tuple[int, int], int] = {}
    for k, (_, op) in enumerate(ops):
        last_read.update((s, k) for s in op.sources if s is not None and s[0] in replayed)
    freed = [[] for _ in ops]
    for source, k in last_read.items():
        freed[k].append(source)
    steps = [_Bound(i, op, replayed) for i, op in ops]

    def replay() -> None:
        live: dict[tuple[int, int], torch.Tensor] = {}
        with torch.no_grad():  # the step's autograd already ran: replay the arithmetic only
            for k, step in enumerate(steps):
                out = step(live)
                live.update(
                    ((step.index, j), t) for j, t in enumerate(out) if (step.index, j) in last_read
                )
                for source in freed[k]:
                    del live[source]

    return replay


class _Bound:
    """One operation of a replay: its recorded inputs, with those whose producer is replayed
    too read from that producer's result in the replay."""

    def __init__(self, index: int, op: Op, replayed: set[int]):
        self.index, self.op = index, op
        self.flat, self.spec = tree_flatten((op.args, op.kwargs))
        positions = [k for k, t in enumerate(self.flat) if isinstance(t, torch.Tensor)]
        self.bound = [
            (k, s) for k, s in zip(positions, op.sources, strict=True) if s and s[0] in replayed
        ]

    def __call__(self, live: dict) -> list[torch.Tensor]:
        if not self.bound:
            return _tensors(self.op())
        flat = list(self.flat)
        for k, source in self.bound:
            flat[k] = live[source]
        args, kwargs = tree_unflatten(flat, self.spec)
        return _tensors(self.op.func(*args, **kwargs))


def record(step: Callable[[], object], device: str, optimizer=None) -> Tape:
    """Run ``step`` once and return its :class:`Tape`; operations inside ``optimizer.step`` (a
    ``torch.optim.Optimizer``) are booked to the ``optimizer`` class."""
    tape = Tape(device)
    hooks = []
    if optimizer is not None:
        hooks = [
            optimizer.register_step_pre_hook(lambda *_: setattr(tape, "_in_optimizer", True)),
            optimizer.register_step_post_hook(lambda *_: setattr(tape, "_in_optimizer", False)),
        ]
    try:
        with _AttentionScope(tape), tape:
            step()
    finally:
        for hook in hooks:
            hook.remove()
        # the attention calls' autograd nodes would keep the step's graph alive (and a later
        # capture of the step would then fail on its stale AccumulateGrad nodes)
        tape._attention_nodes.clear()
    return tape
