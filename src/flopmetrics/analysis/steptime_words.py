"""What each slower kind of kernel of the step-time model
(:data:`~flopmetrics.analysis.steptime.SLOW`) is, in an estimate's words."""

from __future__ import annotations

# each kind: (in full, in short)
KIND_WORDS = {
    "unaligned": (
        "GEMMs with an odd dimension (cuBLAS's one-element kernels)",
        "unaligned GEMMs",
    ),
    "align2": (
        "GEMMs with an even dimension not a multiple of 8 (cuBLAS's two-element kernels)",
        "align2 GEMMs",
    ),
    "masked": ("attention given a mask (ALiBi's bias, a sliding window)", "masked attention"),
    "attention": ("the fused causal attention kernel", "attention"),
    "fp32": (
        "GEMMs on fp32 operands (CUDA cores: PyTorch's math attention, fp32 scores)",
        "fp32 GEMMs",
    ),
    "grouped": ("grouped GEMMs (a mixture of experts' experts)", "grouped GEMMs"),
    "dropout": ("fused attention given dropout (a random number drawn per score)", "dropout"),
}
