"""One definition of the words every layer shares (config/README.md, "Vocabulary"); the schema's
enums are checked against these tuples by the tests."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

# number formats a job computes in: plain (model.to(dtype)) or -mixed (autocast over fp32 weights)
PLAIN_PRECISIONS = ("fp32", "tf32", "fp16", "bf16")
PRECISIONS = (*PLAIN_PRECISIONS, "fp16-mixed", "bf16-mixed")

# passes a training-style workload runs as one iteration each
DIRECT_PASSES = ("forward", "forward_train", "forward_backward", "train_step")
# passes a serving workload runs: the prompts into a KV cache, one new token per sequence
SERVING_PASSES = ("prefill", "decode")


@dataclass(frozen=True)
class DerivedPass:
    """A pass that cannot run alone, measured as ``minuend - subtrahend`` per iteration."""

    name: str
    minuend: str
    subtrahend: str


DERIVED_PASSES = {
    "backward": DerivedPass("backward", "forward_backward", "forward_train"),
    "optimizer": DerivedPass("optimizer", "train_step", "forward_backward"),
    # distributed jobs: the step without DDP's gradient synchronization (no_sync)
    "communication": DerivedPass("communication", "forward_backward", "forward_backward_local"),
}


# experiment ``classes``: the pass replaying a train step's recorded operations (``tape``), and
# those replaying a subset of its operation classes (``tape:attention+gemm``)
TAPE = "tape"


def tape_pass(subset, classes) -> str:
    """The pass that replays the classes in ``subset`` (of all ``classes``)."""
    return TAPE if set(subset) == set(classes) else f"{TAPE}:" + "+".join(sorted(subset))


def tape_classes(name: str, classes) -> frozenset[str]:
    """The classes pass ``name`` replays (inverse of :func:`tape_pass`)."""
    if name == TAPE:
        return frozenset(classes)
    if not name.startswith(f"{TAPE}:"):
        raise ValueError(f"{name!r} is no tape pass")
    return frozenset(name.split(":", 1)[1].split("+"))


def class_subsets(classes) -> list[frozenset[str]]:
    """Every non-empty subset of ``classes``, the singles first, the whole set last."""
    names = sorted(classes)
    return [
        frozenset(c) for r in range(1, len(names) + 1) for c in itertools.combinations(names, r)
    ]


def derivable(direct: tuple[str, ...]) -> list[DerivedPass]:
    """The derived passes whose two parts are both among the ``direct`` passes measured."""
    return [d for d in DERIVED_PASSES.values() if d.minuend in direct and d.subtrahend in direct]


# every pass of a single-device job, in the order tables and figures show them
PASSES = ("forward", "forward_train", "backward", "forward_backward", "optimizer", "train_step")

STRATEGIES = ("ddp", "fsdp")  # how a distributed job spreads a model over its ranks
SCALINGS = ("weak", "strong")  # weak: batch_size per rank; strong: batch_size in all
LAUNCHES = ("eager", "cuda_graph", "auto")  # how a pass's iterations are issued
METERS = ("auto", "nvml", "nvml_trace", "rapl", "none")  # what reads a job's energy

# a job on one device, in the columns distributed jobs fill
SINGLE = {"world_size": 1, "strategy": "none", "scaling": "none"}
# rows written before the launch column existed were all launched eagerly
LAUNCH_BEFORE_COLUMN = "eager"
NODE_RANK = -1  # the rank column of a distributed job's node rows (the sum over its ranks)

# columns every per-job table has; a file without them is no flopmetrics table
REQUIRED_COLUMNS = ("experiment", "pass", "precision", "status", "gpu_label")

# the headline attention convention of every FLOP column: the full score matrix, its backward at
# twice its forward (no recomputation counted), in every precision (flopmetrics.flops.counted)
ATTENTION_BACKWARD_PER_FORWARD = 2
