"""Every kernel launch gets one class, by a rule that reads what a kernel does from the parts of
its name that libraries share (not one GPU's naming) and from its tensor-core counts:

==============  ==============================================================================
``setup``       random-number and initialisation kernels (``distribution_``, ``normal_``,
``uniform_``)
``attention``   fused attention (``flash``, ``fmha``, ``sdpa``, cuDNN's ``dot_do_o``,
``convert_dq``)
``split_k``     the reduction of a split-K GEMM's partial sums (``splitK``, ``split_k``)
``gemm``        matrix products: ``gemm``, ``gemv``, ``nvjet`` (cuBLASLt on Hopper), ``xmma``,
                ``cutlass``, ``wgmma``; or any other launch with tensor-core FLOPs
``reduction``   PyTorch reductions (``reduce_kernel``: the loss ``y.sum()``, norms' means)
``optimizer``   ``multi_tensor_apply``, ``adam``
``elementwise`` activations and other pointwise or gather/scatter work (``elementwise``,
                ``vectorized``, ``unrolled``, ``gather``, ``index``, ``softmax``, ``norm``,
                ``triu``,
                ``cat``, ``copy``, ``fill``)
``other``       anything else: kept, counted and reported, never dropped
==============  ==============================================================================

The thesis matched ``sgemm`` only, so Ampere's ``cutlass::Kernel`` GEMMs and Hopper's ``nvjet``
and ``xmma`` ones fell out of its totals, and it booked the loss ``reduce_kernel`` as split-K.
"""

from __future__ import annotations

import re

import pandas as pd

CLASSES = (
    "setup",
    "attention",
    "split_k",
    "gemm",
    "reduction",
    "optimizer",
    "elementwise",
    "other",
)
RULES = (
    ("setup", r"distribution_|normal_kernel|uniform_|randperm|random_"),
    ("attention", r"flash|fmha|sdpa|attention|dot_do_o|convert_dq"),
    ("split_k", r"splitk|split_k"),
    ("gemm", r"gemm|gemv|nvjet|xmma|cutlass|wgmma"),
    ("reduction", r"reduce_kernel"),
    ("optimizer", r"multi_tensor_apply|adam"),
    (
        "elementwise",
        r"elementwise|vectorized|unrolled|gather|index|softmax|norm|triu|cat_|copy|fill",
    ),
)
_COMPILED = tuple((name, re.compile(pattern)) for name, pattern in RULES)


def kernel_class(name: str, tensor_flops: float = 0.0) -> str:
    low = str(name).lower()
    for cls, pattern in _COMPILED:
        if pattern.search(low):
            return cls
    if tensor_flops and tensor_flops > 0:
        return "gemm"
    return "other"


def classify(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with a ``class`` column (see the table above)."""
    tensor = df.filter(like="flops_tensor_").sum(axis=1, min_count=1).fillna(0)
    return df.assign(
        **{"class": [kernel_class(k, t) for k, t in zip(df["kernel"], tensor, strict=False)]}
    )
