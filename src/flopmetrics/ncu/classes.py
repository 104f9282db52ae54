"""Executed FLOPs per operation class of a causal LM's train step (issue 35, item 4): the class
captures of :mod:`flopmetrics.ncu.capture` (``llm_classes``: the step, then each class's
operations replayed alone under Nsight Compute) next to what FlopCounterMode counts for each
class. The classes are those of :func:`flopmetrics.flops.operations.op_class`, shared with the
energy per class.

Attention's headline convention is one in every precision: the full score matrix, backward
twice the forward (:mod:`flopmetrics.flops.counted`). Beside it, ``counted_causal_flops`` is the
causal convention (half the attention) and ``executed_flops`` what the kernels ran.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..energy import datasheet
from ..flops.operations import CLASSES
from .parse import read_report_csv

COLUMNS = [
    "gpu_label",
    "gpu_uuid",
    "torch",
    "precision",
    "shape",
    "class",
    "kernels",
    "executed_flops",
    "counted_flops",
    "counted_causal_flops",
    "executed_over_counted",
    "step_kernels",
    "step_executed_flops",
]


def read_class_runs(directory: str | Path) -> pd.DataFrame:
    """One row per (capture, shape, class) of the class captures in ``directory`` (each
    ``<run>.json`` manifest with ``operation_classes``, beside its ``<run>.csv.gz``); classes no
    operation of the step fell into (communication on one GPU) are left out."""
    rows = []
    for manifest_path in sorted(Path(directory).glob("*.json")):
        manifest = json.loads(manifest_path.read_text())
        if not manifest.get("operation_classes"):
            continue
        csv = manifest_path.with_name(manifest_path.stem + ".csv.gz")
        launches = read_report_csv(csv, manifest["passes"])
        for shape, info in manifest["operation_classes"].items():
            rows += _rows(manifest, shape, info, launches[launches["label"] == shape])
    if not rows:
        raise FileNotFoundError(f"no class captures (*.json with operation_classes) in {directory}")
    return _in_class_order(pd.DataFrame(rows, columns=COLUMNS), directory)


def _in_class_order(table: pd.DataFrame, directory) -> pd.DataFrame:
    """Several captures of one step (each some of its classes) as one table in class order; a
    class captured twice is an error, not a row that silently wins."""
    key = ["gpu_uuid", "precision", "shape", "class"]
    twice = table[table.duplicated(key, keep=False)]
    if not twice.empty:
        first = twice.iloc[0]
        times = int((twice[key] == first[key]).all(axis=1).sum())
        raise ValueError(
            f"{directory}: class {first['class']!r} of {first['shape']} ({first['precision']}, "
            f"{first['gpu_uuid']}) is in {times} captures"
        )
    rank = table["class"].map({c: i for i, c in enumerate(CLASSES)})
    order = table.assign(rank=rank).sort_values(["precision", "shape", "rank"], kind="stable")
    return order.drop(columns="rank").reset_index(drop=True)


def _rows(manifest: dict, shape: str, info: dict, launches: pd.DataFrame) -> list[dict]:
    """A row per class the capture replayed (some captures take only some classes); the
    step's columns are NaN where the capture did not run the step itself."""
    captured = {p["pass"] for p in manifest["passes"] if p["label"] == shape}
    step = launches[launches["pass"] == "train_step"]
    has_step = "train_step" in captured
    out = []
    for cls in CLASSES:
        if not info["operations"].get(cls) or f"class:{cls}" not in captured:
            continue
        mine = launches[launches["pass"] == f"class:{cls}"]
        counted = float(info["counted_by_class"].get(cls, 0))
        executed = float(mine["flops"].sum())
        out.append(
            {
                "gpu_label": datasheet.for_device_name(manifest["device"]).label,
                "gpu_uuid": manifest.get("gpu_uuid", ""),
                "torch": manifest.get("torch", ""),
                "precision": manifest["precision"],
                "shape": shape,
                "class": cls,
                "kernels": len(mine),
                "executed_flops": executed,
                "counted_flops": counted,
                "counted_causal_flops": counted / 2 if cls == "attention" else counted,
                "executed_over_counted": executed / counted if counted else float("nan"),
                "step_kernels": len(step) if has_step else float("nan"),
                "step_executed_flops": float(step["flops"].sum()) if has_step else float("nan"),
            }
        )
    return out
