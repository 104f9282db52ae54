"""The audit a reader can use: per protocol x GPU x precision x pass, how many rows, how many are
impossible on every variant, how many on the variants their own power allows, how many imply
more power than any variant draws, and the implied power range."""

from __future__ import annotations

import pandas as pd

KEYS = ["protocol", "gpu_name", "precision", "pass"]


def summary(rows: pd.DataFrame) -> pd.DataFrame:
    g = rows.groupby(KEYS, sort=True)
    out = g.agg(
        rows=("flops", "size"),
        impossible_every_variant=("impossible_every_variant", "sum"),
        impossible_consistent_variant=("impossible_consistent_variant", "sum"),
        power_impossible=("gate_power", lambda s: int((~s.astype(bool)).sum())),
        tflops_per_j_max=("tflops_per_j", "max"),
        power_w_min=("power_mean_w", "min"),
        power_w_max=("power_mean_w", "max"),
        variants=("variants", "first"),
    ).reset_index()
    for col in ("impossible_every_variant", "impossible_consistent_variant", "power_impossible"):
        out[col] = out[col].astype(int)
    return out


def markdown(table: pd.DataFrame) -> str:
    """The summary as a Markdown table, with a totals line per protocol and pass."""
    head = (
        "| protocol | GPU | precision | pass | rows | impossible on every variant | impossible on "
        "its "
        "power-consistent variants | power above every TDP | max TFLOPs/J | implied power [W] |"
    )
    lines = [head, "|" + "---|" * 10]
    for r in table.to_dict("records"):
        lines.append(
            f"| {r['protocol']} | {r['gpu_name']} | {r['precision']} | {r['pass']} | {r['rows']} | "
            f"{r['impossible_every_variant']} | {r['impossible_consistent_variant']} | "
            f"{r['power_impossible']} | "
            f"{r['tflops_per_j_max']:.3g} | {r['power_w_min']:.0f}-{r['power_w_max']:.0f} |"
        )
    totals = (
        table.groupby(["protocol", "pass"])[
            [
                "rows",
                "impossible_every_variant",
                "impossible_consistent_variant",
                "power_impossible",
            ]
        ]
        .sum()
        .reset_index()
    )
    for r in totals.to_dict("records"):
        lines.append(
            f"| **{r['protocol']}** | all | all | {r['pass']} | {r['rows']} | "
            f"{r['impossible_every_variant']} | "
            f"{r['impossible_consistent_variant']} | {r['power_impossible']} | | |"
        )
    return "\n".join(lines) + "\n"


def html(table: pd.DataFrame) -> str:
    """The summary as a standalone HTML page (the report shows it)."""
    body = table.rename(columns={"gpu_name": "GPU"}).to_html(
        index=False, float_format=lambda v: f"{v:.3g}", border=0
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Thesis audit</title></head><body>"
        "<h1>Thesis audit: every published result, judged per datasheet variant</h1>"
        + body
        + "</body></html>\n"
    )
