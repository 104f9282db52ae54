"""Put the calibration the pipeline fitted on the committed references into the package
(``src/flopmetrics/data/calibration/``), with its provenance: the reference folders, a digest
of their rows (a data check fails when they change and the packaged table was not remade), the
code revision and the time. Run from the repository root after the default pipeline:

    snakemake -c all results/calibration/calibration.parquet results/calibration/serving.parquet
    python -m flopmetrics.pipeline.package_calibration

(``--serving-only``: the serving model's table alone, the training calibration left as it is;
``--steptime-only``: the step-time model's table alone, from
``snakemake results/calibration/steptime.parquet`` with ``calibration.steptime_dirs`` set.)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
from pathlib import Path

import pandas as pd
import yaml

from ..analysis import steptime_rows
from ..contracts import packaged
from ..contracts.experiments import EXPERIMENTS, feeding
from ..contracts.paths import CALIBRATION, SERVING_CALIBRATION, STEPTIME_CALIBRATION
from ..jobs.output import atomic_path, write_text
from ..jobs.provenance import git_revision

CONFIG = "config/config.yaml"


def inputs(config: dict) -> tuple[list[str], list[Path]]:
    """The folders the default config fits its calibration from, and their row files (those
    below ``raw/<experiment>/`` of an experiment whose rows join no energy table, as serving's,
    left out: the calibration never reads them)."""
    others = {e.name for e in EXPERIMENTS} - {e.name for e in feeding("energy")}
    found = {
        d: [f for f in sorted(Path(d).glob("raw/**/*.parquet")) if not _below(f, d, others)]
        for d in [*config["reference"]["dirs"], *config["calibration"]["card_spread_dirs"]]
    }
    dirs = [d for d, files in found.items() if files]
    return dirs, [f for d in dirs for f in found[d]]


def _below(file: Path, folder: str, experiments: set[str]) -> bool:
    return file.relative_to(folder).parts[1] in experiments


def write(calibration: Path, config_path: Path, out: Path) -> dict:
    """Copy ``calibration`` into ``out`` and write its provenance, each file atomically."""
    dirs, files = inputs(yaml.safe_load(config_path.read_text()))
    info = {
        "fitted_from": dirs,
        "input_files": len(files),
        "inputs_sha256": packaged.digest(files),
        "config": config_path.as_posix(),
        "git_revision": git_revision()[0],
        "written_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "made_by": "python -m flopmetrics.pipeline.package_calibration",
    }
    return _install(calibration, packaged.TABLE, info, out)


def _install(table: Path, name: str, info: dict, out: Path) -> dict:
    """Copy ``table`` to ``out/name`` and update the provenance with ``info`` (what it says of
    the other table kept), each file atomically; the provenance written."""
    old = out / packaged.PROVENANCE
    info = {**(json.loads(old.read_text()) if old.exists() else {}), **info}
    with atomic_path(out / name) as tmp:
        shutil.copyfile(table, tmp)
    write_text(json.dumps(info, indent=1) + "\n", old)
    return info


def serving_inputs(config: dict) -> tuple[list[str], list[Path]]:
    """The reference folders with serving rows (``raw/inference/``), and those rows."""
    found = {
        d: sorted(Path(d).glob("raw/inference/**/*.parquet")) for d in config["reference"]["dirs"]
    }
    dirs = [d for d, files in found.items() if files]
    return dirs, [f for d in dirs for f in found[d]]


def write_serving(table: Path, config_path: Path, out: Path) -> dict:
    """Copy the serving model's ``table`` into ``out`` and add its inputs to the provenance."""
    dirs, files = serving_inputs(yaml.safe_load(config_path.read_text()))
    return _install(table, packaged.SERVING, _inputs("serving_", dirs, files), out)


def write_steptime(table: Path, out: Path) -> dict:
    """Copy the step-time model's ``table`` into ``out`` and add its inputs (the folders the
    table names in ``fitted_from``) and the folders its intervals' misses were measured on
    (``heldout_from``) to the provenance; its input files are their rows and fp32 matrix
    products. Its revision is the code that fitted it, where the table names it
    (``git_revision``), else the code packaging it."""
    first = pd.read_parquet(table).iloc[0]
    recorded, measured = first.get("transformers_recorded"), first.get("transformers_measured")
    if recorded and measured and recorded not in str(measured).split(","):
        raise SystemExit(
            f"{table}: its operation streams were recorded with transformers {recorded}, its "
            f"rows measured with {measured}: a model whose code differs between them books "
            f"other kernels than it ran (Falcon-7B's attention). Rerun the step with transformers "
            f"{measured} installed, then package it"
        )
    dirs = first["fitted_from"].split(",")
    info = _inputs("steptime_", dirs, steptime_rows.input_files(dirs))
    heldout = first.get("heldout_from")
    info["steptime_heldout_from"] = heldout.split(",") if isinstance(heldout, str) else []
    fitted_by = first.get("git_revision")
    if isinstance(fitted_by, str) and fitted_by:
        info["steptime_git_revision"] = fitted_by
    return _install(table, packaged.STEPTIME, info, out)


def _inputs(prefix: str, dirs: list[str], files: list[Path]) -> dict:
    """What the provenance says of one packaged table's inputs, each key with ``prefix``."""
    return {
        f"{prefix}fitted_from": dirs,
        f"{prefix}input_files": len(files),
        f"{prefix}inputs_sha256": packaged.digest(files),
        f"{prefix}git_revision": git_revision()[0],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calibration", type=Path, default=Path(CALIBRATION))
    ap.add_argument("--serving", type=Path, default=Path(SERVING_CALIBRATION))
    ap.add_argument("--config", type=Path, default=Path(CONFIG))
    ap.add_argument("--out", type=Path, default=Path("src/flopmetrics") / packaged.FOLDER)
    ap.add_argument("--steptime", type=Path, default=Path(STEPTIME_CALIBRATION))
    ap.add_argument("--serving-only", action="store_true", help="the serving model's table only")
    ap.add_argument("--steptime-only", action="store_true", help="the step-time model's table only")
    args = ap.parse_args(argv)
    if args.steptime_only:
        if not args.steptime.exists():
            print(f"{args.steptime} not found: run the pipeline's step first", file=sys.stderr)
            return 2
        print(json.dumps(write_steptime(args.steptime, args.out), indent=1))
        return 0
    wanted = [args.serving] if args.serving_only else [args.calibration]
    for path in wanted:
        if not path.exists():
            print(f"{path} not found: run the default pipeline first", file=sys.stderr)
            return 2
    if not args.serving_only:
        print(json.dumps(write(args.calibration, args.config, args.out), indent=1))
    if args.serving.exists():
        print(json.dumps(write_serving(args.serving, args.config, args.out), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
