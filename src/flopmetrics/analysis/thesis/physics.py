"""Judge a row against every datasheet variant its GPU name may stand for.

A thesis GPU name such as ``h100`` does not say SXM or PCIe, and the limits differ (FLOPs/J
limit = dense peak / TDP: 1.41 TFLOPs/J on an H100 SXM, 2.16 on a PCIe card). Two verdicts:

* **impossible on every variant**: FLOPs/J above the limit of each variant (certain);
* **impossible on the power-consistent variants**: above the limit of each variant whose TDP,
  plus :data:`~flopmetrics.energy.gates.POWER_TOLERANCE`, covers the row's own implied mean
  power (energy / time). A row at 483 W cannot have run on a 350 W H100 PCIe card, so only the
  SXM limit applies to it. Where no variant covers the power, every variant is considered and
  the ``power`` gate fails (the power itself is impossible).

A precision with no hardware path on a GPU is judged against the path that runs it (datasheet
``runs_as``: bf16 on a V100 runs as fp32 on the CUDA cores), never waved through.
"""

from __future__ import annotations

import math

from ...energy import datasheet
from ...energy.gates import POWER_TOLERANCE
from . import names


def _fmt(values: dict[str, float]) -> str:
    return ", ".join(f"{k} ({v / 1e12:.2f})" for k, v in values.items())


def judge(
    name: str,
    precision: str,
    flops_per_j: float,
    flops_per_s: float,
    power_w: float,
    table: dict | None = None,
) -> dict:
    """Per-variant verdicts and the limits the gates use, for one row."""
    table = table if table is not None else datasheet.table()
    specs = [table[k] for k in names.variants(name) if k in table]
    if not specs:
        raise names.UnknownName(f"no datasheet variant for GPU name {name!r}")
    limit = {s.key: s.max_flops_per_joule(precision) for s in specs}
    peak = {s.key: s.peak_flops(precision) for s in specs}
    impossible = [k for k in limit if flops_per_j > limit[k]]
    consistent = [s.key for s in specs if not power_w > s.tdp_w * POWER_TOLERANCE]
    judged = consistent or list(limit)
    tdp = max(s.tdp_w for s in specs)
    possible = {k: limit[k] for k in limit if k not in impossible}
    verdict = (
        f"{flops_per_j / 1e12:.3g} TFLOPs/J at {power_w:.0f} W implied: "
        + (f"possible on {_fmt(possible)}" if possible else "possible on no variant")
        + (f"; impossible on {_fmt({k: limit[k] for k in impossible})}" if impossible else "")
        + ("" if consistent else f"; the power exceeds every variant's TDP (at most {tdp:.0f} W)")
        + (f"; power-consistent: {', '.join(consistent)}" if consistent else "")
    )
    return {
        "gpu_label": specs[0].label,
        "variants": ",".join(limit),
        "variants_impossible": ",".join(impossible),
        "variants_power_consistent": ",".join(consistent),
        "precision_path": specs[0].path(precision),
        "impossible_every_variant": len(impossible) == len(limit),
        "impossible_consistent_variant": all(k in impossible for k in judged),
        # the gates' limits: the most lenient of the variants the row's power allows
        "peak_flops_per_s": max(peak[k] for k in judged),
        "max_flops_per_j": max(limit[k] for k in judged),
        "power_limit_w": tdp,
        "verdict": verdict,
    }


def limits_of(row) -> tuple[float, float]:
    """The gates' (peak FLOP/s, FLOPs/J limit) of a judged row (see :func:`judge`)."""
    peak, per_j = row.get("peak_flops_per_s"), row.get("max_flops_per_j")
    return (math.nan if peak is None else peak), (math.nan if per_j is None else per_j)
