"""Kernel-choice tables: the kernels the library launched for an MLP's GEMM calls, as
:func:`flopmetrics.ncu.profiler.read_on_gpu` reads them on a GPU, committed with the card,
driver, torch and cuBLAS they were read with (no torch needed to use one).

A table is a JSON document: provenance keys and ``configs``, each ``n``, ``d``, ``m``,
``precision`` and per pass the launched ``kernels`` (name, grid, ...) in launch order.
:func:`calls_of` turns it into one launch per GEMM call shape ``(role, M, N, K)``: the
GEMM-class launches of a pass, in order, are its calls as
:func:`flopmetrics.ncu.gap.calls` lists them, each with the split-K kernel that follows it.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from ..energy import datasheet
from .classify import kernel_class
from .gap import PASSES, calls


def load(path: str | Path) -> dict:
    return _table(_read(path), path)


def _read(path: str | Path) -> dict:
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:
        return json.load(fh)


def _table(doc: dict, path: str | Path) -> dict:
    if "configs" not in doc:
        raise ValueError(f"{path}: not a kernel-choice table (no 'configs')")
    return doc


def calls_of(doc: dict) -> dict:
    """``(precision, role, M, N, K) -> {"kernel", "grid", "reduction"}`` over a table."""
    out = {}
    for config in doc["configs"]:
        n, d, m = (int(config[k]) for k in ("n", "d", "m"))
        for pass_ in PASSES:
            launches = config["passes"].get(pass_, {}).get("kernels", [])
            pairs = _pair(launches)
            expected = calls(n, d, m, pass_)
            if len(pairs) != len(expected):
                raise ValueError(
                    f"{config['precision']} n{n} d{d} m{m} {pass_}: {len(pairs)} GEMM launches, "
                    f"the MLP makes {len(expected)} GEMM calls"
                )
            for call, launch in zip(expected, pairs, strict=True):
                out.setdefault((config["precision"], *call), launch)
    return out


def _pair(launches: list[dict]) -> list[dict]:
    pairs = []
    for launch in launches:
        cls = kernel_class(launch["name"])
        if cls == "gemm":
            pairs.append({"kernel": launch["name"], "grid": launch["grid"], "reduction": ""})
        elif cls == "split_k" and pairs and not pairs[-1]["reduction"]:
            pairs[-1]["reduction"] = launch["name"]
    return pairs


def tables_by_gpu(folders) -> dict:
    """GPU label -> ``calls_of`` all tables (``*.json.gz``, ``*.json``) in ``folders``."""
    out = {}
    for folder in folders:
        for path in sorted(Path(folder).glob("*.json*")):
            if path.name.endswith(".partial"):
                continue  # a table being written
            doc = _read(path)
            if "configs" not in doc and "shapes" in doc:
                continue  # a campaign's plan (the shapes it reads), committed beside its tables
            doc = _table(doc, path)
            out.setdefault(datasheet.for_device_name(doc["gpu_name"]).label, {}).update(
                calls_of(doc)
            )
    return out


def for_precision(table: dict, precision: str) -> dict:
    """``(role, M, N, K) -> launch`` of one precision."""
    return {k[1:]: v for k, v in table.items() if k[0] == precision}
