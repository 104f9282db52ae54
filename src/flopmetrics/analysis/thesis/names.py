"""What the thesis's GPU names stand for in our datasheet (``flopmetrics/data/datasheet.yaml``).

A name that does not say the form factor stands for every variant it may be: the audit judges a
row against each and records which ones its own power rules out (:mod:`.physics`).
"""

from __future__ import annotations

VARIANTS = {
    "a100": ("a100_40gb_sxm", "a100_80gb_sxm", "a100_pcie", "a100_80gb_pcie"),  # results_optimized
    "a100-40g": ("a100_40gb_sxm", "a100_pcie"),
    "a100-80g": ("a100_80gb_sxm", "a100_80gb_pcie"),
    "a40": ("a40",),
    "l40": ("l40",),
    "l40s": ("l40s",),
    "h100": ("h100_sxm", "h100_pcie"),
    "v100": ("v100_sxm2", "v100_pcie"),
}
# the thesis's analysis notebook plotted the baseline `l40_*` files as "L40S"
NOTEBOOK_NAMES = {"l40": "l40s"}
# the thesis's derived tables name GPUs in capitals; `A100` covers both baseline A100 files
TABLE_NAMES = {
    "a100-40g": "A100",
    "a100-80g": "A100",
    "a40": "A40",
    "l40": "L40S",
    "a100": "A100",
    "h100": "H100",
    "l40s": "L40S",
    "v100": "V100",
}


class UnknownName(ValueError):
    pass


def variants(name: str) -> tuple[str, ...]:
    try:
        return VARIANTS[name]
    except KeyError:
        raise UnknownName(f"unknown GPU name {name!r} (known: {', '.join(VARIANTS)})") from None
