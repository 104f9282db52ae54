"""Merge per-job parquet files into one table, reading older files through the rename table."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from ..contracts.errors import MergeError
from ..contracts.experiments import BY_NAME, EXPERIMENTS
from ..contracts.identity import config_hash, differences
from ..contracts.paths import pattern
from ..contracts.vocabulary import LAUNCH_BEFORE_COLUMN, NODE_RANK, REQUIRED_COLUMNS, SINGLE
from ..energy import datasheet, gates
from .attention import one_convention

# column -> the column that holds its value now (config/README.md, "Renamed keys and columns")
RENAMED_COLUMNS = {"dtype": "precision", "cpu_threads": "torch_threads"}
# older columns whose idea has another column now (dropped where that one is filled in)
RETIRED_COLUMNS = ("workload",)
TORCH_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")


def with_single(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with ``world_size``, ``strategy`` and ``scaling`` filled in for one-device rows,
    and ``launch`` for rows written before it was a column (all eager)."""
    df = df.copy()
    for col, value in {**SINGLE, "launch": LAUNCH_BEFORE_COLUMN}.items():
        df[col] = df[col].fillna(value) if col in df else value
    df["world_size"] = df["world_size"].astype(int)
    return df


def without_ranks(df: pd.DataFrame) -> pd.DataFrame:
    """One row per run and pass: one-device rows and distributed jobs' node rows, not their
    ranks'."""
    return df[df["rank"].isna() | df["rank"].eq(NODE_RANK)] if "rank" in df else df


def read_job_table(path) -> pd.DataFrame:
    """One job's parquet in today's vocabulary, its identity checked against its path.

    Files written before the renames carry ``dtype`` beside ``precision`` (the same value:
    dropped, a mismatch is an error naming the file); ``workload`` (the kind of work) where
    ``experiment`` (the experiment that measured the row) is now, taken from the file's path;
    and MLP rows held the target label in ``device``: ``device`` is the torch device now, and
    the old jobs ran every GPU target on ``cuda:0``. Every error names the file."""
    try:
        df = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several kinds for a file that is not parquet
        raise MergeError(
            f"{path}: not a readable parquet file ({type(err).__name__}: {err})"
        ) from None
    if df.empty:
        return df
    df = _with_experiment(df, path)
    missing = [c for c in REQUIRED_COLUMNS if c not in df]
    if missing:
        raise MergeError(f"{path}: not a flopmetrics per-job table: columns {missing} are missing")
    for old, new in RENAMED_COLUMNS.items():
        if old in df:
            if new in df and not df[old].astype(str).equals(df[new].astype(str)):
                raise MergeError(f"{path}: column {old!r} (renamed {new!r}) disagrees with {new!r}")
            df = df.drop(columns=old) if new in df else df.rename(columns={old: new})
    if "device" in df:
        old_mlp = df["experiment"].eq("mlp") & ~df["device"].astype(str).str.match(TORCH_DEVICE)
        df.loc[old_mlp, "device"] = "cuda:0"
    labels = set(df["gpu_label"].dropna().astype(str))
    unknown = labels - {"cpu", *datasheet.labels(), *datasheet.table()}
    if df["gpu_label"].isna().any() or unknown:
        raise MergeError(
            f"{path}: gpu_label {sorted(unknown) or 'empty'} is no datasheet GPU "
            f"(known: {datasheet.labels()} or cpu)"
        )
    check_identity(df, path)
    return one_convention(df)


def _with_experiment(df: pd.DataFrame, path) -> pd.DataFrame:
    """Rows from before the ``experiment`` column: it is the experiment their path names (the
    retired ``workload`` column said what ran: ``llm`` for distributed jobs too)."""
    if "experiment" not in df:
        experiment = path_identity(path).get("experiment")
        if experiment is None and "workload" in df:
            experiment = df["workload"]  # a file outside results/raw: what it says it ran
        if experiment is not None:
            df = df.assign(experiment=experiment)
    return df.drop(columns=[c for c in RETIRED_COLUMNS if c in df and "experiment" in df])


def path_identity(path) -> dict[str, str]:
    """The wildcard values a per-configuration path names, ``experiment`` included ({} where
    it follows no known template; older names of files are read too)."""
    text = str(Path(path).as_posix())
    for experiment in EXPERIMENTS:
        for name in ("table", "ranks"):  # the files that hold rows
            template = experiment.outputs().get(name, "")
            if not template.startswith(("results/raw/", "results/ranks/")):
                continue
            for stem in (experiment.stem, *experiment.renamed_stems):
                # raw/<experiment>/...: also under a reference folder
                tail = template.replace(experiment.stem, stem).removeprefix("results/")
                m = pattern(tail).search(text)
                if m and text.endswith(m.group(0)) and text[: m.start()][-1:] in ("", "/"):
                    return {"experiment": experiment.name, **m.groupdict()}
    return {}


def missing_columns(columns) -> list[str]:
    """The required columns a table lacks (an older table's retired names count)."""
    present = set(columns) | ({"experiment"} if RETIRED_COLUMNS[0] in columns else set())
    return [c for c in REQUIRED_COLUMNS if c not in present]


def check_identity(df: pd.DataFrame, path) -> None:
    """Every row must be the job its path names (a file copied over another's is refused)."""
    for col, value in path_identity(path).items():  # wildcards are named like their columns
        if col not in df:
            raise MergeError(
                f"{path}: its path names {col}={value} but the rows have no {col!r} column"
            )
        found = sorted(
            {str(int(v)) if isinstance(v, float) and v == int(v) else str(v) for v in df[col]}
        )
        if found != [value]:
            raise MergeError(
                f"{path}: its path names {col}={value} but its rows hold {col} = {found}: the "
                "file belongs to another job (copied over?); rerun the job or remove the file"
            )


def no_duplicates(frames: Sequence[pd.DataFrame]) -> None:
    """The same measurement (config hash, GPU UUID, start time) never enters a table twice."""
    seen: dict[tuple, str] = {}
    for f in frames:
        if not {"config_hash", "timestamp_utc"} <= set(f.columns) or f.empty:
            continue
        uuid = f["gpu_uuid"] if "gpu_uuid" in f else pd.Series([""] * len(f), index=f.index)
        for key in set(
            zip(
                f["config_hash"].astype(str),
                uuid.astype(str),
                f["timestamp_utc"].astype(str),
                strict=False,
            )
        ):
            path = str(f["source_file"].iloc[0])
            if key in seen and seen[key] != path:
                raise MergeError(
                    f"{path} and {seen[key]} hold the same measurement (config hash {key[0]}, "
                    f"started {key[2]}): a folder listed twice, or results merged as reference?"
                )
            seen[key] = path


def check_configuration(df: pd.DataFrame, path, expected: dict | None = None) -> None:
    """The rows of a per-configuration file were made by the configuration that should have made
    it: ``expected`` (what its job's ``config_hash`` is made of) for this run's files; for a
    reference file (``expected`` None), the configuration its rows record."""
    if df.empty or not {"config_hash", "config_json"} <= set(df.columns):
        return  # an older table without the recorded configuration: judged by its path only
    recorded = {(h, j) for h, j in zip(df["config_hash"], df["config_json"], strict=True)}
    if expected is None:
        experiment = BY_NAME.get(path_identity(path).get("experiment", ""))
        if experiment is None or experiment.runner != "single":
            return  # a distributed table's config_hash names its node's job, not its rows
        for found_hash, found_json in recorded:
            if config_hash(json.loads(found_json)) != found_hash:
                raise MergeError(
                    f"{path}: its config_hash {found_hash} is not the hash of the configuration "
                    "its rows record (config_json): the rows were edited after they were measured"
                )
        return
    if len(recorded) > 1:
        raise MergeError(
            f"{path}: its rows were made by {len(recorded)} configurations (config hashes "
            f"{sorted(h for h, _ in recorded)}); a per-configuration file holds one"
        )
    found_hash, found_json = recorded.pop()
    found = json.loads(found_json)
    if found_hash != config_hash(expected):
        diffs = differences(found, expected) or [f"config_hash {found_hash}"]
        raise MergeError(
            f"{path}: measured by another configuration than this run's ({'; '.join(diffs[:8])})"
            ": copied from another run or config? Remove it and run again: Snakemake measures "
            "what is missing"
        )


def merge_parquets(
    paths: Sequence[str], expected: Mapping[str, dict] | None = None
) -> pd.DataFrame:
    """This run's per-configuration tables as one (``expected``: file -> the configuration
    that should have made it, checked where given)."""
    if not paths:
        raise ValueError("nothing to merge: the sweep produced no job outputs")
    frames = [read_job_table(p).assign(source_file=str(p)) for p in paths]
    for p, f in zip(paths, frames, strict=True):
        if expected is not None and str(p) in expected:
            check_configuration(f, p, expected[str(p)])
    no_duplicates(frames)
    measured = [(p, f) for p, f in zip(paths, frames, strict=True) if not is_oom(f)]
    first, columns = (measured[0][0], measured[0][1].columns) if measured else (paths[0], [])
    for p, f in measured:
        if set(f.columns) != set(columns):
            missing = sorted(set(columns) - set(f.columns))
            extra = sorted(set(f.columns) - set(columns))
            raise ValueError(
                f"{p}: columns differ from {first} (missing {missing}, extra {extra}); rerun "
                "that job"
            )
    # a configuration that did not fit has its identity and status, no measurements
    return pd.concat(frames, ignore_index=True, sort=False)


def is_oom(frame: pd.DataFrame) -> bool:
    """Whether a per-configuration table is the ``oom`` rows of a configuration that did not
    fit (identity columns only, no measurements)."""
    return "status" in frame and len(frame) > 0 and bool((frame["status"] == "oom").all())


def merge_energy(
    measured: Sequence[str],
    reference: Sequence[str],
    expected: Mapping[str, dict] | None = None,
) -> pd.DataFrame:
    """Measured rows (``source = measured``) and committed reference rows (``reference``);
    columns are the union (different workloads carry different columns). Each measured file is
    checked against the configuration that should have made it (``expected``, where given),
    each reference file against the configuration its rows record."""
    frames = [read_job_table(p).assign(source="measured", source_file=str(p)) for p in measured]
    frames += [read_job_table(p).assign(source="reference", source_file=str(p)) for p in reference]
    for p, f in zip([*measured, *reference], frames, strict=True):
        known = expected is not None and str(p) in expected
        check_configuration(f, p, expected[str(p)] if known else None)
    for kind, files in (("measured", measured), ("reference", reference)):
        rows = sum(len(f) for f in frames if len(f) and f["source"].iloc[0] == kind)
        print(f"{kind}: {len(files)} files, {rows} rows")
    for f, p in zip(frames, [*measured, *reference], strict=False):
        if not len(f):
            print(f"skipped {p}: no rows")
    frames = [f for f in frames if len(f)]
    no_duplicates(frames)
    if not frames:
        return pd.DataFrame({"source": pd.Series(dtype=str), "experiment": pd.Series(dtype=str)})
    # gates are re-applied here so every row, old reference data included, meets today's rules
    return gates.apply(with_single(pd.concat(frames, ignore_index=True, sort=False)))
