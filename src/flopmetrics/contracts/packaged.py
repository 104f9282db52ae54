"""The calibration shipped inside the package (``data/calibration/``): the fitted tables of the
committed H100 and H200 references, not their raw rows, with a provenance file saying which
inputs they were fitted from. ``flopmetrics estimate`` uses them where no pipeline run of the
user's own (``results/calibration/calibration.parquet``) exists."""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

FOLDER = "data/calibration"
TABLE = "calibration.parquet"
SERVING = "serving.parquet"  # the serving model's table (analysis.serving)
STEPTIME = "steptime.parquet"  # the step-time model's table (analysis.steptime)
PROVENANCE = "provenance.json"


def folder():
    """The packaged calibration's folder (a Traversable: inside a wheel or a source tree)."""
    return resources.files("flopmetrics").joinpath(FOLDER)


def table_path() -> Path:
    """The packaged calibration table (a real file: the package is installed unzipped)."""
    return Path(str(folder().joinpath(TABLE)))


def serving_path() -> Path:
    """The packaged serving model's table."""
    return Path(str(folder().joinpath(SERVING)))


def steptime_path() -> Path:
    """The packaged step-time model's table."""
    return Path(str(folder().joinpath(STEPTIME)))


def provenance() -> dict:
    """Which reference folders and files the packaged table was fitted from, by which code."""
    return json.loads(folder().joinpath(PROVENANCE).read_text())


def digest(files: list[Path]) -> str:
    """sha256 over every input file's path (relative, as the config names it) and bytes, in
    sorted order: it changes when a reference row is added, removed or rewritten."""
    h = hashlib.sha256()
    for f in sorted(files, key=lambda p: p.as_posix()):
        h.update(f.as_posix().encode() + b"\0")
        h.update(f.read_bytes())
    return h.hexdigest()
