"""The GPU-adjusted formulas (:mod:`flopmetrics.ncu.gap`) judged out of fold: every MLP config
predicted by formulas fitted on the others, with its shape's other depths seen (``config``) or
no depth of its shape seen (``shape``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..flops import analytic
from . import choice
from .executed import ExecutedModel
from .gap import PASSES, GapModel, config_totals, gemm_calls
from .kernels import UnknownKernel


def evaluate(model: GapModel, measured: pd.DataFrame) -> pd.DataFrame:
    """``measured``: n, d, m, pass, flops (totals). Adds the prediction, its basis and percent
    error."""
    pred = [
        model.predict(int(n), int(d), int(m), p)
        for n, d, m, p in zip(
            measured["n"], measured["d"], measured["m"], measured["pass"], strict=False
        )
    ]
    out = measured.assign(predicted=[x["total"] for x in pred], basis=[x["basis"] for x in pred])
    out["error_pct"] = 100 * (out["predicted"] - out["flops"]) / out["flops"]
    return out


def folds(configs: pd.DataFrame, k: int, seed: int, unseen_shapes: bool = False) -> np.ndarray:
    """A fold (0 .. k-1) per config (columns n, d, m), seeded: every config is judged once, by
    formulas fitted on the other folds. The configs of one shape (d, m) are dealt round the folds,
    so a judged config's shape is known from its other depths n where it has any; with
    ``unseen_shapes`` each shape stays in one fold (no depth of it seen: the tile terms alone)."""
    rng = np.random.default_rng(seed)
    shapes = configs.groupby(["d", "m"], sort=True).indices
    fold = np.empty(len(configs), dtype=int)
    if unseen_shapes:
        for f, idx in zip(rng.permutation(len(shapes)) % k, shapes.values(), strict=False):
            fold[idx] = f
        return fold
    for idx in shapes.values():
        fold[idx] = (rng.integers(k) + rng.permutation(len(idx))) % k
    return fold


def cross_validated(
    launches: pd.DataFrame,
    k: int,
    seed: int,
    totals: pd.DataFrame | None = None,
    unseen_shapes: bool = False,
    calls: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Each config's executed FLOPs against the formulas' prediction, fitted without its fold
    (``k`` folds, ``seed``, see :func:`folds`). ``launches``: one GPU and precision, classified;
    ``totals``: the configs to judge (default: every run's totals of ``launches``); ``calls``:
    :func:`~flopmetrics.ncu.gap.gemm_calls` of ``launches`` (computed when not given)."""
    if "run" not in launches:
        launches = launches.assign(run="")
    totals = config_totals(launches) if totals is None else totals
    configs = (
        totals[["n", "d", "m"]]
        .drop_duplicates()
        .sort_values(["n", "d", "m"])
        .reset_index(drop=True)
    )
    configs["fold"] = folds(configs, k, seed, unseen_shapes)
    totals = totals.merge(configs, on=["n", "d", "m"])
    launches = launches.merge(configs, on=["n", "d", "m"], how="left")
    # a config's calls are the same in every fold that trains on it: decoded once
    calls = (gemm_calls(launches) if calls is None else calls).merge(
        configs, on=["n", "d", "m"], how="left"
    )
    out = []
    for f in range(k):
        train = totals[totals["fold"] != f]
        if train.empty or (totals["fold"] == f).sum() == 0:
            continue
        fitted = launches["fold"].notna() & (launches["fold"] != f)
        fitted_calls = calls[calls["fold"].notna() & (calls["fold"] != f)].drop(columns="fold")
        model = GapModel(launches[fitted], train, fitted_calls)
        out.append(evaluate(model, totals[totals["fold"] == f]))
    return pd.concat(out, ignore_index=True)


SPLITS = {"config": False, "shape": True}  # split name -> unseen_shapes


def held_out_errors(launches: pd.DataFrame, k: int, seed: int) -> pd.DataFrame:
    """Per GPU and precision of the MLP launches (classified): every run's config, forward and
    backward, judged out of fold twice (``split``: ``config``, its shape known from other depths
    where measured; ``shape``, no depth of its shape seen), with the prediction, its ``basis``,
    the percent error, the ``fold`` and the analytic FLOPs."""

    out = []
    mlp = (
        launches[launches["label"].str.startswith("mlp") & launches["pass"].isin(PASSES)]
        if len(launches)
        else launches
    )
    for (gpu, precision), g in mlp.groupby(["gpu_label", "precision"]) if len(mlp) else ():
        if g[["d", "m"]].drop_duplicates().shape[0] < k:
            continue  # too few shapes to leave a fold of them out
        calls = gemm_calls(g)
        for name, unseen in SPLITS.items():
            e = cross_validated(g, k, seed, unseen_shapes=unseen, calls=calls)
            e["flops_analytic"] = [
                analytic.mlp_flops(p, int(n), int(d), int(m), "ours").total
                for n, d, m, p in zip(e["n"], e["d"], e["m"], e["pass"], strict=False)
            ]
            out.append(e.assign(gpu_label=gpu, precision=precision, split=name))
    return (
        pd.concat(out, ignore_index=True)
        if out
        else pd.DataFrame(
            columns=[
                "gpu_label",
                "precision",
                "split",
                "run",
                "n",
                "d",
                "m",
                "pass",
                "flops",
                "predicted",
                "basis",
                "error_pct",
                "fold",
                "flops_analytic",
            ]
        )
    )


def kernel_choice_errors(launches: pd.DataFrame, tables: dict, k: int, seed: int) -> pd.DataFrame:
    """Per GPU and precision of the MLP launches (classified): every config whose GEMM calls the
    kernel-choice table of that GPU holds (``tables``: GPU label -> ``calls_of`` of its tables),
    predicted from its kernel choice (:mod:`flopmetrics.ncu.executed`) by terms fitted on the
    other folds, each shape in one fold: split ``kernel choice``. Configs the table lacks are
    not judged here; ``attrs["refused"]`` counts them."""
    out, refused = [], 0
    mlp = launches[launches["label"].str.startswith("mlp") & launches["pass"].isin(PASSES)]
    for (gpu, precision), g in mlp.groupby(["gpu_label", "precision"]):
        table = choice.for_precision(tables.get(gpu, {}), precision)
        totals = config_totals(g).rename(columns={"pass": "pass_"})
        configs = totals[["n", "d", "m"]].drop_duplicates().sort_values(["n", "d", "m"])
        configs = configs.reset_index(drop=True)
        if not table or configs[["d", "m"]].drop_duplicates().shape[0] < k:
            continue
        configs["fold"] = folds(configs, k, seed, unseen_shapes=True)
        g = g.merge(configs, on=["n", "d", "m"])
        for f, judged in totals.merge(configs, on=["n", "d", "m"]).groupby("fold"):
            rows, n_refused = predicted(ExecutedModel(g[g["fold"] != f]), table, precision, judged)
            out += [{**row, "gpu_label": gpu} for row in rows]
            refused += n_refused
    columns = ["gpu_label", "precision", "run", "n", "d", "m", "pass", "flops", "fold"]
    df = pd.DataFrame(out, columns=[*columns, "predicted", "error_pct", "flops_analytic"])
    df = df.assign(split="kernel choice", basis="kernel choice")
    df.attrs["refused"] = refused
    return df


def predicted(
    model: ExecutedModel, table: dict, precision: str, totals: pd.DataFrame
) -> tuple[list[dict], int]:
    """Each config and pass of ``totals`` (:func:`config_totals`, its ``pass`` as ``pass_``)
    predicted from its kernel choice in ``table`` by ``model``, beside what ncu counted
    (``flops``) and the closed form; and how many the table or the model could not answer."""
    rows, refused = [], 0
    for r in totals.itertuples(index=False):
        n, d, m = int(r.n), int(r.d), int(r.m)
        try:
            p = model.predict(table, precision, n, d, m, r.pass_)
        except (ValueError, UnknownKernel):
            refused += 1
            continue
        row = {k: v for k, v in r._asdict().items() if k != "pass_"}
        rows.append(
            {
                **row,
                "pass": r.pass_,
                "precision": precision,
                "predicted": p["total"],
                "error_pct": 100 * (p["total"] - r.flops) / r.flops,
                "flops_analytic": analytic.mlp_flops(r.pass_, n, d, m, "ours").total,
            }
        )
    return rows, refused
