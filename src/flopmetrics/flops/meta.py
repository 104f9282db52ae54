"""Running a model on PyTorch's meta device (no weights, no memory, no arithmetic: how
flopmetrics counts a model's FLOPs and records its kernels), and transformers' and torch's
refusals worded as one :class:`ModelConfigError` that names the model and what was done."""

from __future__ import annotations

import contextlib

from ..contracts.errors import ModelConfigError


class ExpertsInBf16Only(ModelConfigError):
    """A mixture of experts whose experts run as PyTorch's grouped GEMM, asked to run in
    another precision than bf16, which that GEMM refuses (on a GPU, and on the meta device)."""


@contextlib.contextmanager
def refused(what: str, *passed: type):
    """transformers' and torch's refusals, which come in many types, as one
    :class:`ModelConfigError` saying ``transformers <what>`` and the refusal's first words
    (the ``passed`` types, and a :class:`ModelConfigError`, go through as they are: a
    ``ValueError`` is transformers' way to refuse an attention implementation)."""
    try:
        yield
    except (ModelConfigError, *passed):
        raise
    except Exception as err:
        message = " ".join(str(err).split())[:300]
        raise ModelConfigError(f"transformers {what}: {type(err).__name__}: {message}") from None


@contextlib.contextmanager
def on_meta(fields: dict):
    """Around a pass of a model on the meta device (no weights: how flopmetrics counts a
    model's FLOPs and kernels): a failure there names the model and what was being done, not
    only a tensor's complaint (a model whose code reads tensor values, ``Tensor.item()``, cannot
    run without them). Two of transformers' mask tests read values, and a weightless pass knows
    their answers (:data:`_META_ANSWERS`): it has no padding, so a mask is all ones (the mask
    BioGPT or BART build where none is given), and no packed sequences (Gemma 4's test)."""
    # late: transformers takes seconds to import, and only a pass of a model needs it
    from transformers import masking_utils

    kind = fields.get("model_type")
    originals = {n: getattr(masking_utils, n) for n in _META_ANSWERS if hasattr(masking_utils, n)}
    for name, original in originals.items():
        setattr(masking_utils, name, _answered(original, _META_ANSWERS[name]))
    try:
        with refused(
            f"{kind!r} code fails on the meta device, where flopmetrics runs a model "
            "without its weights to count its FLOPs and kernels"
        ):
            with _experts_in_bf16_only(kind):
                yield
    finally:
        for name, original in originals.items():
            setattr(masking_utils, name, original)


# transformers.masking_utils' tests of tensor values, and their answer on the meta device
_META_ANSWERS = {"fast_all": True, "find_packed_sequence_indices": None}


def _answered(original, answer):
    return lambda t, *args, **kw: answer if t.device.type == "meta" else original(t, *args, **kw)


@contextlib.contextmanager
def _experts_in_bf16_only(kind: str):
    """PyTorch's grouped GEMM refuses other operands than bf16 on the meta device as on a GPU
    (its meta function holds the CUDA kernel's checks): say so, not that meta is at fault."""
    try:
        yield
    except RuntimeError as err:
        if "Expected inputs of BF16 type" not in str(err):
            raise
        raise ExpertsInBf16Only(
            f"transformers runs {kind!r}'s experts with PyTorch's grouped GEMM, which takes bf16 "
            "operands only: a step in another precision (bf16-mixed keeps fp32 weights) fails "
            "on a GPU as well"
        ) from None
