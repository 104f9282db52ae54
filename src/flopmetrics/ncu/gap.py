"""GPU-adjusted FLOP formulas for the MLP: what a GPU executes for (n, d, m), from physically
meaningful terms learned on training configs and judged on configs they never saw.

Executed FLOPs of a pass = sum over its GEMM calls of
  * **GEMM over-execution**: the kernel computes whole tiles, ``2 x pad(M', t_m) x pad(N', t_n)
    x pad(K, t_k) x c`` (``M', N'`` the library's orientation of the output; ``c`` absorbs what a
    kernel executes beyond its tiles, 1 on the H100's tensor-core GEMMs),
  * **split-K reduction**: ``s x M x N`` (partial sums added per output element),
plus **elementwise** work ``a x n d m + b x d m`` (sigmoid forward or backward on every layer;
the loss gradient's fill) and the **loss reduction** ``r x d m``.

The GEMM calls of a pass follow from the model: forward ``n x (d, m, d)``; backward, layer by
layer from the last, ``dW = (d, d, m)`` then ``dX = (d, m, d)``, the first layer's ``dX`` absent
(its input needs no gradient). A held-out call takes the kernel (and so tile, orientation, ``c``
and ``s``) that the library picked for the nearest training call of its role and precision
(distance in log M, log N, log K): a prediction uses only (n, d, m), precision and what the
training configs showed, never the held-out run's own kernels or counts.
"""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pandas as pd

TILES = (8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 320)
ELEMENTWISE = ("elementwise", "setup", "other")


def calls(n: int, d: int, m: int, pass_: str) -> list[tuple[str, int, int, int]]:
    if pass_ == "forward":
        return [("fwd", d, m, d)] * n
    if pass_ == "backward":
        return [("dW", d, d, m), ("dX", d, m, d)] * (n - 1) + [("dW", d, d, m)]
    return []


def pad(x: int, t: int) -> int:
    return -(-x // t) * t


def gemm_calls(launches: pd.DataFrame) -> pd.DataFrame:
    """One row per GEMM call of each (label, pass): its role and shape, the GEMM kernel, its
    executed FLOPs and those of the split-K reductions that follow it."""
    out = []
    for (label, p), g in launches.groupby(["label", "pass"], sort=False):
        n, d, m = (int(v) for v in re.findall(r"n(\d+) d(\d+) m(\d+)", label)[0])
        expected = calls(n, d, m, p)
        gemm_rows = np.flatnonzero(g["class"].to_numpy() == "gemm")
        if len(gemm_rows) != len(expected):
            raise ValueError(f"{label} {p}: {len(gemm_rows)} GEMM launches, the model has {len(expected)} calls")
        bounds = list(gemm_rows) + [len(g)]
        for (role, mm, nn, kk), start, stop in zip(expected, bounds, bounds[1:]):
            tail = g.iloc[start + 1:stop]
            out.append({"label": label, "pass": p, "n": n, "d": d, "m": m, "role": role, "M": mm, "N": nn, "K": kk,
                        "kernel": g["kernel"].iloc[start], "flops": g["flops"].iloc[start],
                        "flops_split_k": tail.loc[tail["class"] == "split_k", "flops"].sum()})
    return pd.DataFrame(out)


def fit_kernel(rows: pd.DataFrame) -> dict:
    """The tile, orientation and factor ``c`` that explain a kernel's executed FLOPs best."""
    best = None
    for swap, tm, tn, tk in itertools.product((False, True), TILES, TILES, TILES):
        a, b = (rows["N"], rows["M"]) if swap else (rows["M"], rows["N"])
        padded = 2.0 * a.map(lambda x: pad(x, tm)) * b.map(lambda x: pad(x, tn)) * rows["K"].map(lambda x: pad(x, tk))
        ratio = rows["flops"] / padded
        spread = float(np.std(np.log(ratio))) if len(rows) > 1 else 0.0
        key = (round(spread, 9), abs(math.log(float(np.median(ratio)))), tm * tn * tk)
        if best is None or key < best[0]:
            best = (key, {"swap": swap, "tile": (tm, tn, tk), "c": float(np.median(ratio))})
    return best[1]


class GapModel:
    """Fitted on the launches of training configs of one GPU and precision (classified)."""

    def __init__(self, launches: pd.DataFrame):
        self.calls = gemm_calls(launches)
        self.kernels = {k: fit_kernel(g) for k, g in self.calls.groupby("kernel")}
        self.calls["split_k_per_output"] = self.calls["flops_split_k"] / (self.calls["M"] * self.calls["N"])
        self.pointwise = {}
        for p, g in launches.groupby("pass"):
            per = g.groupby("label").apply(lambda x: pd.Series({
                "elementwise": x.loc[x["class"].isin(ELEMENTWISE), "flops"].sum(),
                "reduction": x.loc[x["class"] == "reduction", "flops"].sum()}), include_groups=False)
            shape = per.index.to_series().str.extract(r"n(\d+) d(\d+) m(\d+)").astype(float)
            X = np.column_stack([shape[0] * shape[1] * shape[2], shape[1] * shape[2]])
            self.pointwise[p] = {col: np.linalg.lstsq(X, per[col].to_numpy(), rcond=None)[0] for col in per}

    def _nearest(self, role: str, mm: int, nn: int, kk: int) -> pd.Series:
        c = self.calls[self.calls["role"] == role]
        dist = (np.log(c["M"] / mm) ** 2 + np.log(c["N"] / nn) ** 2 + np.log(c["K"] / kk) ** 2)
        return c.loc[dist.idxmin()]

    def predict(self, n: int, d: int, m: int, pass_: str) -> dict:
        gemm = split_k = 0.0
        for role, mm, nn, kk in calls(n, d, m, pass_):
            near = self._nearest(role, mm, nn, kk)
            k = self.kernels[near["kernel"]]
            a, b = (nn, mm) if k["swap"] else (mm, nn)
            tm, tn, tk = k["tile"]
            gemm += 2.0 * pad(a, tm) * pad(b, tn) * pad(kk, tk) * k["c"]
            split_k += near["split_k_per_output"] * mm * nn
        x = np.array([n * d * m, d * m], dtype=float)
        point = {col: float(coef @ x) for col, coef in self.pointwise.get(pass_, {}).items()}
        total = gemm + split_k + sum(point.values())
        return {"gemm": gemm, "split_k": split_k, **point, "total": total}


def evaluate(model: GapModel, measured: pd.DataFrame) -> pd.DataFrame:
    """``measured``: n, d, m, pass, flops (totals). Adds the prediction and its percent error."""
    pred = [model.predict(int(r.n), int(r.d), int(r.m), r._4)["total"] for r in measured[["n", "d", "m", "pass"]]
            .itertuples()]
    out = measured.assign(predicted=pred)
    out["error_pct"] = 100 * (out["predicted"] - out["flops"]) / out["flops"]
    return out


def split(configs: pd.DataFrame, fraction: float, seed: int, always_held_out) -> pd.Series:
    """True for held-out configs: a seeded share of them, plus every config ``always_held_out`` names."""
    rng = np.random.default_rng(seed)
    held = pd.Series(rng.random(len(configs)) < fraction, index=configs.index)
    return held | configs.apply(always_held_out, axis=1)
