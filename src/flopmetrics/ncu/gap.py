"""GPU-adjusted FLOP formulas for the MLP: what a GPU executes for (n, d, m), from physically
meaningful terms learned on training configs and judged on configs they never saw.

Executed FLOPs of a pass = sum over its GEMM calls of
  * **GEMM over-execution**: the kernel computes whole tiles, ``2 x pad(M', t_m) x pad(N', t_n)
    x S x pad(K / S, t_k) x c`` (``M', N'`` the library's orientation of the output, ``S`` the
    split-K slices; the tile is read from the kernel's name where it says it, e.g.
    ``nvjet_sm90_tst_64x8_64x16``, ``tilesize128x128x8``, ``sgemm_64x64_8x5``; ``c`` absorbs what
    a kernel executes beyond its tiles, 1 on the H100's tensor-core GEMMs),
  * **split-K reduction**: ``r x M x N`` (partial sums added per output element; ``r = S + 1``
    on the kernels seen),
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

TILES = (8, 16, 24, 32, 40, 48, 64, 96, 112, 128, 160, 192, 256, 320)
ELEMENTWISE = ("elementwise", "setup", "other")


def calls(n: int, d: int, m: int, pass_: str) -> list[tuple[str, int, int, int]]:
    if pass_ == "forward":
        return [("fwd", d, m, d)] * n
    if pass_ == "backward":
        return [("dW", d, d, m), ("dX", d, m, d)] * (n - 1) + [("dW", d, d, m)]
    return []


def gemm_calls(launches: pd.DataFrame) -> pd.DataFrame:
    """One row per GEMM call of each (label, pass) of MLP launches (columns ``n``, ``d``, ``m``):
    its role and shape, the GEMM kernel, its executed FLOPs and those of the split-K reductions
    that follow it."""
    out = []
    for (label, p), g in launches.groupby(["label", "pass"], sort=False):
        n, d, m = (int(g[k].iloc[0]) for k in ("n", "d", "m"))
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
    df = pd.DataFrame(out)
    per_output = df["flops_split_k"] / (df["M"] * df["N"])
    df["splits"] = np.where(per_output > 0.5, np.maximum(1, np.round(per_output) - 1), 1).astype(int)
    return df


NAME_TILES = (  # (pattern, which groups are t_m, t_n, t_k)
    (re.compile(r"nvjet_\w*?_(\d+)x(\d+)_(\d+)x\d+"), (1, 2, 3)),
    (re.compile(r"tilesize(\d+)x(\d+)x(\d+)"), (1, 2, 3)),
    (re.compile(r"sgemm_(\d+)x(\d+)_(\d+)x\d+"), (1, 2, 3)),
    (re.compile(r"gemm_(\d+)x(\d+)"), (1, 2, None)),
)


def name_tile(kernel: str):
    """(t_m, t_n, t_k or None) as the kernel's name states them, or None."""
    for pattern, groups in NAME_TILES:
        m = pattern.search(kernel)
        if m:
            return tuple(int(m.group(g)) if g else None for g in groups)
    return None


def padded(rows: pd.DataFrame, swap: bool, tm: int, tn: int, tk: int) -> np.ndarray:
    m, n, k, splits = (rows[c].to_numpy(dtype=float) for c in ("M", "N", "K", "splits"))
    a, b = (n, m) if swap else (m, n)
    per_slice = np.ceil(k / splits)
    return 2.0 * np.ceil(a / tm) * tm * np.ceil(b / tn) * tn * splits * np.ceil(per_slice / tk) * tk


def fit_kernel(rows: pd.DataFrame, kernel: str = "") -> dict:
    """Orientation, tile and factor ``c`` that explain a kernel's executed FLOPs best (least
    spread, then ``c`` nearest 1); among equally good tiles, the one its name states (training
    shapes often leave a tile open)."""
    stated = name_tile(kernel) or (None, None, None)
    best = None
    for swap, tm, tn, tk in itertools.product((False, True), TILES, TILES, TILES):
        ratio = rows["flops"].to_numpy() / padded(rows, swap, tm, tn, tk)
        spread = float(np.max(np.abs(np.log(ratio / np.median(ratio)))))
        unnamed = sum(t != s for t, s in zip((tm, tn, tk), stated) if s is not None)
        key = (round(spread, 6), round(abs(math.log(float(np.median(ratio)))), 6), unnamed, tm * tn * tk)
        if best is None or key < best[0]:
            best = (key, {"swap": swap, "tile": (tm, tn, tk), "c": float(np.median(ratio))})
    return best[1]


class GapModel:
    """Fitted on the launches of training configs of one GPU and precision (classified)."""

    def __init__(self, launches: pd.DataFrame):
        self.calls = gemm_calls(launches)
        self.kernels = {k: fit_kernel(g, k) for k, g in self.calls.groupby("kernel")}
        self.calls["k_per_slice"] = np.ceil(self.calls["K"] / self.calls["splits"])
        self.calls["split_k_per_output"] = self.calls["flops_split_k"] / (self.calls["M"] * self.calls["N"])
        self.pointwise = {}
        for p, g in launches.groupby("pass"):
            per = g.groupby(["n", "d", "m"]).apply(lambda x: pd.Series({
                "elementwise": x.loc[x["class"].isin(ELEMENTWISE), "flops"].sum(),
                "reduction": x.loc[x["class"] == "reduction", "flops"].sum()}), include_groups=False)
            n, d, m = (per.index.get_level_values(k).to_numpy(dtype=float) for k in ("n", "d", "m"))
            X = np.column_stack([n * d * m, d * m])
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
            # the neighbour's slice length, not its slice count: the library splits K into chunks
            splits = max(1, math.ceil(kk / near["k_per_slice"])) if near["splits"] > 1 else 1
            call = pd.DataFrame({"M": [mm], "N": [nn], "K": [kk], "splits": [splits]})
            gemm += float(padded(call, k["swap"], *k["tile"])[0]) * k["c"]
            split_k += (splits + 1) * mm * nn * (near["split_k_per_output"] / (near["splits"] + 1)) if splits > 1 else 0.0
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


def held_out_errors(launches: pd.DataFrame, held_out: float, seed: int) -> pd.DataFrame:
    """Per GPU and precision of the MLP launches (classified): fit on the training configs, and
    every config's forward and backward total with its prediction, error and ``held_out`` flag
    (a seeded share, plus d=128 m=16 always)."""
    from ..flops import analytic

    out = []
    mlp = (launches[launches["label"].str.startswith("mlp") & launches["pass"].isin(["forward", "backward"])]
           if len(launches) else launches)
    for (gpu, precision), g in (mlp.groupby(["gpu_label", "precision"]) if len(mlp) else ()):
        configs = g[["n", "d", "m"]].drop_duplicates().sort_values(["n", "d", "m"]).reset_index(drop=True)
        held = split(configs, held_out, seed, lambda r: r.d == 128 and r.m == 16)
        keys = set(map(tuple, configs[held].to_numpy()))
        is_held = pd.Series([k in keys for k in zip(g["n"], g["d"], g["m"])], index=g.index)
        if is_held.all() or not is_held.any():
            continue  # nothing to fit on, or nothing to judge
        totals = g.groupby(["n", "d", "m", "pass"], as_index=False)["flops"].sum()
        e = evaluate(GapModel(g[~is_held]), totals)
        e["held_out"] = [k in keys for k in zip(e["n"], e["d"], e["m"])]
        e["flops_analytic"] = [analytic.mlp_flops(p, int(n), int(d), int(m), "ours").total
                               for n, d, m, p in zip(e["n"], e["d"], e["m"], e["pass"])]
        out.append(e.assign(gpu_label=gpu, precision=precision))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(
        columns=["gpu_label", "precision", "n", "d", "m", "pass", "flops", "predicted", "error_pct", "held_out",
                 "flops_analytic"])
