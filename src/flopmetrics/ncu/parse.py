"""Nsight Compute output -> one row per kernel launch, with FLOPs per pipe and precision.

Two inputs share one set of columns (``label``, ``pass``, ``kernel``, the FLOP columns
:data:`PIPES` and their sum ``flops``):

* our reports, exported with ``ncu --import R --csv --page raw`` (a units row under the header;
  numbers may carry thousands separators); each launch gets its pass from the marker kernels
  around it (:data:`~flopmetrics.ncu.metrics.MARKER`), and where it ran inside an NVTX range,
  the range must name the same pass;
* the thesis's raw CSVs (``Kernel Name, Metric Name, Metric Value``: one row per launch and
  metric, launches in order), whose passes are found by kernel identity: the launches of
  ``setup_forward`` that are not in ``setup`` are the forward pass, and so on.

A metric the input does not have is NaN in its FLOP columns, never 0.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..energy import datasheet
from .metrics import MARKER, SIMT, TENSOR, TENSOR_FLOPS_PER_OP, simt_metric

NVTX = "thread Domain:Push/Pop_Range:PL_Type:PL_Value:CLR_Type:Color:Msg_Type:Msg"
PIPES = [f"flops_simt_{p}" for p in SIMT] + [f"flops_tensor_{p}" for p in TENSOR]


class NcuParseError(ValueError):
    pass


def _flops(metric) -> pd.DataFrame:
    """FLOP columns from ``metric(name) -> Series or None`` (None: not collected -> NaN)."""
    out = {}
    for pipe, ops in SIMT.items():
        parts = [metric(simt_metric(op)) for op in ops]
        out[f"flops_simt_{pipe}"] = (
            sum(w * s for w, s in zip(ops.values(), parts, strict=False))
            if all(s is not None for s in parts)
            else None
        )
    for prec, name in TENSOR.items():
        s = metric(name)
        out[f"flops_tensor_{prec}"] = None if s is None else s * TENSOR_FLOPS_PER_OP
    index = next(v.index for v in out.values() if v is not None)
    df = pd.DataFrame(
        {k: (v if v is not None else pd.Series(np.nan, index=index)) for k, v in out.items()}
    )
    df["flops"] = df[PIPES].sum(axis=1, min_count=1)
    return df


def read_report_csv(path: str | Path, passes: list[dict], source: str = "ncu") -> pd.DataFrame:
    """Our ``--page raw`` CSV and the capture's list of passes (its manifest, in order).

    The launches between two marker kernels are one pass, the n-th non-empty such run being the
    n-th pass of the manifest. Backward kernels run on autograd's own thread, outside the NVTX
    range its caller pushed, so the ranges cannot label every launch; where a launch has one, it
    must name the pass the markers give it. A run with no closing marker (a capture cut short)
    is left out, and said so in ``attrs["incomplete"]``."""
    raw = pd.read_csv(path, low_memory=False, dtype=str)
    if "Kernel Name" not in raw or "ID" not in raw:
        raise NcuParseError(f"{path}: not an ncu raw CSV (no 'ID' and 'Kernel Name' columns)")
    raw = raw[raw["ID"].notna() & raw["Kernel Name"].notna()].reset_index(
        drop=True
    )  # drops the units row

    def metric(name):
        if name not in raw:
            return None
        return pd.to_numeric(raw[name].str.replace(",", "", regex=False), errors="coerce")

    marker = raw["Kernel Name"].str.contains(MARKER, regex=False).to_numpy()
    segment = np.cumsum(marker)
    ends_open = not marker[-1]
    segments = list(dict.fromkeys(segment[~marker]))
    complete = segments[:-1] if ends_open else segments
    if len(complete) > len(passes):
        raise NcuParseError(
            f"{path}: {len(complete)} marker-delimited passes, the manifest lists {len(passes)}"
        )
    # a capture that ended on a marker before the manifest's last pass: its launch count ran out
    unprofiled = [f"{p['label']}/{p['pass']}" for p in passes[len(complete) + ends_open :]]
    names = {seg: f"{passes[i]['label']}/{passes[i]['pass']}" for i, seg in enumerate(complete)}
    assigned = pd.Series([names.get(seg) for seg in segment], dtype=object)
    ranges = (
        raw[NVTX].str.extract(r"<default domain>:(.*?):none")[0]
        if NVTX in raw
        else pd.Series(np.nan, index=raw.index)
    )
    clash = ranges.notna() & assigned.notna() & (ranges != assigned)
    if clash.any():
        i = int(np.flatnonzero(clash)[0])
        raise NcuParseError(
            f"{path}: launch {raw['ID'][i]} ran in NVTX range {ranges[i]!r} "
            f"but the markers give {assigned[i]!r}"
        )
    df = pd.DataFrame(
        {
            "source": source,
            "label": assigned.str.rsplit("/", n=1).str[0],
            "pass": assigned.str.rsplit("/", n=1).str[1],
            "launch": pd.to_numeric(raw["ID"]).astype(int),
            "kernel": raw["Kernel Name"],
            "grid": raw.get("Grid Size"),
            "block": raw.get("Block Size"),
            "duration_s": metric("gpu__time_duration.sum") / 1e3,  # the export reports ms
        }
    )
    df = pd.concat([df, _flops(metric)], axis=1)
    cut = ~marker & assigned.isna().to_numpy()
    out = df[~marker & ~cut].reset_index(drop=True)
    notes = []
    if cut.any():
        notes.append(
            f"{passes[len(complete)]['label']}/{passes[len(complete)]['pass']}: "
            f"{int(cut.sum())} launches without a closing marker, left out"
        )
    if unprofiled:
        notes.append(f"not profiled (the capture ended before them): {', '.join(unprofiled)}")
    out.attrs["incomplete"] = "; ".join(notes)
    return out


def read_thesis_csv(path: str | Path) -> pd.DataFrame:
    """One thesis raw CSV (long format) -> one row per launch, in order."""
    raw = pd.read_csv(path, index_col=0)
    missing = {"Kernel Name", "Metric Name", "Metric Value"} - set(raw.columns)
    if missing:
        raise NcuParseError(f"{path}: missing columns {sorted(missing)}")
    names = list(dict.fromkeys(raw["Metric Name"]))
    if len(raw) % len(names):
        raise NcuParseError(
            f"{path}: {len(raw)} rows are not whole launches of {len(names)} metrics"
        )
    raw = raw.assign(launch=np.arange(len(raw)) // len(names))
    if (raw.groupby("launch")["Metric Name"].apply(list).map(tuple) != tuple(names)).any():
        raise NcuParseError(f"{path}: a launch does not list the metrics {names} in order")
    wide = raw.pivot(index="launch", columns="Metric Name", values="Metric Value")
    kernels = raw.groupby("launch")["Kernel Name"].first()
    flops = _flops(lambda name: wide[name].astype(float) if name in wide else None)
    return pd.concat(
        [
            pd.DataFrame({"launch": wide.index, "kernel": kernels.values}),
            flops.reset_index(drop=True),
        ],
        axis=1,
    )


def _identity(df: pd.DataFrame) -> list[tuple]:
    return list(zip(df["kernel"], *(df[c].fillna(-1) for c in PIPES), strict=False))


def difference(after: pd.DataFrame, before: pd.DataFrame, what: str) -> pd.DataFrame:
    """The launches of ``after`` that are not in ``before``, matched by kernel identity: the same
    kernel with the same counts first; then, for what is left of ``before`` (random-number
    kernels execute a data-dependent number of instructions, so the set-up of two processes
    differs by a few), the same kernel with the closest total FLOPs."""
    after_id = _identity(after)
    by_id: dict[tuple, list[int]] = {}
    for i, ident in enumerate(after_id):
        by_id.setdefault(ident, []).append(i)
    taken = np.zeros(len(after), dtype=bool)
    left = []
    for ident in _identity(before):
        free = by_id.get(ident)
        if free:
            taken[free.pop(0)] = True
        else:
            left.append(ident)
    flops = after["flops"].to_numpy()
    for ident in left:
        candidates = [i for i, a in enumerate(after_id) if not taken[i] and a[0] == ident[0]]
        if not candidates:
            raise NcuParseError(
                f"{what}: launch of {ident[0][:80]!r} in the earlier run is missing from the "
                "later one"
            )
        taken[min(candidates, key=lambda i: abs(flops[i] - np.nansum(ident[1:])))] = True
    return after[~taken].reset_index(drop=True)


THESIS_FILE = re.compile(r"hyper_surface_n(?P<n>\d+)_d(?P<d>\d+)_m(?P<m>\d+)_setup\.csv$")


def read_thesis_raw(directory: str | Path) -> pd.DataFrame:
    """All thesis configs in ``directory`` (three files each) -> launches of forward and
    backward."""
    out = []
    for setup in sorted(Path(directory).glob("hyper_surface_n*_setup.csv")):
        m = THESIS_FILE.search(setup.name)
        stem = str(setup)[: -len("_setup.csv")]
        s, sf, sfb = (
            read_thesis_csv(f"{stem}{suffix}.csv")
            for suffix in ("_setup", "_setup_forward", "_setup_forward_backward")
        )
        n, d, mm = int(m["n"]), int(m["d"]), int(m["m"])
        for name, rows in (
            ("forward", difference(sf, s, f"{stem}: forward")),
            ("backward", difference(sfb, sf, f"{stem}: backward")),
        ):
            out.append(
                rows.assign(
                    source="thesis",
                    label=f"mlp n{n} d{d} m{m['m']}",
                    n=n,
                    d=d,
                    m=mm,
                    **{"pass": name},
                )
            )
    if not out:
        raise NcuParseError(f"no thesis ncu files (hyper_surface_n*_setup.csv) in {directory}")
    return pd.concat(out, ignore_index=True)


def read_runs(directory: str | Path, pattern: str = "*") -> pd.DataFrame:
    """Every ``<run>.csv.gz`` under ``directory`` (whose ``<run>`` matches ``pattern``) with its
    manifest ``<run>.json``: launches in our schema, with ``run``, ``precision`` and, for MLP
    passes, ``n``, ``d``, ``m``."""

    out = []
    for csv in sorted(Path(directory).glob(f"{pattern}.csv.gz")):
        manifest_path = csv.with_name(csv.name.removesuffix(".csv.gz") + ".json")
        if not manifest_path.exists():
            raise NcuParseError(f"{csv}: no manifest {manifest_path.name} beside it")
        manifest = json.loads(manifest_path.read_text())
        df = read_report_csv(csv, manifest["passes"])
        if df.attrs["incomplete"]:
            print(f"{csv.name}: {df.attrs['incomplete']}")
        shape = df["label"].str.extract(r"^mlp n(\d+) d(\d+) m(\d+)$").astype(float)
        out.append(
            df.assign(
                run=csv.name.removesuffix(".csv.gz"),
                precision=manifest["precision"],
                gpu_label=datasheet.for_device_name(manifest["device"]).label,
                n=shape[0],
                d=shape[1],
                m=shape[2],
            )
        )
    if not out:
        raise NcuParseError(f"no ncu runs (*.csv.gz with a .json manifest) in {directory}")
    return pd.concat(out, ignore_index=True)
