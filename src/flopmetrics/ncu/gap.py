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
(its input needs no gradient). A call takes the kernel (and so tile, orientation, ``c`` and
``s``) that the library picked for the nearest training call of its role and precision
(distance in log M, log N, log K).

Every layer of the MLP has the same shape, so a pass executes ``F = n L(d, m) + C(d, m)``: ``L``
the FLOPs of one layer (its GEMMs as tiled and split, its sigmoid), ``C`` those of the pass once
(the loss reduction; in backward less the first layer's ``dX``). Where training configs of the
same ``(d, m)`` were measured (at other ``n``), ``L`` and ``C`` are read off them (the library
picks the same kernel for the same shape); elsewhere the tile terms above give them. A
prediction uses only (n, d, m), precision and what the training configs showed, never the
judged run's own kernels or counts.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter

import numpy as np
import pandas as pd

from .kernels import round_up

PASSES = ("forward", "backward")  # the MLP passes whose GEMM calls :func:`calls` lists
TILES = (8, 16, 24, 32, 40, 48, 64, 96, 112, 128, 160, 192, 256, 320)
ELEMENTWISE = ("elementwise", "setup", "other")


def calls(n: int, d: int, m: int, pass_: str) -> list[tuple[str, int, int, int]]:
    if pass_ == "forward":
        return [("fwd", d, m, d)] * n
    if pass_ == "backward":
        return [("dX", d, m, d), ("dW", d, d, m)] * (n - 1) + [("dW", d, d, m)]
    return []


def gemm_calls(launches: pd.DataFrame) -> pd.DataFrame:
    """One row per GEMM call of each (label, pass) of MLP launches (columns ``n``, ``d``, ``m``):
    its role and shape, the GEMM kernel, its executed FLOPs and those of the split-K reductions
    that follow it."""
    out = []
    for (_, label, p), g in launches.groupby(["run", "label", "pass"], sort=False):
        n, d, m = (int(g[k].iloc[0]) for k in ("n", "d", "m"))
        expected = calls(n, d, m, p)
        kind, flops, kernel = (
            g["class"].to_numpy(),
            g["flops"].to_numpy(dtype=float),
            g["kernel"].to_numpy(),
        )
        gemm_rows = np.flatnonzero(kind == "gemm")
        if len(gemm_rows) != len(expected):
            raise ValueError(
                f"{label} {p}: {len(gemm_rows)} GEMM launches, the model has {len(expected)} calls"
            )
        split_k = np.concatenate([[0.0], np.cumsum(np.where(kind == "split_k", flops, 0.0))])
        grid = g["grid"].to_numpy() if "grid" in g else np.full(len(g), None)
        bounds = list(gemm_rows) + [len(g)]
        for (role, mm, nn, kk), start, stop in zip(expected, bounds, bounds[1:], strict=False):
            reduction = [kernel[i] for i in range(start + 1, stop) if kind[i] == "split_k"]
            out.append(
                {
                    "label": label,
                    "pass": p,
                    "n": n,
                    "d": d,
                    "m": m,
                    "role": role,
                    "M": mm,
                    "N": nn,
                    "K": kk,
                    "kernel": kernel[start],
                    "grid": grid[start],
                    "reduction": reduction[0] if reduction else "",
                    "flops": flops[start],
                    "flops_split_k": split_k[stop] - split_k[start + 1],
                }
            )
    df = pd.DataFrame(out)
    per_output = df["flops_split_k"] / (df["M"] * df["N"])
    df["splits"] = np.where(per_output > 0.5, np.maximum(1, np.round(per_output) - 1), 1).astype(
        int
    )
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


def fit_kernel(rows: pd.DataFrame, kernel: str = "") -> dict:
    """Orientation, tile and factor ``c`` that explain a kernel's executed FLOPs best (least
    spread, then ``c`` nearest 1); among equally good tiles, the one its name states (training
    shapes often leave a tile open), then the smallest."""
    columns = ("M", "N", "K", "splits", "flops")
    m, n, k, splits, flops = (tuple(rows[c].to_numpy(dtype=float)) for c in columns)
    return dict(_fit(name_tile(kernel) or (None, None, None), m, n, k, splits, flops))


_GRID = np.meshgrid(TILES, TILES, TILES, indexing="ij")  # (t_m, t_n, t_k) of every tile


@functools.cache  # the folds of a cross-validation fit the same kernel on the same calls
def _fit(stated: tuple, m: tuple, n: tuple, k: tuple, splits: tuple, flops: tuple) -> tuple:
    m, n, k, splits, flops = (np.array(v) for v in (m, n, k, splits, flops))
    t = np.array(TILES, dtype=float)[:, None]
    pad_k = np.ceil(np.ceil(k / splits) / t) * t * splits  # (tile, call)
    tm, tn, tk = _GRID
    unnamed = sum((g != s for g, s in zip(_GRID, stated, strict=False) if s is not None), 0 * tm)
    keys, choices = [], []
    for swap in (False, True):
        a, b = (n, m) if swap else (m, n)
        exe = (
            2
            * (np.ceil(a / t) * t)[:, None, None]
            * (np.ceil(b / t) * t)[None, :, None]
            * pad_k[None, None]
        )
        ratio = flops / exe  # (t_m, t_n, t_k, call)
        c = np.median(ratio, axis=-1)
        spread = np.max(np.abs(np.log(ratio / c[..., None])), axis=-1)
        keys.append(
            np.stack([np.round(spread, 6), np.round(np.abs(np.log(c)), 6), unnamed, tm * tn * tk])
        )
        choices.append((swap, c))
    key = np.concatenate([x.reshape(4, -1) for x in keys], axis=1)
    best = np.lexsort(key[::-1])[0]
    swap, c = choices[best // tm.size]
    i = np.unravel_index(best % tm.size, tm.shape)
    tile = (int(tm[i]), int(tn[i]), int(tk[i]))
    return (("swap", swap), ("tile", tile), ("c", float(c[i])))


def pointwise_terms(launches: pd.DataFrame) -> dict:
    """Per pass, the coefficients of ``(n d m, d m)`` that give its elementwise work (sigmoid,
    fills) and its reductions (the loss), least squares over the MLP configs of ``launches``."""
    if "run" not in launches:
        launches = launches.assign(run="")
    point = launches.assign(
        elementwise=np.where(launches["class"].isin(ELEMENTWISE), launches["flops"], 0.0),
        reduction=np.where(launches["class"] == "reduction", launches["flops"], 0.0),
    )
    terms = {}
    for p, g in point.groupby("pass"):
        per = g.groupby(["run", "n", "d", "m"])[["elementwise", "reduction"]].sum()
        n, d, m = (per.index.get_level_values(k).to_numpy(dtype=float) for k in ("n", "d", "m"))
        X = np.column_stack([n * d * m, d * m])
        terms[p] = {
            col: np.linalg.lstsq(X, per[col].to_numpy(dtype=float), rcond=None)[0] for col in per
        }
    return terms


def config_totals(launches: pd.DataFrame) -> pd.DataFrame:
    """Executed FLOPs of each run's MLP configs, forward and backward: run, n, d, m, pass, flops."""
    mlp = launches[launches["pass"].isin(PASSES) & launches["n"].notna()]
    return mlp.groupby(["run", "n", "d", "m", "pass"], as_index=False)["flops"].sum()


class GapModel:
    """Fitted on the launches of training configs of one GPU and precision (classified), and on
    the executed totals of training configs (``totals``: n, d, m, pass, flops; by default those of
    ``launches``; the thesis published totals for configs it kept no launches of); ``calls``:
    :func:`gemm_calls` of ``launches`` (computed when not given)."""

    def __init__(
        self,
        launches: pd.DataFrame,
        totals: pd.DataFrame | None = None,
        calls: pd.DataFrame | None = None,
    ):
        if "run" not in launches:
            launches = launches.assign(run="")
        self.calls = gemm_calls(launches) if calls is None else calls
        # one count per call shape: the same call on several cards or in several configs agrees
        self.calls = self.calls.groupby(["role", "M", "N", "K", "kernel"], as_index=False).agg(
            flops=("flops", "median"),
            flops_split_k=("flops_split_k", "median"),
            splits=("splits", "max"),
        )
        self._near, self._by_role, self._calls_done = {}, {}, {}
        self.kernels = {k: fit_kernel(g, k) for k, g in self.calls.groupby("kernel")}
        self.calls["k_per_slice"] = np.ceil(self.calls["K"] / self.calls["splits"])
        self.calls["split_k_per_output"] = self.calls["flops_split_k"] / (
            self.calls["M"] * self.calls["N"]
        )
        self.pointwise = pointwise_terms(launches)
        totals = config_totals(launches) if totals is None else totals
        # one executed count per (pass, d, m, n): runs of one config on several cards agree
        med = totals.groupby(["pass", "d", "m", "n"])["flops"].median()
        by_shape = {}
        for (p, d, m, n), flops in med.items():  # one groupby: a median per group is slow
            by_shape.setdefault((p, d, m), {})[n] = flops
        self.shapes = {key: pd.Series(v, name="flops") for key, v in by_shape.items()}

    def _nearest(self, role: str, mm: int, nn: int, kk: int) -> dict:
        key = (role, mm, nn, kk)
        if key not in self._near:
            if role not in self._by_role:  # numpy per role: this runs for every judged call
                c = self.calls[self.calls["role"] == role].reset_index(drop=True)
                self._by_role[role] = (c, np.log(c[["M", "N", "K"]].to_numpy(dtype=float)))
            c, logs = self._by_role[role]
            dist = ((logs - np.log([mm, nn, kk])) ** 2).sum(axis=1)
            self._near[key] = c.iloc[int(np.argmin(dist))].to_dict()
        return self._near[key]

    def _call(self, role: str, mm: int, nn: int, kk: int) -> tuple[float, float]:
        """Executed (GEMM, split-K reduction) FLOPs of one call: as measured where a training
        config made the same call, else from the nearest call's kernel, tile and slice length."""
        key = (role, mm, nn, kk)
        if key not in self._calls_done:
            self._calls_done[key] = self._one_call(role, mm, nn, kk)
        return self._calls_done[key]

    def _one_call(self, role: str, mm: int, nn: int, kk: int) -> tuple[float, float]:
        near = self._nearest(role, mm, nn, kk)
        if (near["M"], near["N"], near["K"]) == (mm, nn, kk):
            return float(near["flops"]), float(near["flops_split_k"])
        k = self.kernels[near["kernel"]]
        # the neighbour's slice length, not its slice count: the library splits K into chunks
        splits = max(1, math.ceil(kk / near["k_per_slice"])) if near["splits"] > 1 else 1
        a, b = (nn, mm) if k["swap"] else (mm, nn)
        tm, tn, tk = k["tile"]
        per_slice = math.ceil(kk / splits)
        tiled = round_up(a, tm) * round_up(b, tn) * splits * round_up(per_slice, tk)
        gemm = 2.0 * tiled * k["c"]
        per_output = near["split_k_per_output"] / (near["splits"] + 1)
        return gemm, (splits + 1) * mm * nn * per_output if splits > 1 else 0.0

    def tiles(self, n: int, d: int, m: int, pass_: str) -> dict:
        """The prediction from GEMM calls, split-K and per-element terms alone."""
        gemm = split_k = 0.0
        for (role, mm, nn, kk), times in Counter(calls(n, d, m, pass_)).items():
            g, s = self._call(role, mm, nn, kk)
            gemm, split_k = gemm + times * g, split_k + times * s
        x = np.array([n * d * m, d * m], dtype=float)
        point = {col: float(coef @ x) for col, coef in self.pointwise.get(pass_, {}).items()}
        return {
            "gemm": gemm,
            "split_k": split_k,
            **point,
            "total": gemm + split_k + sum(point.values()),
        }

    def predict(self, n: int, d: int, m: int, pass_: str) -> dict:
        """``total`` executed FLOPs, ``layer`` (L) and ``once`` (C), and the ``basis`` they came
        from: ``shape`` (training configs of this (d, m) at two or more n), ``shape at one n``
        (its ``C`` from the tile terms) or ``tiles``."""
        tiles = self.tiles(n, d, m, pass_)
        layer = self.tiles(2, d, m, pass_)["total"] - self.tiles(1, d, m, pass_)["total"]
        once = tiles["total"] - n * layer
        seen = self.shapes.get((pass_, d, m))
        basis = "tiles"
        if seen is not None and len(seen) >= 2:
            layer, once = np.polyfit(
                seen.index.to_numpy(dtype=float), seen.to_numpy(dtype=float), 1
            )
            basis = "shape"
        elif seen is not None and len(seen) == 1:
            layer = (float(seen.iloc[0]) - once) / float(seen.index[0])
            basis = "shape at one n"
        return {
            **tiles,
            "layer": float(layer),
            "once": float(once),
            "total": float(n * layer + once),
            "tiles": tiles["total"],
            "basis": basis,
        }
