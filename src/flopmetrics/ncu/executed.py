"""Executed FLOPs of an MLP pass from the kernels the library chose, for any shape whose kernel
choice was read (:mod:`flopmetrics.ncu.choice`), with no ncu run of that shape.

Per GEMM call: the tiles' work as decoded from the launch (:mod:`flopmetrics.ncu.kernels`),
plus two per-output costs that a launch does not state and that training captures measure, by
precision and kernel family:

* the **epilogue** (``alpha acc + beta C`` on the CUDA cores, counted where the precision's SIMT
  metric sees it): ``e0 O + e1 S O``;
* the **split-K reduction** kernel that follows a split GEMM: ``(S + c) O``;

``O`` the outputs, as computed (``M N``) or as the tiles cover them, whichever the training
captures fit better; each term a median over the training calls, so that a few launches the
rules miss cannot move it. Plus, per pass, the **elementwise** work (sigmoid, fills) and the loss
**reduction**, ``a n d m + b d m`` (:func:`flopmetrics.ncu.gap.pointwise_terms`). A family no
training capture of the precision had borrows another precision's terms and says so in
``basis``; a kernel choice that lacks a call is refused.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from .gap import PASSES, calls, gemm_calls, pointwise_terms
from .kernels import UnknownKernel, decode

OUTPUTS = ("outputs", "outputs_padded")


def reduction_family(name: str) -> str:
    low = name.lower()
    if "splitkreduce" in low:
        return "cublaslt_splitkreduce"
    if "split_k" in low:
        return "xmma_split_k"
    return low.split("<")[0].split("(")[0].strip()


def decoded_calls(calls_: pd.DataFrame) -> pd.DataFrame:
    """``gemm_calls`` rows with their launches decoded; undecodable names are dropped here (a
    training capture may hold kernels no rule covers: they teach nothing)."""
    rows = []
    for r in calls_.itertuples(index=False):
        try:
            dec = decode(r.kernel, r.grid, r.M, r.N, r.K)
        except (UnknownKernel, TypeError, ValueError):
            continue
        rows.append(
            {
                **r._asdict(),
                "family": dec.family,
                "S": dec.splits,
                "tile_flops": dec.flops,
                "outputs": float(r.M * r.N),
                "outputs_padded": float(dec.outputs_padded),
            }
        )
    return pd.DataFrame(rows)


def _epilogue_fit(o: np.ndarray, s: np.ndarray, y: np.ndarray) -> tuple[tuple, float]:
    """``e0`` from the unsplit calls, ``e1`` per slice from the split ones, both medians: a few
    launches whose slices the rules miss by a step must not move the rest (least squares let
    them)."""
    single = s == 1
    e0 = float(np.median(y[single] / o[single])) if single.any() else 0.0
    rest = (y - e0 * o) / (s * o)
    e1 = float(np.median(rest[~single])) if (~single).any() else 0.0
    e0, e1 = max(e0, 0.0), max(e1, 0.0)
    return (e0, e1), float(np.median(np.abs((e0 + e1 * s) * o - y) / o))


def _reduction_fit(o: np.ndarray, s: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    c = float(np.median(y / o - s))
    return c, float(np.median(np.abs((s + c) * o - y) / o))


def _best(g: pd.DataFrame, y: np.ndarray, fit) -> tuple[str, object]:
    """The outputs variant (computed or padded) that ``fit`` explains best, and its terms."""
    s = g["S"].to_numpy(dtype=float)
    fits = {v: fit(g[v].to_numpy(dtype=float), s, y) for v in OUTPUTS}
    variant = min(fits, key=lambda v: fits[v][1])
    return variant, fits[variant][0]


def fit_epilogue(rows: pd.DataFrame) -> dict:
    """(precision, family) -> (outputs variant, (e0, e1))."""
    return {
        key: _best(g, (g["flops"] - g["tile_flops"]).to_numpy(dtype=float), _epilogue_fit)
        for key, g in rows.groupby(["precision", "family"])
    }


def fit_reduction(rows: pd.DataFrame) -> dict:
    """(precision, reduction family) -> (outputs variant, c): ``(S + c)`` FLOPs per output."""
    split = rows[rows["reduction"] != ""]
    split = split.assign(rfam=split["reduction"].map(reduction_family))
    return {
        key: _best(g, g["flops_split_k"].to_numpy(dtype=float), _reduction_fit)
        for key, g in split.groupby(["precision", "rfam"])
    }


def _lookup(terms: dict, precision: str, fam: str) -> tuple[object, str]:
    if (precision, fam) in terms:
        return terms[(precision, fam)], precision
    borrowed = sorted(k for k in terms if k[1] == fam)
    if borrowed:
        return terms[borrowed[0]], borrowed[0][0]
    return None, "none"


class ExecutedModel:
    """Terms learned on training captures (classified ncu launches with ``precision``, ``n``,
    ``d``, ``m``); :meth:`predict` reads only a kernel choice and the config."""

    def __init__(self, launches: pd.DataFrame):
        self.pointwise, parts = {}, []
        for p, g in launches.groupby("precision"):
            self.pointwise[p] = pointwise_terms(g)
            mlp = g[g["pass"].isin(PASSES) & g["n"].notna()]
            if len(mlp):
                parts.append(gemm_calls(mlp).assign(precision=p))
        rows = decoded_calls(pd.concat(parts, ignore_index=True))
        self.epilogue = fit_epilogue(rows)
        self.reduction = fit_reduction(rows)

    def call(self, precision: str, launch: dict, m: int, n: int, k: int) -> dict:
        """One GEMM call's executed FLOPs from its launch (``kernel``, ``grid``,
        ``reduction``: the split-K kernel's name or "")."""
        dec = decode(launch["kernel"], launch["grid"], m, n, k)
        outputs = {"outputs": float(m * n), "outputs_padded": float(dec.outputs_padded)}
        term, epi_basis = _lookup(self.epilogue, precision, dec.family)
        variant, (e0, e1) = term if term is not None else ("outputs", (0.0, 0.0))
        epilogue = outputs[variant] * (e0 + e1 * dec.splits)
        split_k, red_basis = 0.0, ""
        if launch.get("reduction"):
            term, red_basis = _lookup(
                self.reduction, precision, reduction_family(launch["reduction"])
            )
            if term is None:
                raise UnknownKernel(
                    f"split-K kernel {launch['reduction'][:80]!r}: no training capture has it"
                )
            rvariant, c = term
            split_k = (dec.splits + c) * outputs[rvariant]
        return {
            "kernel": launch["kernel"],
            "family": dec.family,
            "tile": "x".join(map(str, dec.tile)),
            "splits": dec.splits,
            "tiles": dec.flops,
            "epilogue": epilogue,
            "split_k": split_k,
            "basis": f"epilogue {epi_basis}" + (f", split-K {red_basis}" if red_basis else ""),
        }

    def predict(self, choice: dict, precision: str, n: int, d: int, m: int, pass_: str) -> dict:
        """Executed FLOPs of one pass. ``choice`` maps ``(role, M, N, K)`` to its launch."""
        if pass_ not in self.pointwise.get(precision, {}):
            raise ValueError(
                f"no training capture of the MLP's {pass_} in {precision}: its epilogue, "
                f"split-K and elementwise costs are unknown (captures in: "
                f"{', '.join(sorted(self.pointwise)) or 'none'})"
            )
        rows = []
        for (role, mm, nn, kk), times in Counter(calls(n, d, m, pass_)).items():
            if (role, mm, nn, kk) not in choice:
                raise ValueError(
                    f"{precision} {pass_} n{n} d{d} m{m}: the kernel choice has no {role} call "
                    f"M{mm} N{nn} K{kk} (read it on the GPU, or add the shape to the table)"
                )
            one = self.call(precision, choice[(role, mm, nn, kk)], mm, nn, kk)
            rows.append({"role": role, "M": mm, "N": nn, "K": kk, "count": times, **one})
        x = np.array([n * d * m, d * m], dtype=float)
        point = {col: float(coef @ x) for col, coef in self.pointwise[precision][pass_].items()}
        totals = {
            col: float(sum(r[col] * r["count"] for r in rows))
            for col in ("tiles", "epilogue", "split_k")
        }
        return {
            "precision": precision,
            "pass": pass_,
            "n": n,
            "d": d,
            "m": m,
            **totals,
            **point,
            "total": sum(totals.values()) + sum(point.values()),
            "calls": rows,
        }
