"""Expand the config's sweeps into jobs and their output files; each job's parameters come from
:mod:`flopmetrics.jobs.params`."""

from __future__ import annotations

import itertools

from ..contracts import paths
from ..flops.models import resolve
from ..jobs.params import configurations


def grid(config: dict, experiment: str) -> list[dict]:
    """Wildcard values of every job of ``experiment`` (mlp, llm, matmul), in a stable order."""
    if experiment == "mlp":
        mlp = config["mlp"]
        return [
            {"target": t, "precision": p, "n": n, "d": d, "m": m}
            for t, p, n, d, m in itertools.product(
                mlp["targets"], mlp["precisions"], mlp["n"], mlp["d"], mlp["m"]
            )
        ]
    if experiment == "llm":
        llm = config["llm"]
        names = [resolve(s)[0] for s in llm["models"]]
        return [
            {"target": t, "model": mo, "precision": p, "batch_size": b, "seq_len": s}
            for t, mo, p, b, s in itertools.product(
                llm["targets"], names, llm["precisions"], llm["batch_size"], llm["seq_len"]
            )
        ]
    if experiment == "distributed":
        ds = config["distributed"]
        names = [resolve(s)[0] for s in ds["models"]]
        keys = (
            "target",
            "model",
            "precision",
            "strategy",
            "scaling",
            "world_size",
            "batch_size",
            "seq_len",
        )
        return [
            dict(zip(keys, v))
            for v in itertools.product(
                ds["targets"],
                names,
                ds["precisions"],
                ds["strategy"],
                ds["scaling"],
                ds["world_size"],
                ds["batch_size"],
                ds["seq_len"],
            )
        ]
    if experiment == "matmul":
        mm = config["matmul"]
        return [
            {"target": t, "precision": p, "size": n}
            for t, p, n in itertools.product(mm["targets"], mm["precisions"], mm["sizes"])
        ]
    raise ValueError(f"unknown experiment {experiment!r}")


def raw_files(config: dict, experiment: str) -> list[str]:
    return [paths.RAW[experiment].format(**w) for w in grid(config, experiment)]


def ranks_files(config: dict) -> list[str]:
    """The per-rank tables of every distributed job."""
    return [paths.RANKS.format(**w) for w in grid(config, "distributed")]


def job_outputs(config: dict, experiment: str, kind: str) -> list[str]:
    """A profiling rule's outputs (``kind``: RAW or TRACE): one file per configuration, the job's
    own wildcards (:data:`~flopmetrics.contracts.paths.JOB_WILDCARDS`) left in place."""
    template = getattr(paths, kind)[experiment]
    for w in paths.JOB_WILDCARDS[experiment]:
        template = template.replace("{%s}" % w, "{{%s}}" % w)
    return [template.format(**c) for c in configurations(config, experiment)]
